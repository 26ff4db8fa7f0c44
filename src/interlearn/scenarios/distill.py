"""Tour scenario: distillation into a student that has the capacity but few labels.

A teacher (two hidden layers of 256 units, dropout) learns from all the labelled training
images. The student (one hidden layer of 32 units, about 2,400 parameters, 3% of the teacher)
has only 2, 5, 10, 20 or 50 labelled images per class. Alone, it learns from those labels; distilled,
it also learns from the teacher's softened outputs on **every** training image, the unlabelled
ones included: the transfer set of Hinton et al. (2015), who distil on images the student has
no labels for. Both students start from the same weights and take the same number of
optimizer steps (batches of 32 labelled images alone, of 128 transfer-set images distilled;
T = 4, alpha = 0.9: the library's defaults). The curve over label budgets
shows where distillation stops paying: once the student's own labels pin down what it can
learn.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from interlearn.config import FitConfig, step_config
from interlearn.data import load_digits
from interlearn.data.tensors import TensorData
from interlearn.distill import kd_loss, teacher_logits
from interlearn.recipes.distill import mlp
from interlearn.report import Section, plot_curves
from interlearn.scenarios.base import Scenario
from interlearn.scenarios.stats import Gain, boundary, gain_verdict, paired_gain
from interlearn.surgery import count_params
from interlearn.tasks import classification
from interlearn.training import evaluate, fit

__all__ = ["run", "LABELS_PER_CLASS", "STUDENT_HIDDEN", "REPEATS"]

LABELS_PER_CLASS = (2, 5, 10, 20, 50)
STUDENT_HIDDEN = 32
TEACHER_HIDDEN = (256, 256)
TEMPERATURE, ALPHA = 4.0, 0.9
STEPS, LR = 300, 3e-3
REPEATS = 3


def _labelled(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """A boolean mask of ``k`` random labelled examples per class (seeded)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y).tolist():
        idx = (y == c).nonzero().flatten()
        mask[idx[torch.randperm(len(idx), generator=g)[:k]]] = True
    return mask


def _one_seed(train: TensorData, test: TensorData, seed: int) -> dict[str, Any]:
    task = classification(10)
    torch.manual_seed(seed)
    teacher = mlp(64, TEACHER_HIDDEN, 10, dropout=0.2)
    fit(
        teacher,
        train,
        task,
        FitConfig(epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-4, device="cpu", amp=False, seed=seed),
    )
    cached = teacher_logits(teacher, train.x, device="cpu")  # the teacher is fixed: its logits once
    out: dict[str, Any] = {"teacher": evaluate(teacher, test, task)["accuracy"], "alone": {}, "distilled": {}}
    out["teacher_params"] = count_params(teacher)
    for k in LABELS_PER_CLASS:
        mask = _labelled(train.y, k, seed)
        torch.manual_seed(seed + 1)
        init = mlp(64, (STUDENT_HIDDEN,), 10)
        out["student_params"] = count_params(init)
        alone, student = copy.deepcopy(init), copy.deepcopy(init)
        labelled = TensorData(train.x[mask], train.y[mask])
        cfg = dataclasses.replace(step_config(len(labelled), STEPS, 32, LR, seed=seed), device="cpu", amp=False)
        fit(alone, labelled, task, cfg)
        # the transfer set: every training image; labels only where the student has them
        labels = torch.where(mask, train.y, -1)

        def loss(model: nn.Module, x: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor = labels) -> torch.Tensor:
            s = model(x)
            soft = kd_loss(s, cached[idx], None, TEMPERATURE, alpha=1.0)
            y = labels[idx]
            has = y >= 0
            hard = F.cross_entropy(s[has], y[has]) if bool(has.any()) else s.sum() * 0.0
            return ALPHA * soft + (1 - ALPHA) * hard

        # the same number of steps over the larger transfer set, in larger batches
        d_cfg = dataclasses.replace(step_config(len(train), STEPS, 128, LR, seed=seed), device="cpu", amp=False)
        fit(student, TensorData(train.x, torch.arange(len(train))), task, d_cfg, compute_loss=loss)
        out["alone"][k] = evaluate(alone, test, task)["accuracy"]
        out["distilled"][k] = evaluate(student, test, task)["accuracy"]
    return out


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """Teacher, then the student alone and distilled at every label budget, for 3 seeds; one section."""
    folder = Path(out) / "distill"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = load_digits(seed=seed)
    seeds = [seed + i for i in range(REPEATS)]
    runs = []
    for s in seeds:
        runs.append(_one_seed(train, test, s))
        if progress:
            r = runs[-1]
            line = ", ".join(f"{k}: {r['alone'][k]:.2f}/{r['distilled'][k]:.2f}" for k in LABELS_PER_CLASS)
            print(
                f"  seed {s}: teacher {r['teacher']:.3f}; student alone/distilled at labels per class {line}",
                flush=True,
            )
    ks = LABELS_PER_CLASS
    mean = {m: {k: statistics.fmean(r[m][k] for r in runs) for k in ks} for m in ("alone", "distilled")}
    teacher = statistics.fmean(r["teacher"] for r in runs)
    overall = paired_gain(
        [statistics.fmean(r["distilled"].values()) for r in runs],
        [statistics.fmean(r["alone"].values()) for r in runs],
        seeds,
    )
    curve = [paired_gain([r["distilled"][k] for r in runs], [r["alone"][k] for r in runs], seeds) for k in ks]
    rows = _rows(runs, mean, teacher, seeds)
    rows["distilled_vs_alone"] = overall.row() | {"per_budget": {str(k): g.row() for k, g in zip(ks, curve)}}
    plot_curves(
        {
            "student alone": (list(ks), [mean["alone"][k] for k in ks]),
            "student distilled": (list(ks), [mean["distilled"][k] for k in ks]),
        },
        folder / "learning_curve.png",
        "labelled images per class (the rest: unlabelled transfer set)",
        f"test accuracy (mean of {REPEATS} seeds)",
        f"digits: a {STUDENT_HIDDEN}-unit student with few labels",
        hlines={f"teacher (all labels, {runs[0]['teacher_params']:,} params)": teacher},
        xlog=True,
    )
    return Scenario(rows, [_section(mean, teacher, seeds, overall, curve, len(train))])


