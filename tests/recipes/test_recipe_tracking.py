"""``tracking:`` in a recipe: validated like any field; the run's parts, summary and folder tracked."""

import json

import pytest

from interlearn.errors import ConfigError
from interlearn.recipes import load_recipe, run_recipe

RECIPE = """kind: distill
teacher_hidden: [32]
teacher_fit: {epochs: 2, batch_size: 128, lr: 0.003}
student_fit: {epochs: 2, batch_size: 128, lr: 0.003}
latency_repeats: 1
"""


@pytest.mark.parametrize(
    "tracking, message",
    [
        (
            "tracking: {tensorbord: runs/tb}",
            r"tracking.tensorbord: unknown field of TrackingConfig; known fields: 'tensorboard'",
        ),
        ("tracking: runs/tb", r"tracking: expected a mapping such as \{tensorboard: runs/tb\}"),
        ("tracking: {}", r"give tensorboard: DIR and/or mlflow: URI"),
        ("tracking: {mlflow: 3}", r"tracking.mlflow: expected a string, got 3"),
    ],
)
def test_tracking_field_is_validated(tmp_path, tracking, message):
    p = tmp_path / "r.yaml"
    p.write_text(RECIPE + tracking + "\n")
    with pytest.raises(ConfigError, match=message):
        load_recipe(p)


def test_recipe_run_is_tracked(tmp_path):
    pytest.importorskip(
        "tensorboard", reason="the tracking extra (pip install 'interlearn[tracking]') is not installed"
    )
    pytest.importorskip("mlflow", reason="the tracking extra (pip install 'interlearn[tracking]') is not installed")
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    p = tmp_path / "r.yaml"
    p.write_text(RECIPE + f"tracking: {{tensorboard: {tmp_path / 'tb'}, mlflow: {tmp_path / 'mlruns'}}}\n")
    run_dir = run_recipe(p, tmp_path / "run", progress=False)

    ea = EventAccumulator(str(tmp_path / "tb" / "run"), size_guidance={"scalars": 0})
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {
        "teacher/train_loss",
        "student_alone/train_loss",
        "distilled/train_loss",
        "summary/distilled/accuracy",
    } <= tags
    assert len(ea.Scalars("teacher/train_loss")) == 2

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("interlearn").experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["recipe.kind"] == "distill" and run.data.params["recipe.teacher_fit.epochs"] == "2"
    assert run.data.params["teacher.fit.lr"] == "0.003"
    rows = json.loads((run_dir / "summary.json").read_text())
    assert run.data.metrics["summary/distilled/accuracy"] == pytest.approx(rows["distilled"]["accuracy"])
    assert {"summary.md", "summary.json", "config.yaml"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
