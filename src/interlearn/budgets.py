"""Label-budget report: transfer vs fine-tuning vs training from scratch at several label budgets.

For every seed the base is pretrained once on the abundant related task and reused at every
budget. At each budget (labels per class) the same labelled subset is given to three methods
that share one architecture and one fixed training budget (the same number of optimizer
steps, learning rate and schedule, chosen by rule, never on the test set):

- ``scratch``: the architecture trained from random weights on the labelled subset;
- ``transfer``: :func:`interlearn.transfer.transfer` with ``cut="auto"`` (kept layers frozen,
  features cached, replaced layers trained);
- ``finetune``: the same cut, but the kept layers train too, at a smaller learning rate
  (discriminative fine-tuning, Howard & Ruder 2018, ULMFiT).

The report gives mean and spread over seeds as a table and a plot (accuracy vs labels/class).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.autocut import AutoCutReport, auto_cut
from interlearn.config import FitConfig, step_config
from interlearn.cuts import cut_module
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.lora import LORA_LAYERS, LoraSpec, apply_lora
from interlearn.plotting import pyplot, save_figure
from interlearn.schema import to_dict
from interlearn.split import fresh_tail, split_at
from interlearn.surgery import count_params, freeze, unfreeze
from interlearn.tasks import Task
from interlearn.training import evaluate, fit
from interlearn.transfer import pretrain, transfer

__all__ = ["BudgetConfig", "BudgetReport", "label_budgets", "sample_per_class", "finetune_at", "lora_at", "METHODS"]

METHODS = ("scratch", "transfer", "finetune", "lora")


@dataclass(frozen=True)
class BudgetConfig:
    """Settings of the label-budget comparison.

    Attributes:
        labels_per_class: label budgets to evaluate.
        seeds: repetitions (pretraining, label sampling and initialization change with the seed).
        methods: any of ``"scratch"``, ``"transfer"``, ``"finetune"``, ``"lora"`` (LoRA on the kept
            layers at the chosen cut, the replaced ones trained in full).
        steps: optimizer steps every method gets at every budget (the fair fixed budget).
        batch_size: examples per step (capped at the labelled set's size).
        lr: peak learning rate of the newly initialized layers (AdamW, warmup + cosine).
        weight_decay: AdamW weight decay.
        finetune_lr_scale: the kept, pretrained layers' learning rate relative to ``lr``.
        folds: cross-validation folds for the auto cut.
    """

    labels_per_class: tuple[int, ...] = (1, 5, 10, 50)
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = ("scratch", "transfer", "finetune")
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    finetune_lr_scale: float = 0.1
    folds: int = 5

    def __post_init__(self) -> None:
        if not self.labels_per_class or min(self.labels_per_class) < 1:
            raise ConfigError(f"labels_per_class={self.labels_per_class}: give one or more budgets >= 1")
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ConfigError(f"methods={self.methods}: {bad or 'empty'}; choose from {list(METHODS)}")
        if self.steps < 1 or self.batch_size < 1 or self.folds < 2:
            raise ConfigError(
                f"steps={self.steps}, batch_size={self.batch_size}, folds={self.folds}: need steps, batch_size >= 1 and folds >= 2"
            )
        if not self.lr > 0 or not 0 < self.finetune_lr_scale <= 1 or self.weight_decay < 0:
            raise ConfigError(
                f"lr={self.lr}, finetune_lr_scale={self.finetune_lr_scale}, weight_decay={self.weight_decay}: need lr > 0, 0 < scale <= 1, decay >= 0"
            )


def sample_per_class(data: TensorData, k: int, seed: int = 0) -> TensorData:
    """``k`` random examples of every class of ``data`` (seeded).

    Raises:
        DataError: a class has fewer than ``k`` examples.
    """
    g = torch.Generator().manual_seed(seed)
    picks = []
    classes = torch.unique(data.y).tolist()
    smallest = min((int((data.y == c).sum()) for c in classes), default=0)
    for c in classes:
        idx = (data.y == c).nonzero().flatten()
        if len(idx) < k:
            raise DataError(
                f"class {c} has {len(idx)} examples, fewer than labels_per_class={k}; "
                f"lower labels_per_class to at most {smallest} (the smallest class)"
            )
        picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return data.subset(torch.cat(picks))


def finetune_at(
    base: nn.Module,
    cut: int | str,
    data: TensorData,
    task: Task,
    config: FitConfig,
    lr_scale: float = 0.1,
    seed: int = 0,
) -> nn.Module:
    """Discriminative fine-tuning: fresh layers from ``cut`` on at ``config.lr``, the pretrained
    layers before it at ``config.lr * lr_scale``; everything trains. Returns the trained model.

    ``cut`` is a layer index of a Sequential or a submodule name of any module (:mod:`interlearn.cuts`).
    """
    if isinstance(cut, str):
        nc = cut_module(base, cut, task.num_outputs, data.x[:2], seed=seed)
        model: nn.Module = nc.model()
        fresh = [p for p in nc.new.parameters() if p.requires_grad]
        ids = {id(p) for p in fresh}
        kept = [p for p in model.parameters() if id(p) not in ids]
        unfreeze(model)
        groups = [{"params": fresh, "lr": config.lr}] + ([{"params": kept, "lr": config.lr * lr_scale}] if kept else [])
        fit(model, data, task, config, param_groups=groups)
        return model
    body, _ = split_at(copy.deepcopy(base), cut)
    tail = fresh_tail(base, cut, task.num_outputs, sample=data.x[:1], seed=seed)
    model = nn.Sequential(*body, *tail)
    for p in model.parameters():
        p.requires_grad_(True)
    groups = [{"params": list(tail.parameters()), "lr": config.lr}]
    if any(True for _ in body.parameters()):
        groups.append({"params": list(body.parameters()), "lr": config.lr * lr_scale})
    fit(model, data, task, config, param_groups=groups)
    return model


def _cut_model(
    base: nn.Module, cut: int | str, data: TensorData, task: Task, seed: int
) -> tuple[nn.Module, list[str], list[str]]:
    """``(model, kept module names, fresh module names)``: ``base`` cut at ``cut``, fresh layers at
    the end, everything frozen except the fresh layers."""
    if isinstance(cut, int):
        body, _ = split_at(copy.deepcopy(base), cut)
        freeze(body)
        head = fresh_tail(base, cut, task.num_outputs, sample=data.x[:1], seed=seed)
        return nn.Sequential(OrderedDict(body=body, head=head)), ["body"], ["head"]
    nc = cut_module(base, cut, task.num_outputs, data.x[:2], seed=seed)
    if nc.separable:
        return nc.model(), ["body"], ["head"]
    fresh = [n for n, m in nc.new.named_modules() if n and any(p.requires_grad for p in m.parameters(recurse=False))]
    kept = [
        n for n, m in nc.new.named_modules() if n and any(True for _ in m.parameters(recurse=False)) and n not in fresh
    ]
    return nc.new, kept, fresh


def lora_at(
    base: nn.Module, cut: int | str, data: TensorData, task: Task, config: FitConfig, r: int = 4, seed: int = 0
) -> nn.Module:
    """LoRA (Hu et al. 2021, through PEFT) on the kept layers before ``cut``; the fresh layers from
    ``cut`` on train in full. Returns the trained model.

    Raises:
        ConfigError: the kept part has no ``nn.Linear``/``nn.Conv2d`` for LoRA to adapt.
    """
    model, kept, fresh = _cut_model(base, cut, data, task, seed)
    modules = dict(model.named_modules())
    targets = [
        n
        for n, m in modules.items()
        if isinstance(m, LORA_LAYERS) and any(n == k or n.startswith(k + ".") for k in kept)
    ]
    if not targets:
        raise ConfigError(
            f"LoRA at cut {cut!r}: the kept layers have no nn.Linear/nn.Conv2d to adapt; choose a later cut"
        )
    peft_model = apply_lora(model, LoraSpec(targets=tuple(targets), r=r, alpha=2.0 * r, modules_to_save=tuple(fresh)))
    fit(peft_model, data, task, config)
    return peft_model


@dataclass
class BudgetReport:
    """Per-run results and their summary.

    Attributes:
        runs: one dict per (seed, budget, method): ``accuracy``, ``trainable_params``,
            ``seconds`` and, for transfer/finetune, the ``cut`` and auto-cut method.
        config: the :class:`BudgetConfig` used.
    """

    runs: list[dict[str, Any]] = field(default_factory=list)
    config: BudgetConfig = field(default_factory=BudgetConfig)
    autocuts: list[dict[str, Any]] = field(default_factory=list)

    def curve(self) -> list[dict[str, Any]]:
        """Per budget: ``{"labels_per_class", "<method>_mean", "<method>_std", "<method>_runs"}``."""
        out = []
        for b in self.config.labels_per_class:
            row: dict[str, Any] = {"labels_per_class": b}
            for m in self.config.methods:
                accs = [r["accuracy"] for r in self.runs if r["labels_per_class"] == b and r["method"] == m]
                if accs:
                    mean = sum(accs) / len(accs)
                    row[f"{m}_mean"] = mean
                    row[f"{m}_std"] = math.sqrt(sum((a - mean) ** 2 for a in accs) / max(len(accs) - 1, 1))
                    row[f"{m}_runs"] = accs
            cuts = [r["cut"] for r in self.runs if r["labels_per_class"] == b and r["method"] == "transfer"]
            if cuts:
                row["transfer_cuts"] = cuts
            out.append(row)
        return out

    def table(self) -> str:
        """Markdown table: accuracy mean ± std (over seeds) per budget and method."""
        ms = self.config.methods
        lines = [
            "| labels/class | " + " | ".join(ms) + " | cuts chosen (transfer) |",
            "|---:|" + "---:|" * len(ms) + "---|",
        ]
        for row in self.curve():
            cells = [
                f"{100 * row[f'{m}_mean']:.1f} ± {100 * row[f'{m}_std']:.1f}" if f"{m}_mean" in row else "" for m in ms
            ]
            lines.append(f"| {row['labels_per_class']} | " + " | ".join(cells) + f" | {row.get('transfer_cuts', '')} |")
        return "\n".join(lines)

    def plot(
        self, path: str | Path, title: str = "accuracy vs label budget", ylabel: str = "test accuracy (%)"
    ) -> Path:
        """PNG: accuracy (mean, error bars = std over seeds) vs labels per class, one line per method."""
        plt = pyplot()

        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        curve = self.curve()
        for m in self.config.methods:
            pts = [(r["labels_per_class"], r[f"{m}_mean"], r[f"{m}_std"]) for r in curve if f"{m}_mean" in r]
            ax.errorbar(
                [p[0] for p in pts],
                [100 * p[1] for p in pts],
                yerr=[100 * p[2] for p in pts],
                marker="o",
                ms=4,
                capsize=3,
                label=m,
            )
        ax.set_xscale("log")
        ax.set_xlabel("labelled examples per class")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        return save_figure(fig, path, dpi=120)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the curve, every run, and the auto-cut reports."""
        return {"curve": self.curve(), "runs": self.runs, "autocuts": self.autocuts, "config": to_dict(self.config)}


def label_budgets(
    make_model: Callable[[int], nn.Module],
    source: TensorData,
    source_task: Task,
    target: TensorData,
    target_test: TensorData,
    task: Task,
    config: BudgetConfig | None = None,
    pretrain_config: FitConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> BudgetReport:
    """Run the label-budget comparison (see the module docstring).

    Args:
        make_model: ``seed -> nn.Sequential`` with ``source_task.num_outputs`` outputs; the one
            architecture all methods share (its last Linear is resized for the target task).
        source: abundant related data (pretraining).
        source_task: its task.
        target: the pool of target examples the labelled subsets are drawn from.
        target_test: held-out target data, used only to report accuracy.
        task: the target task.
        config: budgets, seeds, methods and the fixed training budget.
        pretrain_config: settings for pretraining (seed overridden per seed).
        progress: called with a line of text after every run.

    Returns:
        A :class:`BudgetReport`.
    """
    cfg = config or BudgetConfig()
    say = progress or (lambda _s: None)
    report = BudgetReport(config=cfg)
    pre_cfg = pretrain_config or FitConfig(epochs=2, batch_size=128, lr=2e-3, warmup=0.05)
    for seed in cfg.seeds:
        needs_base = any(m in cfg.methods for m in ("transfer", "finetune", "lora"))
        base = make_model(seed)
        if needs_base:
            _pretrain_base(base, source, source_task, dataclasses.replace(pre_cfg, seed=seed), say)
        for b in cfg.labels_per_class:
            labelled = sample_per_class(target, b, seed=seed * 7919 + b)
            fc = step_config(len(labelled), cfg.steps, cfg.batch_size, cfg.lr, cfg.weight_decay, seed)
            record = functools.partial(_record, report, say, target_test, task, seed, b)
            if "scratch" in cfg.methods:
                t0 = time.perf_counter()
                scratch = fresh_tail(make_model(seed), 0, task.num_outputs, seed=seed)
                fit(scratch, labelled, task, fc)
                record("scratch", scratch, time.perf_counter() - t0)
            if needs_base:
                ac = _from_base(base, labelled, task, fc, cfg, record, seed)
                report.autocuts.append({"seed": seed, "labels_per_class": b, **ac.to_dict()})
    return report


def _pretrain_base(
    base: nn.Module, source: TensorData, source_task: Task, pre_cfg: FitConfig, say: Callable[[str], None]
) -> None:
    """Pretrain ``base`` on ``source`` (seeded by ``pre_cfg.seed``) and say how long it took."""
    t0 = time.perf_counter()
    pretrain(base, source, source_task, pre_cfg)
    src_acc = evaluate(base, source, source_task)["accuracy"] if len(source) <= 5000 else float("nan")
    say(
        f"seed {pre_cfg.seed}: pretrained base in {time.perf_counter() - t0:.1f}s"
        + (f" (source train acc {src_acc:.3f})" if src_acc == src_acc else "")
    )


def _record(
    report: BudgetReport,
    say: Callable[[str], None],
    target_test: TensorData,
    task: Task,
    seed: int,
    b: int,
    method: str,
    model: nn.Module,
    seconds: float,
    **extra: Any,
) -> None:
    """Score ``model`` on the target's test data and add the run to ``report``."""
    acc = evaluate(model, target_test, task)["accuracy"]
    report.runs.append(
        {
            "seed": seed,
            "labels_per_class": b,
            "method": method,
            "accuracy": acc,
            "trainable_params": extra.pop("trainable", count_params(model, trainable_only=True)),
            "seconds": seconds,
            **extra,
        }
    )
    say(
        f"seed {seed} labels/class {b:>3} {method:<9} acc {acc:.4f} ({seconds:.1f}s){' ' + str(extra) if extra else ''}"
    )


def _from_base(
    base: nn.Module,
    labelled: TensorData,
    task: Task,
    fc: FitConfig,
    cfg: BudgetConfig,
    record: Callable[..., None],
    seed: int,
) -> AutoCutReport:
    """Choose the cut on ``labelled`` (:func:`auto_cut`, returned), then transfer, fine-tune and LoRA from it."""
    t0 = time.perf_counter()
    ac = auto_cut(base, labelled, task, config=fc, folds=cfg.folds, include_scratch=True, seed=seed)
    cut_seconds = time.perf_counter() - t0
    if "transfer" in cfg.methods:
        t0 = time.perf_counter()
        res = transfer(base, labelled, task, cut=ac.chosen, config=fc, seed=seed)
        record(
            "transfer",
            res.model,
            time.perf_counter() - t0 + cut_seconds,
            cut=ac.chosen,
            cut_method=ac.method,
            negative_transfer=ac.negative_transfer,
            cached=res.cached,
            trainable=res.trainable_params,
        )
    if "finetune" in cfg.methods:
        t0 = time.perf_counter()
        model = finetune_at(base, ac.chosen, labelled, task, fc, cfg.finetune_lr_scale, seed=seed)
        record("finetune", model, time.perf_counter() - t0 + cut_seconds, cut=ac.chosen)
    if "lora" in cfg.methods:
        t0 = time.perf_counter()
        model = lora_at(base, ac.chosen, labelled, task, fc, seed=seed)
        record("lora", model, time.perf_counter() - t0 + cut_seconds, cut=ac.chosen)
    return ac
