"""Multi-task targets with partial labels: a ``TaskSet``, packed target tensors and masked losses.

All tasks' targets live in one float tensor ``y`` of shape (N, columns) so that a multi-task
dataset is an ordinary :class:`~interlearn.data.TensorData` and :func:`interlearn.fit` can
shuffle and batch it unchanged. Each task owns a block of columns (1 for classification,
``num_outputs`` for regression and multi-label); a row whose block holds NaN is *unlabelled* for
that task. Its loss then ignores the row; a task with no labelled row in a batch contributes
nothing (no NaN, no gradient). Class labels are stored as exact float integers (< 2**24).

Tasks from different datasets are combined with :func:`mix_sources`, whose sampling schedule
(``proportional``, ``uniform`` or ``temperature``; Arivazhagan et al. 2019) decides how many
examples each source contributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError, ShapeError, closest
from interlearn.tasks import Task

__all__ = ["TaskSet", "pack_targets", "mix_sources", "Schedule"]

Schedule = Literal["proportional", "uniform", "temperature"]


def _width(task: Task) -> int:
    return 1 if task.kind == "classification" else task.num_outputs


@dataclass(frozen=True)
class TaskSet:
    """The tasks of a multi-task model, in order; usable as the ``task`` of :func:`interlearn.fit`.

    Attributes:
        tasks: the tasks; their names key the model's output dict and must be unique.

    ``main_metric`` is ``"mean_accuracy"`` when every task is classification/multi-label, else
    ``"mean_loss"``. As ``fit``'s validation task, each per-task metric is a mean over the
    validation rows labelled for that task (as in :func:`interlearn.multitask.evaluate_multitask`),
    and the main metric is the mean over tasks.
    """

    tasks: tuple[Task, ...]

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("TaskSet needs at least one task")
        names = [t.name for t in self.tasks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"task names must be unique, {dup} repeat; give each task its own name")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ConfigError(f"unknown task {name!r}; tasks: {closest(name, self.names)}")

    @property
    def columns(self) -> dict[str, slice]:
        """The block of ``y`` columns of each task."""
        out, start = {}, 0
        for t in self.tasks:
            out[t.name] = slice(start, start + _width(t))
            start += _width(t)
        return out

    @property
    def width(self) -> int:
        return sum(_width(t) for t in self.tasks)

    @property
    def higher_is_better(self) -> bool:
        return self.main_metric == "mean_accuracy"

    @property
    def main_metric(self) -> str:
        return "mean_loss" if any(t.kind == "regression" for t in self.tasks) else "mean_accuracy"

    def split(self, y: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{task: (targets, labelled_mask)}`` from packed ``y`` (N, width).

        Targets keep all N rows (unlabelled ones hold NaN, or 0 for class labels); the mask
        (N,) is True where the row is labelled for that task.
        """
        if y.dim() != 2 or y.shape[1] != self.width:
            raise ShapeError(
                f"packed targets must have shape (N, {self.width}) for tasks {self.names}, got {tuple(y.shape)}; build them with pack_targets()"
            )
        out = {}
        for t in self.tasks:
            block = y[:, self.columns[t.name]]
            mask = ~torch.isnan(block).any(-1)
            if t.kind == "classification":
                target = torch.where(mask, block[:, 0], torch.zeros_like(block[:, 0])).long()
            else:
                target = block
            out[t.name] = (target, mask)
        return out

    def losses(self, outputs: Mapping[str, torch.Tensor], y: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[str]]:
        """Masked per-task mean losses and the names of tasks labelled in this batch.

        Returns:
            ``(losses, present)``: ``losses[t]`` is the mean loss over the rows labelled for
            ``t``; for a task with no labelled row it is an exact zero that still belongs to the
            graph (so summing never yields NaN) but carries no gradient signal.
        """
        missing = [n for n in self.names if n not in outputs]
        if missing:
            raise ShapeError(f"the model returned no output for tasks {missing}; its heads are {sorted(outputs)}")
        losses, present = {}, []
        for name, (target, mask) in self.split(y).items():
            out = outputs[name]
            if bool(mask.any()):
                losses[name] = self[name].loss(out[mask], target[mask])
                present.append(name)
            else:
                losses[name] = out.sum() * 0.0
        return losses, present

    @torch.no_grad()
    def metric_sums(self, outputs: Mapping[str, torch.Tensor], y: torch.Tensor) -> dict[str, float]:
        """Per-task metric sums over labelled rows (keys ``"<task>_<metric>"``), each with its
        own denominator under ``"n/<task>_<metric>"`` (the task's labelled rows), plus ``"n"``.

        :func:`interlearn.training.evaluate` divides each sum by its denominator, then
        :meth:`finalize_metrics` adds ``mean_accuracy`` / ``mean_loss``.
        """
        sums: dict[str, float] = {"n": float(y.shape[0])}
        for name, (target, mask) in self.split(y).items():
            if not bool(mask.any()):
                continue
            part = self[name].metric_sums(outputs[name][mask], target[mask])
            count = float(part.get("n", int(mask.sum())))
            for k, v in part.items():
                if k != "n":
                    sums[f"{name}_{k}"] = v
                    sums[f"n/{name}_{k}"] = count
        return sums

    def finalize_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Add the main metric: the mean over the tasks that had labelled rows of each task's
        accuracy (or loss, when a task is a regression)."""
        key = "accuracy" if self.main_metric == "mean_accuracy" else "loss"
        values = [metrics[f"{t.name}_{key}"] for t in self.tasks if f"{t.name}_{key}" in metrics]
        out = dict(metrics)
        out[self.main_metric] = sum(values) / len(values) if values else float("nan")
        return out


def pack_targets(
    targets: Mapping[str, torch.Tensor], tasks: TaskSet, masks: Mapping[str, torch.Tensor] | None = None
) -> torch.Tensor:
    """Pack per-task targets into one (N, width) float tensor; NaN marks unlabelled rows.

    Args:
        targets: ``{task: (N,) labels or (N, d) targets}``; a task left out is unlabelled.
        tasks: the task set fixing the column layout.
        masks: optional ``{task: (N,) bool}``; False rows become unlabelled for that task.

    Raises:
        DataError: unknown task names, row-count mismatch, labels out of range.
    """
    unknown = [k for k in list(targets) + list(masks or {}) if k not in tasks.names]
    if unknown:
        raise DataError(f"targets for unknown tasks {unknown}; tasks are {tasks.names}")
    if not targets:
        raise DataError("targets is empty: give at least one task's targets")
    n = next(iter(targets.values())).shape[0]
    y = torch.full((n, tasks.width), float("nan"))
    for name, t in targets.items():
        task = tasks[name]
        if t.shape[0] != n:
            raise DataError(f"targets[{name!r}] has {t.shape[0]} rows, expected {n} like the others")
        if task.kind == "classification":
            task.check_targets(t, f"targets[{name!r}]")
            block = t.reshape(n, 1).float()
        else:
            block = t.reshape(n, -1).float()
            if block.shape[1] != _width(task):
                raise ShapeError(f"targets[{name!r}] has {block.shape[1]} columns, task needs {_width(task)}")
        if masks is not None and name in masks:
            block = torch.where(masks[name].reshape(n, 1).bool(), block, torch.full_like(block, float("nan")))
        y[:, tasks.columns[name]] = block
    return y


def mix_sources(
    sources: Sequence[tuple[TensorData, str]],
    tasks: TaskSet,
    schedule: Schedule = "proportional",
    size: int | None = None,
    temperature: float = 2.0,
    seed: int = 0,
) -> TensorData:
    """Combine single-task datasets (same input shape) into one partially labelled training set.

    Args:
        sources: ``(data, task_name)`` pairs; ``data.y`` holds that task's targets only.
        tasks: the task set (its layout decides the packed columns).
        schedule: share of each source in the mix: ``proportional`` to its size (plain
            concatenation order, shuffled by ``fit``), ``uniform`` (equal shares) or
            ``temperature`` (share proportional to size**(1/temperature)).
        size: total examples drawn (default: the sum of the source sizes). Sources drawn above
            their size are sampled with replacement.
        temperature: for ``schedule="temperature"``.
        seed: sampling seed.

    Returns:
        A ``TensorData`` whose ``y`` is packed; each row is labelled for its source's task only.

    Raises:
        ConfigError: unknown schedule or task, empty sources, bad temperature.
        ShapeError: sources with different input shapes.
    """
    if schedule not in ("proportional", "uniform", "temperature"):
        raise ConfigError(f"schedule={schedule!r}; choose one of ['proportional', 'uniform', 'temperature']")
    if not sources:
        raise ConfigError("sources is empty: give (data, task_name) pairs")
    if temperature <= 0:
        raise ConfigError(f"temperature={temperature}: must be > 0")
    shapes = {tuple(d.x.shape[1:]) for d, _ in sources}
    if len(shapes) > 1:
        raise ShapeError(f"sources have different input shapes {sorted(shapes)}; resize them to one shape")
    sizes = torch.tensor([len(d) for d, _ in sources], dtype=torch.float64)
    total = int(size) if size is not None else int(sizes.sum())
    share = {"proportional": sizes, "uniform": torch.ones_like(sizes), "temperature": sizes ** (1.0 / temperature)}[
        schedule
    ]
    counts = torch.floor(share / share.sum() * total).long()
    counts[: total - int(counts.sum())] += 1
    gen = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for (data, name), k in zip(sources, counts.tolist()):
        if len(data) == 0:
            raise DataError(f"source for task {name!r} is empty")
        idx = (
            torch.randperm(len(data), generator=gen)[:k]
            if k <= len(data)
            else torch.randint(len(data), (k,), generator=gen)
        )
        xs.append(data.x[idx])
        ys.append(pack_targets({name: data.y[idx]}, tasks))
    return TensorData(torch.cat(xs), torch.cat(ys))
