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
    path = _write(
        tmp_path,
        rounds=3,
        checkpoint_every=1,
        data={"num_clients": 6},
        clients_per_round=3,
        strategy={"name": "fedadam", "options": {"lr": 0.01}},
    )
    out = run_recipe(path, tmp_path / "run", progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert "federated" in json.dumps(summary)
    for f in ("metrics.jsonl", "accuracy.png", "client_accuracy.png", "partition.png", "checkpoint/state.json"):
        assert (out / f).exists(), f
    # extend the same run by two rounds with resume
    path = _write(
        tmp_path,
        rounds=5,
        checkpoint_every=1,
        data={"num_clients": 6},
        clients_per_round=3,
        strategy={"name": "fedadam", "options": {"lr": 0.01}},
        resume=True,
    )
    run_recipe(path, tmp_path / "run", progress=False)
    rounds = [json.loads(s)["round"] for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert rounds == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "over, message",
    [
        ({"strategy": {"name": "fedadamm"}}, r"federated.strategy.name: unknown strategy 'fedadamm'.*fedadam"),
        (
            {"engine": "gpu"},
            r"federated.engine: unknown engine 'gpu'; known engines: \['auto', 'multicore', 'ray', 'sequential', 'vectorized'\]",
        ),
        ({"client": {"lr": -1}}, r"federated.client: lr=-1"),
        ({"clients_per_round": 50}, r"exceeds data.num_clients=20"),
        ({"client": {"scaffold": True}}, r"scaffold"),
        ({"data": {"partitioner": "pathological"}}, r"federated.data.partitioner"),
        ({"data": {"dataset": "femnist"}}, r"FEMNIST is split by writer"),
        ({"strategy": {"aggregator": "medain"}}, r"aggregator: unknown aggregator 'medain'.*median"),
        (
            {"strategy": {"aggregator": "trimmed_mean", "aggregator_options": {"trim_ratio": 0.1}}},
            r"aggregator: aggregator 'trimmed_mean'.*trim_ratio",
        ),
        (
            {"strategy": {"aggregator": "trimmed_mean", "aggregator_options": {"trim": 0.7}}},
            r"aggregator: trim must lie in \[0, 0.5\)",
        ),
        ({"strategy": {"aggregator_options": {"num_byzantine": 1}}}, r"aggregator_options=.*without an aggregator"),
        ({"steps": [{"clip": {"max_norm": -1.0}}]}, r"federated.steps\[0\].clip: max_norm must be a positive"),
        ({"steps": [{"clipp": {}}]}, r"federated.steps\[0\].clipp: unknown field of StepSpec; known fields: 'clip'"),
        ({"steps": [{"clip": {}, "dp": {}}]}, r"steps\[0\]: a step names exactly one of .*got \['clip', 'dp'\]"),
        (
            {"steps": [{"dp": {}}]},
            r"steps\[0\].dp: the noise is calibrated to the clip norm, so a clip step must come first",
        ),
        ({"steps": [{"clip": {}}, {"clip": {}}]}, r"steps\[1\].clip: the step already appears as steps\[0\]"),
        ({"steps": [{"compress": {"method": "q2"}}]}, r"federated.steps\[0\].compress.method: 'q2' is not allowed"),
        ({"steps": [{"secagg": {"neighbours": 3}}]}, r"neighbours must be 'all', 'log' or an even degree"),
        ({"steps": [{"validate": {"min_valid": 0}}]}, r"federated.steps\[0\].validate: min_valid must be >= 1"),
        (
            {"steps": [{"secagg": {}}], "strategy": {"name": "fedavg", "aggregator": "median"}},
            r"secagg .*mean-based strategy",
        ),
    ],
)
def test_recipe_errors_name_the_field(tmp_path, over, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(_write(tmp_path, **over))


DP = [{"clip": {"max_norm": 0.5}}, {"dp": {"noise_multiplier": 1.0, "delta": 1e-4}}]


def test_recipe_with_dp_states_what_its_epsilon_covers(tmp_path):
    path = _write(tmp_path, rounds=3, data={"num_clients": 10}, clients_per_round=4, checkpoint_every=0, steps=DP)
    out = run_recipe(path, tmp_path / "run", progress=False)
    row = json.loads((out / "summary.json").read_text())["federated"]
    assert row["epsilon"] > 0 and row["delta"] == 1e-4
    md = (out / "summary.md").read_text()
    for phrase in (
        "## Privacy",
        "Poisson sampling",
        "add/remove one client",
        "fixed denominator",
        "opacus rdp",
        "not used for amplification",
        "after 3 round(s)",
    ):
        assert phrase in md, phrase
    records = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["dp/sampling"].startswith("Poisson") for r in records)
    written = yaml.safe_load((out / "config.yaml").read_text())["steps"]
    assert written == [
        {
            "clip": {
                "max_norm": 0.5,
                "adaptive": False,
                "target_quantile": 0.5,
                "learning_rate": 0.2,
                "count_noise_std": 0.0,
            }
        },
        {
            "dp": {
                "noise_multiplier": 1.0,
                "mode": "central",
                "delta": 1e-4,
                "target_epsilon": None,
                "sampling": "poisson",
                "accountant": None,
            }
        },
    ]


def test_recipe_runs_every_step_and_a_robust_aggregator(tmp_path):
    steps = [
        {"clip": {"max_norm": 5.0}},
        {"validate": {"max_norm": 10.0}},
        {"compress": {"method": "q8"}},
        {"secagg": {"neighbours": "log"}},
    ]
    path = _write(
        tmp_path,
        rounds=2,
        data={"num_clients": 8},
        clients_per_round=4,
        checkpoint_every=0,
        steps=steps,
        engine="sequential",
    )
    out = run_recipe(path, tmp_path / "run", progress=False)
    records = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["clip/norm"] == 5.0 for r in records)
    assert all(r["compress/bytes_up"] > 0 for r in records)
    path = _write(
        tmp_path,
        rounds=2,
        data={"num_clients": 8},
        clients_per_round=6,
        checkpoint_every=0,
        engine="sequential",
        strategy={"name": "fedavg", "aggregator": "trimmed_mean", "aggregator_options": {"trim": 0.2}},
    )
    _, cfg = load_recipe(path)
    assert "TrimmedMean" in repr(cfg.strategy.build(8).aggregator)
    run_recipe(path, tmp_path / "run2", progress=False)


def test_recipe_dp_refuses_what_has_no_matching_accountant_or_mechanism(tmp_path):
    with pytest.raises(ConfigError, match="kind='dp_rdp'"):
        load_recipe(_write(tmp_path, steps=[{"clip": {}}, {"dp": {"sampling": "fixed", "accountant": "rdp"}}]))
    with pytest.raises(ConfigError, match="mean-based strategy"):
        load_recipe(_write(tmp_path, steps=DP, strategy={"name": "fedavg", "aggregator": "median"}))
    with pytest.raises(ConfigError, match="min_survivors: 1"):
        load_recipe(_write(tmp_path, steps=DP, min_survivors=2))
    with pytest.raises(ConfigError, match="noise_multiplier"):
        load_recipe(_write(tmp_path, steps=[{"clip": {}}, {"dp": {"noise_multiplier": 0.0}}]))
