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
from interlearn.report import Section, plot_curves
from interlearn.scenarios.base import Scenario
from interlearn.scenarios.stats import Gain, boundary, gain_verdict, paired_gain

__all__ = ["run", "LABELS_PER_TASK", "REPEATS", "disjoint_labels"]

LABELS_PER_TASK = (20, 60, 200)
REPEATS = 3
EPOCHS = 40


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


def _one_seed(train: TensorData, test: TensorData, seed: int) -> dict[str, dict[int, Any]]:
    out: dict[str, dict[int, Any]] = {"multitask": {}, "independent": {}}
    for n in LABELS_PER_TASK:
        data = disjoint_labels(train, n, seed)
        cfg = FitConfig(epochs=EPOCHS, batch_size=32, lr=3e-3, seed=seed, progress=False, device="cpu", amp=False)
        torch.manual_seed(seed)
        res = compare_methods(digits_model, data, test, DIGITS_TASKS, ("equal",), cfg, seed=seed)
        out["multitask"][n], out["independent"][n] = res["equal"], res["independent"]
    return out


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """Multi-task vs independent models at every labels-per-task budget, 3 seeds; one section."""
    folder = Path(out) / "multitask"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = load_digits_multitask(seed=seed)
    seeds = [seed + i for i in range(REPEATS)]
    runs = []
    for s in seeds:
        runs.append(_one_seed(train, test, s))
        if progress:
            line = ", ".join(
                f"{n}: {runs[-1]['multitask'][n]['accuracy']:.3f}/{runs[-1]['independent'][n]['accuracy']:.3f}"
                for n in LABELS_PER_TASK
            )
            print(f"  seed {s}: multi-task/independent at labels per task {line}", flush=True)
    ns = LABELS_PER_TASK
    acc = {m: {n: [r[m][n]["accuracy"] for r in runs] for n in ns} for m in ("multitask", "independent")}
    mean = {m: {n: statistics.fmean(acc[m][n]) for n in ns} for m in acc}
    rows = _rows(runs, acc, mean, seeds)
    overall = paired_gain(
        [statistics.fmean(acc["multitask"][n][i] for n in ns) for i in range(len(seeds))],
        [statistics.fmean(acc["independent"][n][i] for n in ns) for i in range(len(seeds))],
        seeds,
    )
    curve = [paired_gain(acc["multitask"][n], acc["independent"][n], seeds) for n in ns]
    rows["multitask_vs_independent"] = overall.row() | {"per_budget": {str(n): g.row() for n, g in zip(ns, curve)}}
    plot_curves(
        {m: (list(ns), [mean[m][n] for n in ns]) for m in ("multitask", "independent")},
        folder / "accuracy_vs_labels.png",
        "labelled images per task",
        f"mean test accuracy (3 tasks, {REPEATS} seeds)",
        "digits: shared trunk vs one model per task",
        xlog=True,
    )
    return Scenario(rows, [_section(rows, mean, seeds, overall, curve)])


def _rows(
    runs: list[dict[str, dict[int, Any]]],
    acc: dict[str, dict[int, list[float]]],
    mean: dict[str, dict[int, float]],
    seeds: list[int],
) -> dict[str, dict[str, Any]]:
    """One row per method and budget: mean accuracy (overall and per task) over the seeds."""
    rows: dict[str, dict[str, Any]] = {}
    for m in ("multitask", "independent"):
        for n in LABELS_PER_TASK:
            rows[f"{m}@{n}"] = {
                "accuracy": mean[m][n],
                "labels_per_task": n,
                "accuracy_per_seed": acc[m][n],
                "seeds": seeds,
                "trainable_params": runs[0][m][n]["trainable_params"],
                **{
                    f"{t}_accuracy": statistics.fmean(r[m][n][f"{t}_accuracy"] for r in runs)
                    for t in DIGITS_TASKS.columns
                },
            }
    return rows


def _why(rows: dict[str, dict[str, Any]], curve: list[Gain]) -> str:
    """The gain per budget and per task, and which tasks lose (they compete for the trunk)."""
    ns = LABELS_PER_TASK
    per_task = {
        t: statistics.fmean(
            rows[f"multitask@{n}"][f"{t}_accuracy"] - rows[f"independent@{n}"][f"{t}_accuracy"] for n in ns
        )
        for t in DIGITS_TASKS.columns
    }
    gains = ", ".join(f"{t} {100 * g:+.1f}" for t, g in per_task.items())
    by_n = ", ".join(f"{n}: {100 * g.mean:+.1f} ± {100 * g.se:.1f}" for n, g in zip(ns, curve))
    why = (
        f"Gain per labels/task (points ± SE): {by_n}. Mean gain per task (points): {gains}. A task with few labels borrows "
        "features that the other tasks' images taught the shared trunk."
    )
    lost = [t for t, g in per_task.items() if g < 0]
    if lost:
        one = len(lost) == 1
        why += (
            f" {' and '.join(lost)} lose{'s' if one else ''} a little: under an equally weighted loss the tasks compete for "
            "the trunk, and loss weighting or gradient combination (uncertainty, PCGrad; BENCHMARKS.md, multitask) is the "
            "tool for such conflicts."
        )
    return why


def _section(
    rows: dict[str, dict[str, Any]],
    mean: dict[str, dict[int, float]],
    seeds: list[int],
    overall: Gain,
    curve: list[Gain],
) -> Section:
    """The report's section: sharing against one model per task, and the budget where it stops paying."""
    ns = LABELS_PER_TASK
    stop = boundary(ns, curve, side="high")
    if stop is None:
        b, stops = f"Sharing still pays at {ns[-1]} labels per task.", f"not within {ns[-1]} labels/task"
    else:
        b = (
            f"From {stop} labels per task on, the gain is no longer above twice its standard error: each task then has "
            "enough labels of its own to learn its features, and sharing a trunk only makes the tasks compete for it."
        )
        stops = f"from {stop} labels/task"
    return Section(
        paradigm="Multi-task learning",
        question="When each of three related tasks (digit, parity, >= 5) has only 20-200 labelled images, and no image is "
        "labelled for two tasks, does one shared model beat one model per task? (Mean accuracy over the tasks and the three "
        f"budgets; {REPEATS} seeds.)",
        baseline="one model per task",
        baseline_value=statistics.fmean(mean["independent"].values()),
        result="shared trunk + three heads",
        result_value=statistics.fmean(mean["multitask"].values()),
        verdict=gain_verdict(overall, "sharing"),
        why=_why(rows, curve),
        plot="multitask/accuracy_vs_labels.png",
        table=[
            {
                "labels/task": n,
                "multitask": round(mean["multitask"][n], 3),
                "independent": round(mean["independent"][n], 3),
                "gain (SE)": f"{100 * g.mean:+.1f} ({100 * g.se:.1f})",
                "digit (mt/ind)": f"{rows[f'multitask@{n}']['digit_accuracy']:.3f} / {rows[f'independent@{n}']['digit_accuracy']:.3f}",
                "params (mt/ind)": f"{rows[f'multitask@{n}']['trainable_params']:,} / {rows[f'independent@{n}']['trainable_params']:,}",
            }
            for n, g in zip(ns, curve)
        ],
        seeds=seeds,
        difference_se=overall.se,
        boundary=b,
        stops=stops,
    )
