"""The ``multitask`` recipe: one multi-task model per method vs independent single-task models.

Data: the embedded digits with three attributes (digit, parity, >=5) or MultiMNIST (left/right
digit, built from MNIST). Optionally only a fraction of the training rows is labelled for each
task (partial labels, independently per task). Architecture: hard sharing (trunk + heads), MMoE, or a cross-stitch network.
Every method and the independent baseline train with the same ``fit`` settings; the rows report
per-task accuracy, Δm% against the baseline, parameters, weight bytes, time and memory, and
``multitask.png`` plots them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, closest
from interlearn.multitask.compare import compare_methods, plot_comparison
from interlearn.multitask.cross_stitch import CrossStitch
from interlearn.multitask.data import DIGITS_TASKS, MULTIMNIST_TASKS, load_digits_multitask, load_multimnist
from interlearn.multitask.methods import list_methods
from interlearn.multitask.model import MMoE, MultiTaskModel, heads_for, lenet_stages, lenet_trunk, mlp_stages, mlp_trunk
from interlearn.multitask.targets import TaskSet

__all__ = ["DataConfig", "Config", "run", "build_model", "load_data"]


@dataclass(frozen=True)
class DataConfig:
    """Which multi-task data.

    Attributes:
        dataset: ``"digits"`` (embedded; tasks digit, parity, ge5) or ``"multimnist"`` (tasks
            left, right; needs MNIST in ``data_dir``).
        data_dir: folder with ``mnist/`` (default ``$INTERLEARN_DATA``).
        train_size: MultiMNIST training images (default 60,000).
        labelled_fraction: share of training rows labelled for each task, drawn independently
            per task (1.0: every row has every label).
        seed: data seed (split, MultiMNIST generation, label masks).
    """

    dataset: Literal["digits", "multimnist"] = "digits"
    data_dir: str | None = None
    train_size: int | None = None
    labelled_fraction: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.labelled_fraction <= 1:
            raise ConfigError(f"labelled_fraction={self.labelled_fraction}: must be in (0, 1]")
        if self.train_size is not None and self.train_size < 1:
            raise ConfigError(f"train_size={self.train_size}: must be >= 1")


ARCHITECTURES = ("hard", "mmoe", "cross_stitch")


def _default_fit() -> FitConfig:
    return FitConfig(epochs=30, batch_size=64, lr=3e-3, amp=False)


@dataclass(frozen=True)
class Config:
    """The ``multitask`` recipe.

    Attributes:
        data: which data.
        architecture: ``"hard"`` (trunk + heads), ``"mmoe"`` (experts + per-task gates) or
            ``"cross_stitch"`` (a column per task, mixed by learned stitch units).
        num_experts: MMoE experts.
        methods: registered method names (:func:`interlearn.multitask.list_methods`).
        method_options: ``{method: {option: value}}`` (e.g. ``static: {weights: {digit: 2.0}}``).
        independent: also train one model per task (the baseline of Δm%).
        fit: training settings shared by every run.
        seed: model initialization seed.
    """

    data: DataConfig = field(default_factory=DataConfig)
    architecture: Literal["hard", "mmoe", "cross_stitch"] = "hard"
    num_experts: int = 3
    methods: tuple[str, ...] = ("equal",)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    independent: bool = True
    fit: FitConfig = field(default_factory=_default_fit)
    seed: int = 0

    def __post_init__(self) -> None:
        known = list_methods()
        bad = [m for m in self.methods if m not in known]
        if bad:
            raise ConfigError(
                f"methods: {bad} unknown; known methods: {', '.join(known)} (closest: {closest(bad[0], known)})"
            )
        if not self.methods:
            raise ConfigError("methods: give at least one method, e.g. [equal, upgrad]")
        extra = [m for m in self.method_options if m not in self.methods]
        if extra:
            raise ConfigError(f"method_options for {extra}, which are not in methods {list(self.methods)}")
        if self.num_experts < 1:
            raise ConfigError(f"num_experts={self.num_experts}: must be >= 1")
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture={self.architecture!r}: use one of {', '.join(ARCHITECTURES)} (closest: {closest(self.architecture, ARCHITECTURES)})"
            )


def build_model(config: Config, tasks: TaskSet) -> MultiTaskModel:
    """The recipe's architecture for ``tasks`` (MLP on digits, LeNet on MultiMNIST)."""
    stages: Callable[[], list[nn.Module]]
    make: Callable[[], nn.Module]
    if config.data.dataset == "digits":
        stages, heads, gate_in = (lambda: mlp_stages(64, 64, 32)), heads_for(tasks.tasks, 32), 64
        make = lambda: mlp_trunk(64, 64, 32)
    else:
        stages, heads, gate_in = (lambda: lenet_stages(28, 50)), heads_for(tasks.tasks, 50, hidden=50), 28 * 28
        make = lambda: lenet_trunk(28, 50)
    if config.architecture == "mmoe":
        return MMoE(make, heads, config.num_experts, gate_in)
    if config.architecture == "cross_stitch" and len(tasks) > 1:
        return CrossStitch(stages, heads)
    return MultiTaskModel(make(), heads)


def _mask_labels(data: TensorData, tasks: TaskSet, fraction: float, seed: int) -> TensorData:
    if fraction >= 1:
        return data
    gen = torch.Generator().manual_seed(seed + 7)
    y = data.y.clone()
    for cols in tasks.columns.values():
        drop = torch.rand(len(y), generator=gen) >= fraction
        y[drop, cols] = float("nan")
    return TensorData(data.x, y)


def load_data(data: DataConfig) -> tuple[TensorData, TensorData, TaskSet]:
    """``(train, test, tasks)`` for the data config (train labels masked per ``labelled_fraction``)."""
    if data.dataset == "digits":
        train, test = load_digits_multitask(seed=data.seed)
        tasks = DIGITS_TASKS
    else:
        train = load_multimnist("train", data.data_dir, n=data.train_size, seed=data.seed)
        test = load_multimnist("test", data.data_dir, seed=data.seed + 1)
        tasks = MULTIMNIST_TASKS
    return _mask_labels(train, tasks, data.labelled_fraction, data.seed), test, tasks


def run(config: Config, run_dir: Path, progress: bool = False) -> dict[str, dict[str, Any]]:
    """Run the comparison; write ``multitask.png`` in ``run_dir``; return the summary rows."""
    train, test, tasks = load_data(config.data)
    fit_cfg = (
        config.fit if config.fit.progress == progress else FitConfig(**{**config.fit.__dict__, "progress": progress})
    )
    rows = compare_methods(
        lambda ts: build_model(config, ts),
        train,
        test,
        tasks,
        config.methods,
        fit_cfg,
        options=config.method_options,
        independent=config.independent,
        seed=config.seed,
    )
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    plot_comparison(
        rows, tasks, Path(run_dir) / "multitask.png", title=f"{config.data.dataset}: multi-task vs independent"
    )
    return rows
