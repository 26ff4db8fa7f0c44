"""The multi-task part of ``interlearn tour``: one model for digit / parity / >=5 vs three models.

Runs in a few seconds on the embedded 8x8 digits (no download). Rows ``"multitask"`` (hard
sharing, equal weighting) and ``"independent"`` (one trunk + head per task, trained one after the
other) carry ``accuracy`` (mean over the three tasks), ``trainable_params`` and ``train_seconds``.
"""

from __future__ import annotations

from typing import Any

import torch

from interlearn.config import FitConfig
from interlearn.multitask.compare import compare_methods
from interlearn.multitask.data import DIGITS_TASKS, load_digits_multitask
from interlearn.multitask.model import MultiTaskModel, heads_for, mlp_trunk
from interlearn.multitask.targets import TaskSet

__all__ = ["multitask_tour", "digits_model"]


def digits_model(tasks: TaskSet, hidden: int = 64, features: int = 32) -> MultiTaskModel:
    """An MLP trunk (64 -> hidden -> features) with a linear head per task."""
    return MultiTaskModel(mlp_trunk(64, hidden, features), heads_for(tasks.tasks, features))


def multitask_tour(
    seed: int = 0, progress: bool = False, method: str = "equal", epochs: int = 30, device: str = "auto"
) -> dict[str, dict[str, Any]]:
    """Train the multi-task model and the independent models on the digits; return both rows.

    Returns:
        ``{"multitask": {...}, "independent": {...}}`` with ``accuracy``, ``trainable_params``,
        ``train_seconds``, per-task accuracies, weight bytes, memory and ``delta_m_pct``.
    """
    torch.manual_seed(seed)
    train, test = load_digits_multitask(seed=seed)
    cfg = FitConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed, progress=progress, device=device, amp=False)
    rows = compare_methods(digits_model, train, test, DIGITS_TASKS, (method,), cfg, seed=seed)
    return {"multitask": rows[method] | {"method": method}, "independent": rows["independent"]}
