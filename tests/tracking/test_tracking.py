"""Tracking a fit in TensorBoard and MLflow, read back with each library's own reader."""

import json
import sys

import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import ConfigError
from interlearn.tasks import classification
from interlearn.tracking import TrackingConfig, open_tracker, paused, recording, section
from interlearn.training import fit

tensorboard = pytest.importorskip(
    "tensorboard", reason="the tracking extra (pip install 'interlearn[tracking]') is not installed"
)
mlflow = pytest.importorskip(
    "mlflow", reason="the tracking extra (pip install 'interlearn[tracking]') is not installed"
)


def _data(n=60):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return TensorData(x, (x[:, 0] > 0).long())


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def tb_scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    return {tag: [(e.step, e.value) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}, ea


def tb_hparams(ea):
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = {}
    for raw in ea.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            for k, v in data.session_start_info.hparams.items():
                out[k] = (
                    v.number_value
                    if v.HasField("number_value")
                    else v.string_value
                    if v.HasField("string_value")
                    else v.bool_value
                )
    return out


def mlflow_run(uri, name):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("interlearn")
    (run,) = client.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{name}'")
    return client, run


def test_fit_tracks_to_tensorboard_and_mlflow(tmp_path):
    data = _data()
    cfg = FitConfig(epochs=3, batch_size=16, lr=0.05, checkpoint_dir=str(tmp_path / "ck"))
    spec = {"tensorboard": str(tmp_path / "tb"), "mlflow": str(tmp_path / "mlruns"), "run_name": "digits-fit"}
    res = fit(_model(), data, classification(2), cfg, val=data, tracking=spec)
    losses = [h["train_loss"] for h in res.history]

    scalars, ea = tb_scalars(tmp_path / "tb" / "digits-fit")
    assert [s for s, _ in scalars["train_loss"]] == [0, 1, 2]
    assert [v for _, v in scalars["train_loss"]] == pytest.approx(losses, rel=1e-6)
    assert [v for _, v in scalars["val_accuracy"]] == pytest.approx([h["val_accuracy"] for h in res.history])
    hp = tb_hparams(ea)
    assert hp["fit.lr"] == pytest.approx(0.05) and hp["fit.epochs"] == 3 and hp["processes"] == 1
    art = tmp_path / "tb" / "digits-fit" / "artifacts"
    assert json.loads((art / "summary.json").read_text())["epochs"] == 3
    assert (art / "checkpoint" / "state.json").is_file() and (art / "final" / "tensors.safetensors").is_file()

    uri = (tmp_path / "mlruns").resolve().as_uri()
    client, run = mlflow_run(uri, "digits-fit")
    hist = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in hist] == [0, 1, 2] and [m.value for m in hist] == pytest.approx(losses, rel=1e-6)
    assert run.data.params["fit.lr"] == "0.05" and run.data.params["fit.optimizer"] == "adamw"
    assert run.info.status == "FINISHED"
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "final", "checkpoint"} <= names
    mlflow.set_tracking_uri(uri)
    listed = mlflow.search_runs(experiment_names=["interlearn"], output_format="list")
    assert listed[0].data.metrics["train_loss"] == pytest.approx(losses[-1], rel=1e-6)


def test_a_failing_fit_marks_the_run_failed(tmp_path):
    def boom(epoch, model):
        if epoch == 1:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        fit(
            _model(),
            _data(),
            classification(2),
            FitConfig(epochs=3),
            on_epoch_start=boom,
            tracking=TrackingConfig(mlflow=str(tmp_path / "mlruns"), run_name="broken"),
        )
    _, run = mlflow_run((tmp_path / "mlruns").resolve().as_uri(), "broken")
    assert run.info.status == "FAILED"


def test_recording_names_the_parts_and_pauses_inner_trainings(tmp_path):
    tracker = open_tracker({"tensorboard": str(tmp_path / "tb"), "run_name": "parts"}, "recipe", {"seed": 1})
    with tracker, recording(tracker):
        with section("scratch"):
            fit(_model(), _data(), classification(2), FitConfig(epochs=2))
            fit(_model(), _data(), classification(2), FitConfig(epochs=1))  # a second training in the same part
        with paused():
            fit(_model(), _data(), classification(2), FitConfig(epochs=1))
    scalars, _ = tb_scalars(tmp_path / "tb" / "parts")
    assert len(scalars["scratch/train_loss"]) == 2 and len(scalars["scratch/fit2/train_loss"]) == 1
    assert set(scalars) == {f"{p}/{k}" for p in ("scratch", "scratch/fit2") for k in ("epoch", "train_loss", "lr")}


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "give tensorboard: DIR and/or mlflow: URI"),
        ({"tensorbord": "x"}, r"tracking.tensorbord: unknown field of TrackingConfig; known fields: 'tensorboard'"),
        ({"mlflow": ""}, r"tracking.mlflow='': give a non-empty tracking URI or folder"),
        ({"mlflow": "ftp://host/x"}, "unknown URI scheme"),
        ("tensorboard", r"give where to write, e.g. \{'tensorboard': 'runs/tb'\}"),
    ],
)
def test_bad_tracking_specs_name_the_fix(spec, message):
    with pytest.raises(ConfigError, match=message):
        open_tracker(spec, "fit")


def test_missing_library_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r"pip install 'interlearn\[tracking\]'"):
        fit(_model(), _data(), classification(2), FitConfig(epochs=1), tracking={"mlflow": str(tmp_path / "m")})
