import dataclasses

import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.multitask import (
    MMoE,
    MultiTaskModel,
    TaskSet,
    evaluate_multitask,
    heads_for,
    mix_sources,
    mlp_trunk,
    train_independent,
    train_multitask,
)
from interlearn.multitask.data import DIGITS_TASKS, load_digits_multitask

CFG = FitConfig(epochs=8, batch_size=64, lr=3e-3, device="cpu", amp=False)


@pytest.fixture(scope="module")
def digits():
    return load_digits_multitask()


def _model(tasks=DIGITS_TASKS):
    torch.manual_seed(0)
    return MultiTaskModel(mlp_trunk(64, 48, 32), heads_for(tasks.tasks, 32))


def _mean_acc(metrics):
    return sum(m["accuracy"] for m in metrics.values()) / len(metrics)


@pytest.mark.parametrize("method", ["equal", "upgrad"])
def test_training_learns_every_task(digits, method):
    train, test = digits
    model = _model()
    before = _mean_acc(evaluate_multitask(model, test, DIGITS_TASKS))
    res = train_multitask(model, train, DIGITS_TASKS, method, CFG)
    metrics = evaluate_multitask(model, test, DIGITS_TASKS)
    assert set(metrics) == {"digit", "parity", "ge5"}
    assert (
        metrics["digit"]["accuracy"] > 0.85
        and metrics["parity"]["accuracy"] > 0.85
        and metrics["ge5"]["accuracy"] > 0.85
    )
    assert _mean_acc(metrics) > before + 0.3
    assert len(res.fit.history) == CFG.epochs and res.method.last_weights


def test_validation_through_fit_uses_the_taskset(digits):
    train, test = digits
    res = train_multitask(
        _model(), train, DIGITS_TASKS, "equal", FitConfig(epochs=3, device="cpu", amp=False), val=test
    )
    row = res.fit.history[-1]
    assert {"val_mean_accuracy", "val_digit_accuracy", "val_parity_accuracy"} <= set(row)
    assert res.fit.best_metric == max(h["val_mean_accuracy"] for h in res.fit.history)


def test_mmoe_trains_and_owns_its_gates(digits):
    train, test = digits
    torch.manual_seed(0)
    model = MMoE(lambda: mlp_trunk(64, 32, 16), heads_for(DIGITS_TASKS.tasks, 16), num_experts=3, gate_input=64)
    assert any(p is model.gates["digit"].weight for p in model.task_parameters("digit"))
    for method in ("equal", "pcgrad"):
        train_multitask(model, train, DIGITS_TASKS, method, FitConfig(epochs=4, lr=3e-3, device="cpu", amp=False))
    assert _mean_acc(evaluate_multitask(model, test, DIGITS_TASKS)) > 0.8


def test_partial_labels_from_two_datasets(digits):
    """'digit' labels come from one half of the data, 'parity' from the other; no NaN, both learn."""
    train, test = digits
    tasks = TaskSet((DIGITS_TASKS["digit"], DIGITS_TASKS["parity"]))
    cols = DIGITS_TASKS.columns
    half = len(train) // 2
    src_digit = TensorData(train.x[:half], train.y[:half, cols["digit"]].squeeze(1).long())
    src_parity = TensorData(train.x[half:], train.y[half:, cols["parity"]].squeeze(1).long())
    mixed = mix_sources([(src_digit, "digit"), (src_parity, "parity")], tasks, schedule="uniform", size=1000)
    test2 = TensorData(test.x, torch.cat([test.y[:, cols["digit"]], test.y[:, cols["parity"]]], 1))
    for method in ("uncertainty", "mgda"):
        model = _model(tasks)
        train_multitask(
            model, mixed, tasks, method, FitConfig(epochs=6, batch_size=16, lr=3e-3, device="cpu", amp=False)
        )
        assert all(torch.isfinite(p).all() for p in model.parameters())
        metrics = evaluate_multitask(model, test2, tasks)
        assert metrics["digit"]["accuracy"] > 0.7 and metrics["parity"]["accuracy"] > 0.7, (method, metrics)


def test_evaluate_averages_over_labelled_rows_only(digits):
    _train, test = digits
    model = _model()
    full = evaluate_multitask(model, test, DIGITS_TASKS)
    y = test.y.clone()
    keep = torch.arange(len(y)) % 2 == 0
    y[~keep, DIGITS_TASKS.columns["digit"]] = float("nan")
    part = evaluate_multitask(model, TensorData(test.x, y), DIGITS_TASKS)
    sub = evaluate_multitask(model, TensorData(test.x[keep], test.y[keep]), DIGITS_TASKS)
    assert part["digit"]["accuracy"] == pytest.approx(sub["digit"]["accuracy"])
    assert part["parity"]["accuracy"] == pytest.approx(full["parity"]["accuracy"])


def test_independent_models_one_per_task(digits):
    train, _ = digits
    models, seconds = train_independent(_model, train, DIGITS_TASKS, FitConfig(epochs=1, device="cpu", amp=False))
    assert set(models) == set(seconds) == {"digit", "parity", "ge5"}
    assert all(list(m.heads) == [n] for n, m in models.items())


def test_bad_inputs_raise_clear_errors(digits):
    train, _ = digits
    with pytest.raises(ConfigError, match="MultiTaskModel"):
        train_multitask(nn.Linear(64, 10), train, DIGITS_TASKS)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no head for tasks"):
        train_multitask(_model(TaskSet((DIGITS_TASKS["digit"],))), train, DIGITS_TASKS)
    with pytest.raises(DataError, match="pack_targets"):
        train_multitask(_model(), TensorData(train.x, train.y[:, 0].long()), DIGITS_TASKS)
    with pytest.raises(ConfigError, match="known methods"):
        train_multitask(_model(), train, DIGITS_TASKS, "uncertainy")
    unlabelled = TensorData(train.x[:4], torch.full((4, DIGITS_TASKS.width), float("nan")))
    with pytest.raises(DataError, match="no labelled row"):
        train_multitask(_model(), unlabelled, DIGITS_TASKS)