def _rows(
    runs: list[dict[str, Any]], mean: dict[str, dict[int, float]], teacher: float, seeds: list[int]
) -> dict[str, dict[str, Any]]:
    """The teacher's row and one per student and budget (mean accuracy over the seeds)."""
    rows: dict[str, dict[str, Any]] = {
        "teacher": {
            "accuracy": teacher,
            "accuracy_per_seed": [r["teacher"] for r in runs],
            "trainable_params": runs[0]["teacher_params"],
            "seeds": seeds,
        }
    }
    for m in ("alone", "distilled"):
        for k in LABELS_PER_CLASS:
            rows[f"{m}@{k}"] = {
                "accuracy": mean[m][k],
                "labels_per_class": k,
                "accuracy_per_seed": [r[m][k] for r in runs],
                "trainable_params": runs[0]["student_params"],
                "seeds": seeds,
            }
    return rows


def _boundary(mean: dict[str, dict[int, float]], curve: list[Gain], n_train: int) -> tuple[str, str]:
    """Where distillation stops paying: ``(boundary text, stops)``."""
    ks = LABELS_PER_CLASS
    stop = boundary(ks, curve, side="high")
    if stop is None:
        b = (
            f"Distillation still pays at {ks[-1]} labels per class: the teacher, trained on all {n_train} labels, knows "
            "more than the student's labels tell it."
        )
        return b, f"not within {ks[-1]} labels/class"
    b = (
        f"From {stop} labels per class on, the gain is no longer above twice its standard error: the student's own "
        f"labels then pin down what {STUDENT_HIDDEN} hidden units can represent (alone it reaches {mean['alone'][ks[-1]]:.1%} "
        f"at {ks[-1]}), and the teacher's soft targets add little."
    )
    return b, f"from {stop} labels/class"


def _section(
    mean: dict[str, dict[int, float]],
    teacher: float,
    seeds: list[int],
    overall: Gain,
    curve: list[Gain],
    n_train: int,
) -> Section:
    """The report's section: the distilled student against the student alone."""
    ks = LABELS_PER_CLASS
    pts = ", ".join(f"{k}: {100 * g.mean:+.1f} ± {100 * g.se:.1f}" for k, g in zip(ks, curve))
    b, stops = _boundary(mean, curve, n_train)
    return Section(
        paradigm="Knowledge distillation",
        question=f"A {STUDENT_HIDDEN}-unit student has only 2-50 labelled images per class; the teacher learned from all of them. Does "
        "learning from the teacher's softened outputs on every training image (the unlabelled ones as the transfer set) beat "
        f"learning from its own labels alone? (Averaged over the five budgets; {REPEATS} seeds.)",
        baseline="student alone",
        baseline_value=statistics.fmean(mean["alone"].values()),
        result=f"distilled student (T = {TEMPERATURE:g}, alpha = {ALPHA:g})",
        result_value=statistics.fmean(mean["distilled"].values()),
        verdict=gain_verdict(overall, "distillation"),
        why=f"Gain per labels/class (points ± SE): {pts}. The teacher's soft outputs on the unlabelled images carry "
        "what the missing labels would have, and more: which digits look alike (Hinton et al. 2015's dark knowledge).",
        plot="distill/learning_curve.png",
        table=[
            {
                "labels/class": k,
                "alone": round(mean["alone"][k], 3),
                "distilled": round(mean["distilled"][k], 3),
                "gain (SE)": f"{100 * g.mean:+.1f} ({100 * g.se:.1f})",
                "teacher": round(teacher, 3),
            }
            for k, g in zip(ks, curve)
        ],
        seeds=seeds,
        difference_se=overall.se,
        boundary=b,
        stops=stops,
    )
