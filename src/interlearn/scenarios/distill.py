"""Tour scenario: distillation into students too small to learn the task as well as the teacher.

A wide teacher (two hidden layers of 256 units, dropout) learns all ten digits; students with
one hidden layer of 4, 8 or 16 units (a few hundred to ~1,200 parameters, 1-2% of the
teacher) are trained alone on the labels and, from the same initial weights with the same
batches, distilled from the teacher's softened outputs (Hinton et al. 2015; T = 4,
alpha = 0.9, the library's default). Accuracy against student size is the plot: distillation
is for closing the gap between a small model and a big one.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

import torch

from interlearn.config import FitConfig
from interlearn.data import load_digits
from interlearn.distill import distill
from interlearn.recipes.distill import mlp
from interlearn.report import Section, plot_curves, verdict
from interlearn.scenarios.base import Scenario
from interlearn.surgery import count_params
from interlearn.tasks import classification
from interlearn.training import evaluate, fit

__all__ = ["run", "STUDENT_HIDDEN"]

STUDENT_HIDDEN = (4, 8, 16)
TEMPERATURE, ALPHA = 4.0, 0.9
THRESHOLD = 0.01  # one point: about 5 of the 540 test images


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """Teacher once, then every student size alone and distilled; one section."""
    folder = Path(out) / "distill"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = load_digits(seed=seed)
    task = classification(10)
    torch.manual_seed(seed)
    teacher = mlp(64, (256, 256), 10, dropout=0.2)
    t0 = time.perf_counter()
    fit(
        teacher, train, task, FitConfig(epochs=15, batch_size=64, lr=1e-3, weight_decay=1e-4, seed=seed, progress=False)
    )
    rows = {
        "teacher": {
            "accuracy": evaluate(teacher, test, task)["accuracy"],
            "trainable_params": count_params(teacher),
            "train_seconds": time.perf_counter() - t0,
        }
    }
    fc = FitConfig(epochs=30, batch_size=64, lr=3e-3, seed=seed, progress=False)
    for h in STUDENT_HIDDEN:
        torch.manual_seed(seed + 1)
        init = mlp(64, (h,), 10)
        alone, student = copy.deepcopy(init), copy.deepcopy(init)
        t0 = time.perf_counter()
        fit(alone, train, task, fc)
        t1 = time.perf_counter()
        distill(teacher, student, train, task, fc, temperature=TEMPERATURE, alpha=ALPHA)
        t2 = time.perf_counter()
        n = count_params(init)
        rows[f"alone_h{h}"] = {
            "accuracy": evaluate(alone, test, task)["accuracy"],
            "trainable_params": n,
            "train_seconds": t1 - t0,
            "hidden": h,
        }
        rows[f"distilled_h{h}"] = {
            "accuracy": evaluate(student, test, task)["accuracy"],
            "trainable_params": n,
            "train_seconds": t2 - t1,
            "hidden": h,
        }
        if progress:
            print(
                f"  student {h:>2} units: alone {rows[f'alone_h{h}']['accuracy']:.3f}, distilled {rows[f'distilled_h{h}']['accuracy']:.3f}",
                flush=True,
            )
    sizes = [rows[f"alone_h{h}"]["trainable_params"] for h in STUDENT_HIDDEN]
    plot_curves(
        {
            "student alone": (sizes, [rows[f"alone_h{h}"]["accuracy"] for h in STUDENT_HIDDEN]),
            "student distilled": (sizes, [rows[f"distilled_h{h}"]["accuracy"] for h in STUDENT_HIDDEN]),
        },
        folder / "accuracy_vs_size.png",
        "student parameters",
        "test accuracy",
        "digits: accuracy vs student size",
        hlines={f"teacher ({rows['teacher']['trainable_params']:,} params)": rows["teacher"]["accuracy"]},
        xlog=True,
    )
    alone_acc = statistics.fmean(rows[f"alone_h{h}"]["accuracy"] for h in STUDENT_HIDDEN)
    dist = statistics.fmean(rows[f"distilled_h{h}"]["accuracy"] for h in STUDENT_HIDDEN)
    gap = rows["teacher"]["accuracy"] - alone_acc
    why = ""
    if dist - alone_acc < THRESHOLD:
        why = (
            f"The students are limited by capacity, not by what the labels tell them: 1,257 labelled images already pin down "
            f"what a 4-16 unit network can represent, and the teacher's soft targets (T = {TEMPERATURE:g}) are harder to fit "
            f"than the labels. The gap to the teacher is {100 * gap:.1f} points on average. Distillation pays when the "
            "student has spare capacity but too little or too noisy labelled data (Hinton et al. 2015 train on 3% of the data), "
            "or when the teacher knows more than the labels (augmentation, ensembles; MNIST in BENCHMARKS.md)."
        )
    section = Section(
        paradigm="Knowledge distillation",
        question=f"Do students with {', '.join(map(str, STUDENT_HIDDEN))} hidden units (1-2% of the teacher) get closer to the teacher "
        "when they learn from its softened outputs instead of the labels alone? (Means over the three sizes.)",
        baseline="student alone",
        baseline_value=alone_acc,
        result=f"distilled student (T = {TEMPERATURE:g}, alpha = {ALPHA:g})",
        result_value=dist,
        verdict=verdict(dist - alone_acc, THRESHOLD, what="distillation"),
        why=why,
        plot="distill/accuracy_vs_size.png",
        table=[
            {
                "student units": h,
                "params": rows[f"alone_h{h}"]["trainable_params"],
                "alone": round(rows[f"alone_h{h}"]["accuracy"], 3),
                "distilled": round(rows[f"distilled_h{h}"]["accuracy"], 3),
                "teacher": round(rows["teacher"]["accuracy"], 3),
            }
            for h in STUDENT_HIDDEN
        ],
    )
    return Scenario(rows, [section])
