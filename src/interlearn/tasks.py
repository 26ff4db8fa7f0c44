"""Tasks: what a model's output means, how it is scored and how its loss is computed.

A ``Task`` bundles a name, the output size a head needs, a loss and metrics. A single-task run
is a multi-task run with one task.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F

from interlearn.errors import ConfigError, DataError

__all__ = [
    "Task",
    "TaskKind",
    "classification",
    "regression",
    "multilabel",
    "cross_entropy",
    "accuracy_sums",
    "sum_tensors",
    "ScoredTask",
]

TaskKind = Literal["classification", "regression", "multilabel"]
_KINDS = ("classification", "regression", "multilabel")


@dataclass(frozen=True)
class Task:
    """A supervised task.

    Attributes:
        name: task name (a key of a multi-task model's output dict).
        kind: ``"classification"`` (integer labels, cross-entropy, accuracy),
            ``"regression"`` (float targets, MSE, MAE/RMSE) or ``"multilabel"``
            (0/1 targets, BCE-with-logits, per-label accuracy).
        num_outputs: the head's output size (classes, regression dims or labels).
        label_smoothing: for classification only.

    Example:
        >>> task = classification(10)
        >>> task.loss(torch.zeros(4, 10), torch.tensor([0, 1, 2, 3])).item() > 0
        True
    """

    name: str = "main"
    kind: TaskKind = "classification"
    num_outputs: int = 2
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"task {self.name!r}: kind={self.kind!r} is not one of {_KINDS}")
        if self.num_outputs < 1:
            raise ConfigError(f"task {self.name!r}: num_outputs={self.num_outputs} must be >= 1")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"task {self.name!r}: label_smoothing={self.label_smoothing} must be in [0, 1)")

    @property
    def higher_is_better(self) -> bool:
        """Whether :attr:`main_metric` improves upwards (accuracy) or downwards (MSE)."""
        return self.kind != "regression"

    @property
    def main_metric(self) -> str:
        """The metric used for early stopping and model selection."""
        return "mse" if self.kind == "regression" else "accuracy"

    def check_targets(self, y: torch.Tensor, field: str = "y") -> None:
        """Validate targets for this task; raise ``DataError`` naming the offending field."""
        if self.kind == "classification":
            if y.dtype.is_floating_point or y.dtype == torch.bool:
                raise DataError(
                    f"{field}: classification labels must be integers, got dtype {y.dtype}; cast with .long()"
                )
            if y.dim() != 1:
                raise DataError(f"{field}: classification labels must be 1-D, got shape {tuple(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_outputs):
                raise DataError(
                    f"{field}: labels must be in [0, {self.num_outputs - 1}] for task {self.name!r}, "
                    f"found range [{int(y.min())}, {int(y.max())}]; set num_outputs/num_classes accordingly"
                )
        else:
            if not y.dtype.is_floating_point:
                raise DataError(f"{field}: {self.kind} targets must be floating point, got {y.dtype}")
            if not torch.isfinite(y).all():
                bad = int((~torch.isfinite(y)).sum())
                raise DataError(f"{field}: {bad} non-finite target values (NaN/Inf); clean or drop those rows")

    def loss(self, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The task loss of ``output`` (logits / predictions) against ``target``."""
        if self.kind == "classification":
            return F.cross_entropy(output, target, label_smoothing=self.label_smoothing, reduction=reduction)
        if self.kind == "multilabel":
            loss = F.binary_cross_entropy_with_logits(output, target.to(output.dtype), reduction="none").mean(-1)
            return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
        out = output.reshape(target.shape) if output.numel() == target.numel() else output
        loss = F.mse_loss(out, target.to(out.dtype), reduction="none")
        loss = loss.reshape(loss.shape[0], -1).mean(-1)
        return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss

    @torch.no_grad()
    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Per-batch *sums* of each metric (divide by the example count for means)."""
        n = target.shape[0]
        if self.kind == "classification":
            return {
                "accuracy": float((output.argmax(-1) == target).sum()),
                "loss": float(self.loss(output, target, "sum")),
                "n": n,
            }
        if self.kind == "multilabel":
            pred = (output > 0).to(target.dtype)
            acc = (pred == target).float().mean(-1).sum()
            return {"accuracy": float(acc), "loss": float(self.loss(output, target, "sum")), "n": n}
        out = output.reshape(target.shape) if output.numel() == target.numel() else output
        err = (out - target).reshape(n, -1)
        return {
            "mse": float(err.pow(2).mean(-1).sum()),
            "mae": float(err.abs().mean(-1).sum()),
            "loss": float(err.pow(2).mean(-1).sum()),
            "n": n,
        }


class ScoredTask(Protocol):
    """What :func:`interlearn.fit` and :func:`interlearn.evaluate` need from a task: a
    :class:`Task`, or a multi-task :class:`~interlearn.multitask.TaskSet` (whose outputs are a
    dict per task; it may also define ``finalize_metrics``)."""

    @property
    def higher_is_better(self) -> bool: ...

    @property
    def main_metric(self) -> str: ...

    def metric_sums(self, output: Any, target: torch.Tensor) -> dict[str, float]: ...


def classification(num_classes: int, name: str = "main", label_smoothing: float = 0.0) -> Task:
    """A classification task with ``num_classes`` classes (cross-entropy, accuracy)."""
    return Task(name=name, kind="classification", num_outputs=num_classes, label_smoothing=label_smoothing)


def regression(dim: int = 1, name: str = "main") -> Task:
    """A regression task with ``dim`` outputs (MSE loss; MSE and MAE metrics)."""
    return Task(name=name, kind="regression", num_outputs=dim)


def multilabel(num_labels: int, name: str = "main") -> Task:
    """A multi-label task with ``num_labels`` independent binary labels (BCE, accuracy)."""
    return Task(name=name, kind="multilabel", num_outputs=num_labels)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy with the class dimension at 1: (B, C) logits with (B,) labels, or
    (B, C, T) logits with (B, T) labels (a prediction at every position of a sequence)."""
    return F.cross_entropy(logits, y.long())


@torch.no_grad()
def accuracy_sums(logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """``(correct, total)`` predictions, the class dimension at 1 (either layout above)."""
    return int((logits.argmax(1) == y).sum()), int(y.numel())


def sum_tensors(values: Iterable[torch.Tensor]) -> torch.Tensor:
    """``values[0] + values[1] + ...`` in order (what ``sum()`` computes, typed as a tensor).

    Raises:
        ValueError: no values.
    """
    total: torch.Tensor | None = None
    for v in values:
        total = v if total is None else total + v
    if total is None:
        raise ValueError("sum_tensors: nothing to add")
    return total
