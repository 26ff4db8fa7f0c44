"""``interlearn tour``: every paradigm on the embedded digits, one comparison table.

The digits are split the way each paradigm needs them:
- transfer and fine-tuning (scratch / transfer / fine-tune / LoRA): a base model learns digits
  0-4 from all their training images (the abundant related task); the task of interest is
  digits 5-9 with only a few labelled images per class; variants share one architecture.
- distillation: a wide teacher on all ten digits -> a small student.
- multi-task: digit, parity and ">= 5" predicted by one shared trunk vs three models.
- federated: the digits split non-IID across clients (FedAvg vs local-only vs centralized).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interlearn.data import load_digits
from interlearn.report import write_summary

__all__ = ["run_tour", "PARTS"]


def _transfer(out: Path, seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    from interlearn.recipes import transfer as recipe

    return recipe.tour_part(out, seed=seed, progress=progress)


def _finetune(out: Path, seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    from interlearn.recipes import finetune as recipe

    return recipe.tour_part(out, seed=seed, progress=progress)


def _distill(out: Path, seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    from interlearn.recipes import distill as recipe

    return recipe.tour_part(out, seed=seed, progress=progress)


def _multitask(out: Path, seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    from interlearn.recipes import multitask as recipe

    return recipe.tour_part(out, seed=seed, progress=progress)


def _federated(out: Path, seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    from interlearn.federated.tour import tour_rows

    tr, te = load_digits(seed=seed)
    return tour_rows((tr.x, tr.y), (te.x, te.y), out / "federated", seed=seed, progress=progress)


PARTS: dict[str, Callable[[Path, int, bool], dict[str, dict[str, Any]]]] = {
    "transfer": _transfer,
    "finetune": _finetune,
    "distill": _distill,
    "multitask": _multitask,
    "federated": _federated,
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
