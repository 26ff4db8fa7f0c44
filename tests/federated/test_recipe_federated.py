import json

import pytest
import yaml

from interlearn.errors import ConfigError
from interlearn.recipes import example_recipes, load_recipe, run_recipe


def _write(tmp_path, **over):
    src = next(p for p in example_recipes() if p.name == "federated.yaml")
    data = yaml.safe_load(src.read_text())
    for k, v in over.items():
        if isinstance(v, dict):
            data.setdefault(k, {}).update(v)
        else:
            data[k] = v
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_example_recipe_validates():
    kind, cfg = load_recipe(next(p for p in example_recipes() if p.name == "federated.yaml"))
    assert kind == "federated" and cfg.strategy.name == "fedavg" and cfg.engine == "auto"


def test_recipe_runs_and_resumes(tmp_path):
    path = _write(tmp_path, rounds=3, checkpoint_every=1, data={"num_clients": 6}, clients_per_round=3,
                  strategy={"name": "fedadam", "options": {"lr": 0.01}})
    out = run_recipe(path, tmp_path / "run", progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert "federated" in json.dumps(summary)
    for f in ("metrics.jsonl", "accuracy.png", "client_accuracy.png", "partition.png", "checkpoint/state.json"):
        assert (out / f).exists(), f
    # extend the same run by two rounds with resume
    path = _write(tmp_path, rounds=5, checkpoint_every=1, data={"num_clients": 6}, clients_per_round=3,
                  strategy={"name": "fedadam", "options": {"lr": 0.01}}, resume=True)
    run_recipe(path, tmp_path / "run", progress=False)
    rounds = [json.loads(s)["round"] for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert rounds == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "over, message",
    [
        ({"strategy": {"name": "fedadamm"}}, r"federated.strategy: name: unknown strategy 'fedadamm'.*fedadam"),
        ({"engine": "gpu"}, r"federated.engine: 'gpu' is not allowed"),
        ({"client": {"lr": -1}}, r"federated.client: lr=-1"),
        ({"clients_per_round": 50}, r"exceeds data.num_clients=20"),
        ({"client": {"scaffold": True}}, r"scaffold"),
        ({"data": {"partitioner": "pathological"}}, r"federated.data.partitioner"),
        ({"data": {"dataset": "femnist"}}, r"FEMNIST is split by writer"),
        ({"strategy": {"aggregator": "medain"}}, r"aggregator: unknown 'medain'.*median"),
    ],
)
def test_recipe_errors_name_the_field(tmp_path, over, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(_write(tmp_path, **over))


def test_recipe_with_privacy_states_what_its_epsilon_covers(tmp_path):
    path = _write(tmp_path, rounds=3, data={"num_clients": 10}, clients_per_round=4, checkpoint_every=0,
                  privacy={"noise_multiplier": 1.0, "clip_norm": 0.5, "delta": 1e-4})
    out = run_recipe(path, tmp_path / "run", progress=False)
    row = json.loads((out / "summary.json").read_text())["federated"]
    assert row["epsilon"] > 0 and row["delta"] == 1e-4
    md = (out / "summary.md").read_text()
    for phrase in ("## Privacy", "Poisson sampling", "add/remove one client", "fixed denominator", "opacus rdp",
                   "not used for amplification", "after 3 round(s)"):
        assert phrase in md, phrase
    records = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["dp/sampling"].startswith("Poisson") for r in records)


def test_recipe_privacy_refuses_what_has_no_matching_accountant_or_mechanism(tmp_path):
    with pytest.raises(ConfigError, match="kind='dp_rdp'"):
        load_recipe(_write(tmp_path, privacy={"sampling": "fixed", "accountant": "rdp"}))
    with pytest.raises(ConfigError, match="mean-based strategy"):
        load_recipe(_write(tmp_path, privacy={}, strategy={"name": "fedavg", "aggregator": "median"}))
    with pytest.raises(ConfigError, match="min_survivors: 1"):
        load_recipe(_write(tmp_path, privacy={}, min_survivors=2))
    with pytest.raises(ConfigError, match="noise_multiplier"):
        load_recipe(_write(tmp_path, privacy={"noise_multiplier": 0.0}))
