"""A tracked ``simulate``: per-round metrics, the config as params, the run folder as artifacts,
read back with TensorBoard's event reader and MLflow's client."""

import pytest
from fl_helpers import blobs, tiny_mlp

from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.partition import shards

pytest.importorskip("tensorboard", reason="the tracking extra (pip install 'interlearn[tracking]') is not installed")
pytest.importorskip("mlflow", reason="the tracking extra (pip install 'interlearn[tracking]') is not installed")


def test_simulate_tracks_rounds(tmp_path):
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = blobs(96)
    pop = Population(x, y, shards(y, 6, 2, seed=0))
    cfg = SimulationConfig(rounds=3, clients_per_round=3, seed=1, progress=False, checkpoint_every=3)
    spec = {"tensorboard": str(tmp_path / "tb"), "mlflow": str(tmp_path / "mlruns"), "run_name": "fl"}
    res = simulate(
        tiny_mlp(),
        pop,
        LocalSGD(epochs=1, batch_size=8, lr=0.1),
        get_strategy("fedavg"),
        cfg,
        test=(x, y),
        run_dir=tmp_path / "run",
        tracking=spec,
    )
    accs = [r["test_accuracy"] for r in res.history]

    ea = EventAccumulator(str(tmp_path / "tb" / "fl"), size_guidance={"scalars": 0})
    ea.Reload()
    assert [(e.step, e.value) for e in ea.Scalars("test_accuracy")] == [
        (r, pytest.approx(a)) for r, a in zip((1, 2, 3), accs)
    ]
    assert "client_accuracy/mean" in ea.Tags()["scalars"]
    assert (tmp_path / "tb" / "fl" / "artifacts" / "checkpoint" / "state.json").is_file()

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("interlearn").experiment_id])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "test_accuracy")] == pytest.approx(accs)
    assert run.data.params["config.rounds"] == "3" and run.data.params["client_update.lr"] == "0.1"
    assert {"metrics.jsonl", "checkpoint", "accuracy.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert run.info.status == "FINISHED"