def test_a_batch_without_any_label_is_skipped(digits):
    """Rows labelled for nothing only make steps without gradients; the loop does not diverge."""
    train, _ = digits
    y = train.y.clone()
    y[: len(y) // 2] = float("nan")
    model = _model()
    res = train_multitask(
        model, TensorData(train.x, y), DIGITS_TASKS, "famo", FitConfig(epochs=2, batch_size=8, device="cpu", amp=False)
    )
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in res.fit.history)


def test_fit_validation_metrics_are_means_over_the_labelled_rows(digits):
    train, test = digits
    y = test.y.clone()
    y[: len(y) // 2, DIGITS_TASKS.columns["digit"]] = float("nan")  # half the rows unlabelled for digit
    val = TensorData(test.x, y)
    model = _model()
    res = train_multitask(model, train, DIGITS_TASKS, "equal", FitConfig(epochs=1, device="cpu", amp=False), val=val)
    row, exact = res.fit.history[-1], evaluate_multitask(model, val, DIGITS_TASKS)
    for t in DIGITS_TASKS.names:
        assert row[f"val_{t}_accuracy"] == pytest.approx(exact[t]["accuracy"])
        assert row[f"val_{t}_loss"] == pytest.approx(exact[t]["loss"])
    assert row["val_mean_accuracy"] == pytest.approx(_mean_acc(exact))


class _Stop(Exception):
    pass


def _killed_at(method, epoch, **options):
    """The method, made to raise :class:`_Stop` when ``epoch`` starts (a killed process)."""
    from interlearn.multitask import make_method

    killed = make_method(method, DIGITS_TASKS.names, **options)
    original = killed.on_epoch_start

    def stop(e):
        if e == epoch:
            raise _Stop
        original(e)

    killed.on_epoch_start = stop
    return killed


@pytest.mark.parametrize("method", ["uncertainty", "dwa", "rlw", "famo", "gradnorm"])
def test_method_state_survives_a_resume(digits, tmp_path, method):
    """A run killed after epoch 2 and resumed ends where the uninterrupted run ends, method state
    (task weights, their optimizer, DWA's history, RLW's generator, FAMO's pending batch) included."""
    train, _ = digits
    cfg = FitConfig(epochs=4, batch_size=128, lr=3e-3, device="cpu", amp=False, checkpoint_dir=str(tmp_path / "ck"))
    full_model = _model()
    full = train_multitask(
        full_model, train, DIGITS_TASKS, method, FitConfig(epochs=4, batch_size=128, lr=3e-3, device="cpu", amp=False)
    )
    killed = _killed_at(method, 3)
    with pytest.raises(_Stop):
        train_multitask(_model(), train, DIGITS_TASKS, killed, cfg)
    resumed_model = _model()
    torch.manual_seed(123)  # the resumed process's global RNG differs
    resumed = train_multitask(resumed_model, train, DIGITS_TASKS, method, dataclasses.replace(cfg, resume=True))
    for p, q in zip(full_model.parameters(), resumed_model.parameters()):
        assert torch.equal(p, q)
    for (name, a), b in zip(full.method.state_dict().items(), resumed.method.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name


def test_nash_mtl_state_survives_a_resume(digits, tmp_path):
    """Nash-MTL's step count (its update schedule) and warm start are in the checkpoint: a killed
    and resumed run equals the uninterrupted one."""
    pytest.importorskip("cvxpy", reason="Nash-MTL needs cvxpy (the multitask extra)")
    train, _ = digits
    train = TensorData(train.x[:600], train.y[:600])
    opts = {"update_weights_every": 3}
    base = FitConfig(epochs=3, batch_size=128, lr=3e-3, device="cpu", amp=False)
    full_model = _model()
    train_multitask(full_model, train, DIGITS_TASKS, "nash_mtl", base, options=opts)
    cfg = dataclasses.replace(base, checkpoint_dir=str(tmp_path / "ck"))
    killed = _killed_at("nash_mtl", 2, **opts)
    with pytest.raises(_Stop):
        train_multitask(_model(), train, DIGITS_TASKS, killed, cfg)
    resumed_model = _model()
    resumed = train_multitask(
        resumed_model, train, DIGITS_TASKS, "nash_mtl", dataclasses.replace(cfg, resume=True), options=opts
    )
    for p, q in zip(full_model.parameters(), resumed_model.parameters(), strict=True):
        assert torch.equal(p, q)
    (state,) = resumed.method.get_extra_state()["weightings"].values()
    assert float(state["step"]) == 15  # 5 batches x 3 epochs, counted across the resume


def test_lenet_trunk_and_heads_take_the_papers_dropout():
    from interlearn.multitask import lenet_trunk

    torch.manual_seed(0)
    tasks = TaskSet((DIGITS_TASKS["digit"],))
    model = MultiTaskModel(lenet_trunk(28, 50, dropout=0.5), heads_for(tasks.tasks, 50, hidden=50, dropout=0.5))
    x = torch.rand(8, 1, 28, 28)
    assert model(x)["digit"].shape == (8, 10)
    model.eval()
    assert torch.equal(model(x)["digit"], model(x)["digit"])  # no dropout at evaluation
    model.train()
    assert not torch.equal(model(x)["digit"], model(x)["digit"])
    assert sum(isinstance(m, (nn.Dropout, nn.Dropout2d)) for m in model.modules()) == 2
    with pytest.raises(ConfigError, match="dropout"):
        lenet_trunk(dropout=1.0)
