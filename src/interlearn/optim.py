"""Optimizers and learning-rate schedules for :func:`interlearn.fit`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from interlearn.config import FitConfig

__all__ = ["build_optimizer", "build_scheduler"]


def build_optimizer(params: Iterable[Any], config: FitConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW/Adam over ``params`` (tensors or parameter-group dicts)."""
    params = list(params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: FitConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule of ``config.schedule`` over ``total_steps`` optimizer steps.

    Per-group peak learning rates (discriminative fine-tuning) are kept: every schedule scales
    each group's own initial ``lr``.
    """
    total_steps = max(total_steps, 1)
    if config.schedule == "onecycle" and total_steps >= 3:
        max_lrs = [g["lr"] for g in optimizer.param_groups]
        # OneCycleLR divides by (pct_start * total_steps - 1) and by the steps left after it: on a
        # few steps (tiny data) keep both phases longer than one step instead of dividing by zero.
        pct = min(max(config.warmup, 0.25, 1.5 / total_steps), 1.0 - 1.5 / total_steps)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs, total_steps=total_steps, pct_start=pct)
    if config.schedule == "onecycle":  # one or two steps: no cycle to run, the peak rate throughout
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warm = int(config.warmup * total_steps)

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if config.schedule == "constant":
            return 1.0
        progress = (step - warm) / max(total_steps - warm, 1)
        if config.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
