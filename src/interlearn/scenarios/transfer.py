"""Tour scenario: transfer learning and fine-tuning when the target task has few labels.

The abundant related task is digits 0-4 (all their training images); the task of interest is
digits 5-9 with 1, 3, 10 or 30 labelled images per class. At every budget the same network
(the small CNN of the transfer recipe) is trained from scratch, transferred (pretrained layers frozen, the cut chosen by
cross-validation on the labelled images) and fine-tuned (the same cut, pretrained layers at a
tenth of the learning rate), all with the same fixed number of optimizer steps
(:func:`interlearn.budgets.label_budgets`). The curve, not one budget, carries the verdict:
transfer is for the few-label end of it.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from interlearn.budgets import BudgetConfig, label_budgets
from interlearn.config import step_config
from interlearn.recipes.splits import DataConfig, split_classes
from interlearn.recipes.transfer import build_model
from interlearn.report import Section, verdict
from interlearn.scenarios.base import Scenario
from interlearn.tasks import classification

__all__ = ["run", "BUDGETS"]

BUDGETS = (1, 3, 10, 30)
STEPS = 150
THRESHOLD = 0.01  # one point: about 9 test images of the 900-image target test set


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """The learning curve and two sections (transfer vs scratch, fine-tuning vs frozen transfer)."""
    folder = Path(out) / "transfer"
    folder.mkdir(parents=True, exist_ok=True)
    data = split_classes(DataConfig(seed=seed), image=True)
    src_task, task = classification(5), classification(5)
    make = lambda s: build_model("cnn", data["source"].x[:1], src_task.num_outputs, s)
    pre = step_config(len(data["source"]), 300, 64, 2e-3, seed=seed)
    cfg = BudgetConfig(labels_per_class=BUDGETS, seeds=(seed,), steps=STEPS, lr=3e-3, folds=3)
    say = (lambda line: print(f"  {line}", flush=True)) if progress else None
    report = label_budgets(
        make, data["source"], src_task, data["target_pool"], data["target_test"], task, cfg, pre, say
    )
    report.plot(folder / "learning_curve.png", title="digits 5-9: accuracy vs labels per class")
    curve = report.curve()
    mean = {m: statistics.fmean(r[f"{m}_mean"] for r in curve) for m in ("scratch", "transfer", "finetune")}
    table = [
        {
            "labels/class": r["labels_per_class"],
            **{m: round(r[f"{m}_mean"], 3) for m in ("scratch", "transfer", "finetune")},
        }
        for r in curve
    ]
    rows = {
        f"{m}@{r['labels_per_class']}": {"accuracy": r[f"{m}_mean"], "labels_per_class": r["labels_per_class"]}
        for r in curve
        for m in ("scratch", "transfer", "finetune")
    }
    plot = "transfer/learning_curve.png"
    few = curve[0]
    d_tr = mean["transfer"] - mean["scratch"]
    by_budget = ", ".join(
        f"{r['labels_per_class']}: {100 * (r['transfer_mean'] - r['scratch_mean']):+.1f}" for r in curve
    )
    why_tr = f"Transfer minus scratch per labels/class (points): {by_budget}."
    if d_tr < THRESHOLD:
        why_tr += (
            f" The base saw {len(data['source'])} 8x8 images of digits 0-4. Raw 8x8 pixels are already good features for a "
            f"small network (from scratch it reaches {few['scratch_mean']:.0%} with one label per class), so features shaped by "
            "0-4 have little to add for 5-9. Transfer pays when the source is large and the target's inputs are hard to "
            "featurize from few labels (MNIST 0-4 -> 5-9 in BENCHMARKS.md)."
        )
    transfer = Section(
        paradigm="Transfer learning",
        question="With only 1-30 labelled images per class of digits 5-9, does a base pretrained on digits 0-4 beat training from scratch? "
        "(Accuracies are means over the four label budgets; same network and optimizer steps for every method.)",
        baseline="scratch",
        baseline_value=mean["scratch"],
        result="transfer (frozen base, cut by cross-validation)",
        result_value=mean["transfer"],
        verdict=verdict(d_tr, THRESHOLD, what="transfer"),
        why=why_tr,
        plot=plot,
        table=table,
    )
    d_ft = mean["finetune"] - mean["transfer"]
    why_ft = ""
    if d_ft >= THRESHOLD and mean["finetune"] < mean["scratch"] - THRESHOLD:
        why_ft = (
            "Unfreezing the pretrained layers recovers part of what freezing lost, but starting from the 0-4 base is still "
            "worse than starting from random weights on this data (see Transfer learning)."
        )
    elif d_ft < THRESHOLD:
        why_ft = (
            "With this few labels, letting the pretrained layers move does not add accuracy over keeping them fixed; "
            "fine-tuning pays with more labels or a base closer to the target task."
        )
    finetune = Section(
        paradigm="Fine-tuning",
        question="On the same learning curve, does letting the pretrained layers train too (at a tenth of the learning rate) beat "
        "keeping them frozen? (Means over the four label budgets.)",
        baseline="transfer (frozen)",
        baseline_value=mean["transfer"],
        result="fine-tune (discriminative learning rates)",
        result_value=mean["finetune"],
        verdict=verdict(d_ft, THRESHOLD, what="fine-tuning"),
        why=why_ft,
        plot=plot,
        table=[
            {"labels/class": r["labels/class"], "transfer": r["transfer"], "finetune": r["finetune"]} for r in table
        ],
    )
    return Scenario(rows, [transfer, finetune])
