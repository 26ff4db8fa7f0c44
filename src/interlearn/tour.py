"""``interlearn tour``: every paradigm on the embedded digits, one comparison table.

The digits are split the way each paradigm needs them:
- centralized (scratch / transfer / fine-tune / LoRA): a base model learns digits 0-4 from all
  their training images (the abundant related task); the task of interest is digits 5-9 with
  only ``LABELS_PER_CLASS`` labelled images per class; all variants share one architecture.
- distillation: a wide teacher on all ten digits -> a small student.
- multi-task: digit, parity and ">= 5" predicted by one shared trunk vs three models.
- federated: the digits split non-IID across clients (FedAvg vs local-only vs centralized).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData, load_digits
from interlearn.report import write_summary
from interlearn.surgery import count_params
from interlearn.tasks import classification
from interlearn.training import evaluate, fit

__all__ = ["run_tour", "PARTS", "digits_transfer_split", "TransferSplit"]

LABELS_PER_CLASS = 5


@dataclass(frozen=True)
class TransferSplit:
    """Digits 0-4 (source, all labels) and digits 5-9 (target, few labels), labels 0..4."""

    source: TensorData
    source_test: TensorData
    target: TensorData
    target_test: TensorData


def digits_transfer_split(labels_per_class: int = LABELS_PER_CLASS, seed: int = 0) -> TransferSplit:
    """The tour's transfer split of sklearn's digits (see module docstring)."""
    tr, te = load_digits(seed=seed)
    src = tr.y < 5
    src_te = te.y < 5
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(5, 10):
        idx = (tr.y == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:labels_per_class]])
    pick = torch.cat(picks)
    return TransferSplit(
        source=TensorData(tr.x[src], tr.y[src]),
        source_test=TensorData(te.x[src_te], te.y[src_te]),
        target=TensorData(tr.x[pick], tr.y[pick] - 5),
        target_test=TensorData(te.x[~src_te], te.y[~src_te] - 5),
    )


def tour_mlp(seed: int = 0, classes: int = 5) -> nn.Sequential:
    """The tour's shared architecture: 64-128-64-classes MLP."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, classes))


def _row(model: nn.Module, acc: float, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"accuracy": acc, "trainable_params": count_params(model, trainable_only=True), "train_seconds": seconds, **extra}


def _centralized(out: Path, seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    split = digits_transfer_split(seed=seed)
    task = classification(5)
    rows: dict[str, dict[str, Any]] = {}
    # scratch: the same architecture trained only on the few target labels
    scratch = tour_mlp(seed)
    t0 = time.perf_counter()
    fit(scratch, split.target, task, FitConfig(epochs=60, batch_size=16, lr=3e-3, seed=seed, progress=progress))
    rows["scratch"] = _row(scratch, evaluate(scratch, split.target_test, task)["accuracy"], time.perf_counter() - t0)
    return rows


PARTS: dict[str, Callable[[Path, int, bool], dict[str, dict[str, Any]]]] = {
    "centralized": _centralized,
}


def _print_table(rows: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="interlearn tour — embedded digits")
    for col in ("paradigm", "accuracy", "trainable params", "train time (s)", "bytes communicated"):
        table.add_column(col, justify="left" if col == "paradigm" else "right")
    for name, r in rows.items():
        b = r.get("bytes_communicated")
        table.add_row(name, f"{r['accuracy']:.3f}", f"{r['trainable_params']:,}", f"{r['train_seconds']:.2f}", f"{b:,}" if isinstance(b, (int, float)) else "")
    Console().print(table)


def run_tour(out: Path, only: list[str] | None = None, progress: bool = True, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Run the tour parts, print the table, write ``out/summary.{json,md}`` and plots.

    Raises:
        ConfigError: an unknown part name in ``only`` (the message lists the parts).
    """
    from interlearn.errors import ConfigError

    names = only or list(PARTS)
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ConfigError(f"unknown tour part(s) {unknown}; choose from {list(PARTS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    for name in names:
        if progress:
            print(f"[tour] {name} ...", flush=True)
        rows |= PARTS[name](out, seed, progress)
    _print_table(rows)
    write_summary(out, rows, title="interlearn tour — embedded digits")
    print(f"tour finished in {time.perf_counter() - start:.1f} s; run folder: {out} (summary.json, summary.md, plots)")
    return rows
