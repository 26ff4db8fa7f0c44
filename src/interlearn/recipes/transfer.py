"""The ``transfer`` recipe: pretrain on the abundant related classes, transfer to the few-label ones.

Splits a dataset's classes into a source task (all labels) and a target task (``labels_per_class``
labels per class), pretrains a base on the source (or loads ``pretrained``), then compares on the
target task's test images: training from scratch, transfer (kept layers frozen, features cached,
``cut`` chosen by cross-validation when ``"auto"``) and discriminative fine-tuning at the same
cut, all with the same fixed budget of optimizer steps. With ``budgets`` it also writes the
label-budget report (:mod:`interlearn.budgets`): a table and a plot over seeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from interlearn.budgets import BudgetConfig, finetune_at, label_budgets
from interlearn.config import FitConfig, step_config
from interlearn.data import TensorData
from interlearn.errors import ConfigError
from interlearn.models.small_cnn import small_cnn
from interlearn.pretrained import load_pretrained
from interlearn.recipes.splits import DataConfig, split_classes
from interlearn.surgery import count_params
from interlearn.tasks import Task, classification
from interlearn.tracking import paused, section
from interlearn.training import evaluate, fit
from interlearn.transfer import fresh_tail, pretrain, resolve_cut, transfer

__all__ = ["DataConfig", "Config", "run", "build_model", "split_classes"]


@dataclass(frozen=True)
class Config:
    """The ``transfer`` recipe.

    Attributes:
        data: the source/target split.
        model: ``"cnn"`` (:func:`interlearn.models.small_cnn.small_cnn`) or ``"mlp"``
            (``Flatten -> 128 -> 64 -> k``); one architecture for every method.
        pretrained: instead of pretraining on the source classes, load a base
            (:func:`interlearn.pretrained.load_pretrained`: a local file, ``timm:``/``hf:`` name).
        pretrain: the base's training on the source task (default: ``pretrain_steps`` steps of
            64 examples, AdamW lr 2e-3, cosine).
        pretrain_steps: optimizer steps of the default pretraining.
        cut: ``"auto"`` (cross-validated), a layer index, or the first replaced layer's name.
        folds: cross-validation folds for ``cut: auto``.
        steps: optimizer steps every method gets on the target task (fixed budget).
        batch_size: examples per step on the target task.
        lr: learning rate of newly initialized layers (AdamW, warmup + cosine).
        weight_decay: AdamW weight decay on the target task.
        finetune_lr_scale: pretrained layers' learning rate relative to ``lr`` when fine-tuning.
        compare: other methods to run next to ``transfer``: ``scratch``, ``finetune``.
        budgets: when non-empty, also the label-budget report at these labels per class.
        budget_seeds: seeds of the label-budget report.
        seed: seeds initialization.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: Literal["cnn", "mlp"] = "cnn"
    pretrained: str | None = None
    pretrain: FitConfig | None = None
    pretrain_steps: int = 600
    cut: str = "auto"
    folds: int = 5
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    finetune_lr_scale: float = 0.1
    compare: tuple[str, ...] = ("scratch", "finetune")
    budgets: tuple[int, ...] = ()
    budget_seeds: tuple[int, ...] = (0, 1, 2)
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [c for c in self.compare if c not in ("scratch", "finetune")]
        if bad:
            raise ConfigError(f"compare: {bad} unknown; choose from ['scratch', 'finetune']")
        if self.folds < 2 or self.steps < 1 or self.batch_size < 1 or self.pretrain_steps < 1:
            raise ConfigError(
                f"folds={self.folds}, steps={self.steps}, batch_size={self.batch_size}, pretrain_steps={self.pretrain_steps}: "
                "need folds >= 2 and the others >= 1"
            )
        if not self.lr > 0 or not 0 < self.finetune_lr_scale <= 1:
            raise ConfigError(
                f"lr={self.lr}, finetune_lr_scale={self.finetune_lr_scale}: need lr > 0 and 0 < finetune_lr_scale <= 1"
            )
        if self.budgets and min(self.budgets) < 1:
            raise ConfigError(f"budgets={self.budgets}: labels per class must be >= 1")


def build_model(kind: str, sample: torch.Tensor, classes: int, seed: int) -> nn.Sequential:
    """The recipe's shared architecture for inputs shaped like ``sample`` (N, ...)."""
    if kind == "cnn":
        return small_cnn(classes, image_size=sample.shape[-1], in_channels=sample.shape[1], seed=seed)
    torch.manual_seed(seed)
    d = sample[0].numel()
    return nn.Sequential(
        nn.Flatten(), nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, classes)
    )


def _row(
    model: nn.Module, data: TensorData, seconds: float, trainable: int | None = None, **extra: Any
) -> dict[str, Any]:
    acc = evaluate(model, data, classification(int(data.y.max()) + 1))["accuracy"]
    return {
        "accuracy": acc,
        "trainable_params": trainable if trainable is not None else count_params(model, True),
        "train_seconds": seconds,
        **extra,
    }


