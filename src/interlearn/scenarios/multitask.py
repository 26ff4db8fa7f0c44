"""Tour scenario: multi-task learning when every task has little labelled data.

Three tasks on the digits (which digit, its parity, whether it is >= 5), each with only
``n`` labelled images, and no image labelled for more than one task (``n`` = 20, 60, 200;
the three sets are disjoint). One network with a shared trunk and a head per task learns from
all ``3n`` images; the baseline is one network per task, each on its own ``n`` images (same
architecture, same epochs over each task's data). Sharing is for exactly this: a task with
few labels borrows features learned from the others' images.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import DataError
from interlearn.multitask.compare import compare_methods
from interlearn.multitask.data import DIGITS_TASKS, load_digits_multitask
from interlearn.multitask.tour import digits_model
from interlearn.report import Section, plot_curves, verdict
from interlearn.scenarios.base import Scenario

__all__ = ["run", "LABELS_PER_TASK", "disjoint_labels"]

LABELS_PER_TASK = (20, 60, 200)
THRESHOLD = 0.01  # one point: about 5 of the 540 test images per task


def disjoint_labels(train: TensorData, per_task: int, seed: int) -> TensorData:
    """``per_task`` images per task, each labelled for exactly one task (other columns NaN).

    Raises:
        interlearn.errors.DataError: fewer than ``3 * per_task`` training images.
    """
    names = list(DIGITS_TASKS.columns)
    need = per_task * len(names)
    if need > len(train):
        raise DataError(f"{len(names)} tasks x {per_task} labels need {need} images; the training set has {len(train)}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:need]
    x, y = train.x[order], train.y[order].clone()
    for i, name in enumerate(names):
        others = torch.ones(need, dtype=torch.bool)
        others[i * per_task : (i + 1) * per_task] = False
        y[others, DIGITS_TASKS.columns[name]] = float("nan")
    return TensorData(x, y)


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """Multi-task vs independent models at every labels-per-task budget; one section."""
    folder = Path(out) / "multitask"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = load_digits_multitask(seed=seed)
    rows: dict[str, dict[str, Any]] = {}
    for n in LABELS_PER_TASK:
        data = disjoint_labels(train, n, seed)
        cfg = FitConfig(epochs=40, batch_size=32, lr=3e-3, seed=seed, progress=False, device="cpu", amp=False)
        torch.manual_seed(seed)
        res = compare_methods(digits_model, data, test, DIGITS_TASKS, ("equal",), cfg, seed=seed)
        for name, key in (("multitask", "equal"), ("independent", "independent")):
            r = res[key]
            rows[f"{name}@{n}"] = {
                "accuracy": r["accuracy"],
                "labels_per_task": n,
                "trainable_params": r["trainable_params"],
                "train_seconds": r["train_seconds"],
                **{f"{t}_accuracy": r[f"{t}_accuracy"] for t in DIGITS_TASKS.columns},
            }
        if progress:
            print(
                f"  {n:>3} labels/task: multi-task {rows[f'multitask@{n}']['accuracy']:.3f}, independent {rows[f'independent@{n}']['accuracy']:.3f}",
                flush=True,
            )
    plot_curves(
        {
            m: (list(LABELS_PER_TASK), [rows[f"{m}@{n}"]["accuracy"] for n in LABELS_PER_TASK])
            for m in ("multitask", "independent")
        },
        folder / "accuracy_vs_labels.png",
        "labelled images per task",
        "mean test accuracy (3 tasks)",
        "digits: shared trunk vs one model per task",
        xlog=True,
    )
    mt = statistics.fmean(rows[f"multitask@{n}"]["accuracy"] for n in LABELS_PER_TASK)
    ind = statistics.fmean(rows[f"independent@{n}"]["accuracy"] for n in LABELS_PER_TASK)
    per_task = {
        t: statistics.fmean(
            rows[f"multitask@{n}"][f"{t}_accuracy"] - rows[f"independent@{n}"][f"{t}_accuracy"] for n in LABELS_PER_TASK
        )
        for t in DIGITS_TASKS.columns
    }
    gains = ", ".join(f"{t} {100 * g:+.1f}" for t, g in per_task.items())
    why = f"Mean gain per task (points): {gains}."
    won = [t for t, g in per_task.items() if g >= THRESHOLD]
    lost = [t for t, g in per_task.items() if g <= -THRESHOLD]
    if won:
        why += (
            f" {' and '.join(won)} borrow{'s' if len(won) == 1 else ''} features learned from the other tasks' images."
        )
    if lost:
        one = len(lost) == 1
        why += (
            f" {' and '.join(lost)} compete{'s' if one else ''} for the shared trunk under an equally weighted loss and lose{'s' if one else ''}: loss weighting or "
            "gradient combination (uncertainty, PCGrad; BENCHMARKS.md, multitask) is the tool for such conflicts."
        )
    if not won and mt - ind < THRESHOLD:
        why += " No task gains: with these labels the other tasks' images do not teach the shared trunk anything a task cannot learn alone."
    section = Section(
        paradigm="Multi-task learning",
        question="When each of three related tasks (digit, parity, >= 5) has only 20-200 labelled images, does one shared model beat one "
        "model per task? (Mean accuracy over the tasks and the three budgets.)",
        baseline="one model per task",
        baseline_value=ind,
        result="shared trunk + three heads",
        result_value=mt,
        verdict=verdict(mt - ind, THRESHOLD, what="sharing"),
        why=why,
        plot="multitask/accuracy_vs_labels.png",
        table=[
            {
                "labels/task": n,
                "multitask": round(rows[f"multitask@{n}"]["accuracy"], 3),
                "independent": round(rows[f"independent@{n}"]["accuracy"], 3),
                "digit (mt/ind)": f"{rows[f'multitask@{n}']['digit_accuracy']:.3f} / {rows[f'independent@{n}']['digit_accuracy']:.3f}",
                "params (mt/ind)": f"{rows[f'multitask@{n}']['trainable_params']:,} / {rows[f'independent@{n}']['trainable_params']:,}",
            }
            for n in LABELS_PER_TASK
        ],
    )
    return Scenario(rows, [section])
