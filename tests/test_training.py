import math

import pytest
import torch
from torch import nn

from interlearn.checkpoint import has_checkpoint, load_checkpoint
from interlearn.config import FitConfig
from interlearn.data import TensorData, load_digits
from interlearn.errors import ConfigError, DataError, TrainingDivergedError
from interlearn.optim import build_optimizer, build_scheduler
from interlearn.tasks import classification, regression
from interlearn.training import evaluate, fit


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_fit_learns_digits(digits):
    tr, te = digits
    model = _mlp()
    before = evaluate(model, te, classification(10))["accuracy"]
    res = fit(model, tr, classification(10), FitConfig(epochs=8, lr=3e-3), val=te)
    after = evaluate(model, te, classification(10))["accuracy"]
    assert before < 0.3 and after > 0.9
    assert len(res.history) == 8 and res.best_metric == pytest.approx(max(h["val_accuracy"] for h in res.history))


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_schedules_and_optimizers_reduce_loss(digits, schedule, optimizer):
    tr, _ = digits
    model = _mlp()
    res = fit(
        model,
        tr,
        classification(10),
        FitConfig(
            epochs=3,
            lr=0.05 if optimizer == "sgd" else 3e-3,
            optimizer=optimizer,
            schedule=schedule,
            warmup=0.1 if schedule != "onecycle" else 0.0,
            clip_grad_norm=1.0,
        ),
    )
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_cosine_schedule_ends_near_zero(digits):
    tr, _ = digits
    res = fit(_mlp(), tr, classification(10), FitConfig(epochs=2, lr=1e-2, schedule="cosine", warmup=0.2))
    assert res.history[-1]["lr"] < 1e-4


def test_same_seed_is_deterministic(digits):
    tr, _ = digits
    a, b = _mlp(), _mlp()
    fit(a, tr, classification(10), FitConfig(epochs=2, seed=3))
    fit(b, tr, classification(10), FitConfig(epochs=2, seed=3))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_resume_equals_uninterrupted(digits, tmp_path):
    tr, te = digits
    full = _mlp()
    fit(full, tr, classification(10), FitConfig(epochs=4, seed=1, optimizer="adamw"), val=te)
    # "kill" after 2 epochs: run 2 epochs of the same 4-epoch schedule by raising in the hook
    part = _mlp()

    class Stop(Exception):
        pass

    def stop_at_2(epoch, model):
        if epoch == 2:
            raise Stop

    cfg = FitConfig(epochs=4, seed=1, optimizer="adamw", checkpoint_dir=str(tmp_path / "ck"))
    with pytest.raises(Stop):
        fit(part, tr, classification(10), cfg, val=te, on_epoch_start=stop_at_2)
    assert has_checkpoint(tmp_path / "ck")
    _, meta = load_checkpoint(tmp_path / "ck")
    assert meta["epoch"] == 1
    resumed = _mlp(seed=99)  # different init: everything must come from the checkpoint
    res = fit(
        resumed,
        tr,
        classification(10),
        FitConfig(epochs=4, seed=1, optimizer="adamw", checkpoint_dir=str(tmp_path / "ck"), resume=True),
        val=te,
    )
    assert len(res.history) == 4
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_nan_loss_stops_with_message_and_keeps_checkpoint(digits, tmp_path):
    tr, _ = digits
    model = _mlp()
    calls = {"n": 0}

    def loss(m, x, y):
        calls["n"] += 1
        out = nn.functional.cross_entropy(m(x), y)
        return out * float("nan") if calls["n"] > 25 else out  # diverges in epoch 2

    with pytest.raises(TrainingDivergedError, match="loss became nan at epoch 1"):
        fit(
            model,
            tr,
            classification(10),
            FitConfig(epochs=3, batch_size=64, checkpoint_dir=str(tmp_path)),
            compute_loss=loss,
        )
    tensors, meta = load_checkpoint(tmp_path)
    assert meta["epoch"] == 0 and all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model."))


def test_early_stopping_restores_best(digits):
    tr, te = digits
    model = _mlp()
    res = fit(model, tr, classification(10), FitConfig(epochs=30, lr=3e-2, patience=2, schedule="constant"), val=te)
    assert res.stopped_early and len(res.history) < 30
    assert evaluate(model, te, classification(10))["accuracy"] == pytest.approx(res.best_metric)


def test_regression_task():
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    data = TensorData(x, y)
    model = nn.Linear(3, 1)
    fit(model, data, regression(1), FitConfig(epochs=40, lr=0.05, batch_size=32))
    assert evaluate(model, data, regression(1))["mse"] < 1e-3


def test_frozen_params_stay_frozen(digits):
    tr, _ = digits
    model = _mlp()
    model[0].weight.requires_grad_(False)
    w = model[0].weight.clone()
    fit(model, tr, classification(10), FitConfig(epochs=1))
    assert torch.equal(w, model[0].weight)


def test_bad_inputs(digits):
    tr, _ = digits
    with pytest.raises(DataError, match="labels must be in"):
        fit(_mlp(), tr, classification(5), FitConfig(epochs=1))
    with pytest.raises(DataError, match="empty"):
        fit(_mlp(), TensorData(torch.zeros(0, 64), torch.zeros(0, dtype=torch.long)), classification(10))
    with pytest.raises(ConfigError, match="optimizer='lion'"):
        FitConfig(optimizer="lion")
    with pytest.raises(ConfigError, match="resume=True needs checkpoint_dir"):
        FitConfig(resume=True)
    m = _mlp()
    for p in m.parameters():
        p.requires_grad_(False)
    with pytest.raises(DataError, match="no trainable parameters"):
        fit(m, tr, classification(10))


def test_dict_losses_are_summed_and_custom_backward_is_used(digits):
    tr, _ = digits
    seen = {}

    def losses(m, x, y):
        out = m(x)
        return {"a": nn.functional.cross_entropy(out, y), "b": out.pow(2).mean() * 0.0}

    def backward(loss, m):
        seen["keys"] = sorted(loss)
        sum(loss.values()).backward()

    res = fit(_mlp(), tr, classification(10), FitConfig(epochs=1), compute_loss=losses, backward=backward)
    assert seen["keys"] == ["a", "b"] and math.isfinite(res.history[0]["train_loss"])


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 8])
def test_onecycle_runs_on_a_handful_of_steps(total_steps):
    # torch's OneCycleLR divides by zero when warm-up x steps is exactly one step (tiny data)
    model = nn.Linear(2, 2)
    config = FitConfig(schedule="onecycle", warmup=0.25, lr=0.1)
    opt = build_optimizer(model.parameters(), config)
    sched = build_scheduler(opt, config, total_steps)
    for _ in range(total_steps):
        opt.step()
        sched.step()
    assert all(g["lr"] >= 0 for g in opt.param_groups)