def run(config: Config, run_dir: Path, progress: bool = False) -> dict[str, dict[str, Any]]:
    """Run the recipe; write ``autocut.txt``/``autocut.json`` (and the budget report) to ``run_dir``.

    Returns:
        Summary rows ``transfer`` (plus ``scratch`` / ``finetune`` per ``compare``), each with
        ``accuracy`` (target test set), ``trainable_params`` and ``train_seconds``; the transfer
        row also has ``cut``, ``cut_name``, ``negative_transfer`` and ``features_cached``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = split_classes(config.data, image=config.model == "cnn")
    src_task, task = classification(len(config.data.source_classes)), classification(len(config.data.target_classes))

    def make(seed: int) -> nn.Module:
        return build_model(config.model, data["source"].x[:1], src_task.num_outputs, seed)

    pre_cfg = config.pretrain or replace(
        step_config(len(data["source"]), config.pretrain_steps, 64, 2e-3, seed=config.seed), progress=progress
    )
    base, cut, pre_seconds = _base(config, make, data["source"], src_task, pre_cfg)
    fc = step_config(len(data["target"]), config.steps, config.batch_size, config.lr, config.weight_decay, config.seed)
    rows: dict[str, dict[str, Any]] = {}
    if "scratch" in config.compare:
        t0 = time.perf_counter()
        scratch = fresh_tail(make(config.seed), 0, task.num_outputs, seed=config.seed)
        with section("scratch"):
            fit(scratch, data["target"], task, fc)
        rows["scratch"] = _row(scratch, data["target_test"], time.perf_counter() - t0)
    t0 = time.perf_counter()
    with section("transfer"):
        res = transfer(base, data["target"], task, cut=cut, config=fc, folds=config.folds, seed=config.seed)
    rows["transfer"] = _row(
        res.model,
        data["target_test"],
        time.perf_counter() - t0,
        res.trainable_params,
        cut=res.cut,
        cut_name=res.cut_name,
        negative_transfer=bool(res.autocut and res.autocut.negative_transfer),
        features_cached=res.cached,
        pretrain_seconds=pre_seconds,
    )
    (run_dir / "autocut.txt").write_text(res.summary() + "\n")
    if res.autocut is not None:
        (run_dir / "autocut.json").write_text(json.dumps(res.autocut.to_dict(), indent=2))
    if "finetune" in config.compare:
        t0 = time.perf_counter()
        with section("finetune"):
            model = finetune_at(base, res.cut, data["target"], task, fc, config.finetune_lr_scale, seed=config.seed)
        rows["finetune"] = _row(model, data["target_test"], time.perf_counter() - t0, cut=res.cut)
    if config.budgets:
        _budgets(config, make, data, (src_task, task), pre_cfg, run_dir, progress)
    return rows


def _base(
    config: Config, make: Callable[[int], nn.Module], source: TensorData, src_task: Task, pre_cfg: FitConfig
) -> tuple[nn.Module, int | str, float]:
    """The base (loaded, or pretrained on ``source``), the resolved cut and the seconds it took.

    A bad cut fails here, before any training.
    """
    t0 = time.perf_counter()
    base = (
        load_pretrained(config.pretrained, architecture=make(config.seed)) if config.pretrained else make(config.seed)
    )
    cut: int | str = "auto" if config.cut == "auto" else resolve_cut(base, config.cut)  # fail before training
    if not config.pretrained:
        with section("pretrain"):
            pretrain(base, source, src_task, pre_cfg)
    return base, cut, time.perf_counter() - t0


def _budgets(
    config: Config,
    make: Callable[[int], nn.Module],
    data: dict[str, TensorData],
    tasks: tuple[Task, Task],
    pre_cfg: FitConfig,
    run_dir: Path,
    progress: bool,
) -> None:
    """The label-budget comparison (:func:`interlearn.budgets.label_budgets`), written to ``run_dir``."""
    src_task, task = tasks
    bcfg = BudgetConfig(
        labels_per_class=config.budgets,
        seeds=config.budget_seeds,
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        finetune_lr_scale=config.finetune_lr_scale,
        folds=config.folds,
    )
    say = (lambda line: print(line, flush=True)) if progress else None
    with paused():  # dozens of small trainings: only the report is tracked (as an artifact)
        report = label_budgets(
            make, data["source"], src_task, data["target_pool"], data["target_test"], task, bcfg, pre_cfg, say
        )
    (run_dir / "budgets.json").write_text(json.dumps(report.to_dict(), indent=2))
    (run_dir / "budgets.md").write_text(report.table() + "\n")
    report.plot(run_dir / "budgets.png")
