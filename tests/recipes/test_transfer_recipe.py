import json

import pytest

from interlearn.errors import ConfigError
from interlearn.recipes import build, load_recipe
from interlearn.recipes.transfer import Config, run


def test_example_recipe_validates():
    from interlearn.recipes import example_recipes

    path = next(p for p in example_recipes() if p.name == "transfer.yaml")
    kind, cfg = load_recipe(path)
    assert kind == "transfer" and isinstance(cfg, Config) and cfg.cut == "auto" and cfg.data.labels_per_class == 5


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"model": "resnet"}, r"transfer.model: 'resnet' is not allowed; choose one of \['cnn', 'mlp'\]"),
        ({"compare": ["scratch", "lora"]}, r"compare: \['lora'\] unknown"),
        ({"data": {"source_classes": [0, 1], "target_classes": [1, 2]}}, "overlap"),
        ({"cutt": "auto"}, r"transfer.cutt: unknown field of Config; known fields: 'cut'"),
    ],
)
def test_bad_recipe_fields(mapping, message):
    with pytest.raises(ConfigError, match=message):
        build(Config, mapping, "transfer")


def test_bad_cut_name_is_reported(tmp_path):
    cfg = build(Config, {"model": "mlp", "cut": "fc9", "pretrain_steps": 5, "steps": 5, "compare": []}, "transfer")
    with pytest.raises(ConfigError, match="cut='fc9' is not a layer"):
        run(cfg, tmp_path)


@pytest.mark.slow
def test_run_writes_rows_and_reports(tmp_path):
    cfg = build(
        Config,
        {
            "model": "mlp",
            "data": {"labels_per_class": 3},
            "pretrain_steps": 60,
            "steps": 40,
            "folds": 3,
            "budgets": [1, 3],
            "budget_seeds": [0],
            "lr": 0.003,
        },
        "transfer",
    )
    rows = run(cfg, tmp_path)
    assert set(rows) == {"scratch", "transfer", "finetune"}
    for r in rows.values():
        assert 0 <= r["accuracy"] <= 1 and r["trainable_params"] > 0 and r["train_seconds"] >= 0
    assert rows["transfer"]["cut"] in (3, 5) and rows["transfer"]["features_cached"]
    auto = json.loads((tmp_path / "autocut.json").read_text())
    assert auto["method"] == "cv" and auto["chosen"] == rows["transfer"]["cut"]
    assert (tmp_path / "budgets.png").is_file() and "labels/class" in (tmp_path / "budgets.md").read_text()
    assert [r["labels_per_class"] for r in json.loads((tmp_path / "budgets.json").read_text())["curve"]] == [1, 3]
