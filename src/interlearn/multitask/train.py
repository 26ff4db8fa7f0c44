"""Training and evaluating multi-task models with :func:`interlearn.fit`'s hooks.

``train_multitask`` plugs a method into the one training loop: ``compute_loss`` runs the trunk
once, the heads, and the masked per-task losses; ``backward`` hands the labelled tasks' losses to
the method (loss weighting or gradient combination); ``on_epoch_start`` lets DWA roll its
history. ``train_independent`` trains one single-task model per task, the baseline the
multi-task claims are measured against.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.multitask.base import MTLContext, MTLMethod
from interlearn.multitask.methods import make_method
from interlearn.multitask.model import MultiTaskModel
from interlearn.multitask.targets import TaskSet
from interlearn.training import FitResult, batches, fit, resolve_device

__all__ = ["train_multitask", "evaluate_multitask", "train_independent", "MultiTaskResult", "model_device"]


@dataclass
class MultiTaskResult:
    """What :func:`train_multitask` returns: the fit result and the (trained) method."""

    fit: FitResult
    method: MTLMethod

    @property
    def train_seconds(self) -> float:
        return self.fit.train_seconds


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-less model)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _check(model: nn.Module, tasks: TaskSet, data: TensorData, field: str) -> None:
    if not isinstance(model, MultiTaskModel):
        raise ConfigError(
            f"model must be an interlearn.multitask.MultiTaskModel (trunk + heads), got {type(model).__name__}"
        )
    missing = [t for t in tasks.names if t not in model.heads]
    if missing:
        raise ConfigError(f"the model has no head for tasks {missing}; its heads are {model.task_names}")
    if data.y.dim() != 2 or data.y.shape[1] != tasks.width or not data.y.dtype.is_floating_point:
        raise DataError(
            f"{field}.y must be packed float targets of shape (N, {tasks.width}) for tasks {tasks.names}, got {tuple(data.y.shape)} {data.y.dtype}; use pack_targets()"
        )
    labelled = {n: int(m.sum()) for n, (_, m) in tasks.split(data.y).items()}
    for name, (target, mask) in tasks.split(data.y).items():
        if tasks[name].kind == "classification" and bool(mask.any()):
            tasks[name].check_targets(target[mask], f"{field}.y[{name}]")
    if field == "train" and not any(labelled.values()):
        raise DataError(f"{field} has no labelled row for any task ({labelled})")


def train_multitask(
    model: MultiTaskModel,
    train: TensorData,
    tasks: TaskSet,
    method: str | MTLMethod = "equal",
    config: FitConfig | None = None,
    *,
    val: TensorData | None = None,
    options: Mapping[str, Any] | None = None,
) -> MultiTaskResult:
    """Train a multi-task model with a loss-weighting or gradient-combination method.

    Args:
        model: a :class:`MultiTaskModel` (or :class:`MMoE`) with a head per task.
        train: inputs and packed targets (:func:`pack_targets`, NaN = unlabelled).
        tasks: the task set.
        method: a registered name (:func:`list_methods`) or an :class:`MTLMethod`.
        config: the training configuration (``FitConfig``).
        val: validation data (packed) for per-epoch metrics and best-epoch restore.
        options: the method's options (e.g. ``{"weights": {...}}`` for ``static``).

    Mixed precision (``config.amp``) is turned off here: ``fit``'s GradScaler only scales the
    default ``loss.backward()``, not a method's own backward, so scaled steps would be wrong.

    Returns:
        A :class:`MultiTaskResult` (the ``FitResult`` and the method with its final state).

    Raises:
        ConfigError: unknown method (known ones are listed), missing heads.
        DataError: targets not packed for ``tasks``, labels out of range.
    """
    cfg = config or FitConfig()
    if cfg.amp:
        cfg = dataclasses.replace(cfg, amp=False)
    _check(model, tasks, train, "train")
    if val is not None:
        _check(model, tasks, val, "val")
    m = make_method(method, tasks.names, **dict(options or {})) if isinstance(method, str) else method
    dev = resolve_device(cfg.device)
    model.to(dev)
    m.to(dev)
    compute_loss, backward = _loss_and_backward(model, tasks, m)
    groups: list[dict[str, Any]] = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if m.optimizer_params:
        groups.append({"params": list(m.parameters()), "weight_decay": 0.0})
    result = fit(
        model,
        train,
        tasks,
        cfg,
        val=val,
        param_groups=groups,
        compute_loss=compute_loss,
        backward=backward,
        on_epoch_start=lambda epoch, mdl: m.on_epoch_start(epoch),
        extra_state=m,
    )
    return MultiTaskResult(result, m)


def _loss_and_backward(
    model: MultiTaskModel, tasks: TaskSet, m: MTLMethod
) -> tuple[
    Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]], Callable[[Any, nn.Module], None]
]:
    """``fit``'s ``compute_loss`` (the per-task losses) and ``backward`` (the method combines them).

    The loss keeps the batch's shared features for the method's backward, which may also
    recompute the losses without gradient.
    """
    last: dict[str, Any] = {}

    def recompute(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            losses, present = tasks.losses(model(x), y)
        return {t: losses[t] for t in present}

    def compute_loss(mdl: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        features = model.shared(x)
        losses, present = tasks.losses(model.task_outputs(features, x), y)
        last.update(features=features, present=present, x=x, y=y)
        return losses

    def backward(losses: Any, mdl: nn.Module) -> None:
        ctx = MTLContext(model, last["features"], last["x"], last["y"], recompute)
        m.backward({t: losses[t] for t in last["present"]}, ctx)

    return compute_loss, backward


@torch.no_grad()
def evaluate_multitask(
    model: nn.Module, data: TensorData, tasks: TaskSet, batch_size: int = 1024
) -> dict[str, dict[str, float]]:
    """Per-task metrics, each a mean over the rows labelled for that task, on the model's device.

    Returns:
        ``{task: {"accuracy": ..., "loss": ...}}`` (``mse``/``mae`` for regression); a task with
        no labelled row is left out.
    """
    dev = model_device(model)
    was = model.training
    model.eval()
    sums: dict[str, dict[str, float]] = {t: {} for t in tasks.names}
    for idx in batches(len(data), batch_size):
        out = model(data.x[idx].to(dev))
        for name, (target, mask) in tasks.split(data.y[idx].to(dev)).items():
            if bool(mask.any()):
                for k, v in tasks[name].metric_sums(out[name][mask], target[mask]).items():
                    sums[name][k] = sums[name].get(k, 0.0) + float(v)
    model.train(was)
    return {t: {k: v / s["n"] for k, v in s.items() if k != "n"} for t, s in sums.items() if s.get("n")}


def train_independent(
    build: Callable[[TaskSet], MultiTaskModel],
    train: TensorData,
    tasks: TaskSet,
    config: FitConfig | None = None,
) -> tuple[dict[str, MultiTaskModel], dict[str, float]]:
    """Train one single-task model per task on the rows labelled for it.

    Args:
        build: makes a model for a task set (called with a one-task ``TaskSet``).
        train: packed training data.
        tasks: the tasks.
        config: training configuration (the same one the multi-task model gets).

    Returns:
        ``(models, seconds)``: ``{task: model}`` and ``{task: train_seconds}``.
    """
    models, seconds = {}, {}
    for task in tasks.tasks:
        one = TaskSet((task,))
        mask = tasks.split(train.y)[task.name][1]
        data = TensorData(train.x[mask], train.y[mask][:, tasks.columns[task.name]])
        model = build(one)
        t0 = time.perf_counter()
        res = train_multitask(model, data, one, "equal", config)
        seconds[task.name] = res.train_seconds if res.train_seconds > 0 else time.perf_counter() - t0
        models[task.name] = model
    return models, seconds
