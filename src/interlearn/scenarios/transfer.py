"""Tour scenario: transfer learning and fine-tuning from a base pretrained on a large source.

The base is the one that ships with interlearn (:mod:`interlearn.shipped`,
``"mnist-optdigits-cnn"``): a small CNN trained on 60,000 MNIST images turned into the 8x8
format of the embedded digits. The target is the embedded digits themselves: the same ten
classes, but other writers and other preprocessing, so the base reads them well but not
perfectly (its own classifier, zero-shot, is drawn as a line on the plot).

With 1, 3, 10, 30 and 100 labelled images per class of the target (drawn per seed), three
methods train the same network for the same number of optimizer steps:

- ``scratch``: random initial weights, everything trained;
- ``transfer``: the base's layers frozen, a new classifier trained on their features (a
  linear probe; the features are computed once);
- ``fine-tune``: the base's layers train too, at a tenth of the learning rate, starting from
  the linear probe's classifier (LP-FT, Kumar et al. 2022, "Fine-Tuning can Distort Pretrained
  Features and Underperform Out-of-Distribution"; discriminative rates, Howard & Ruder 2018).

Two sections read the same learning curve: transfer against scratch (it pays with few labels
and stops paying once the target's own labels suffice) and fine-tuning against the frozen base
(it pays once there are enough labels to adapt the base to the target's writers).
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.config import FitConfig, step_config
from interlearn.data import load_digits
from interlearn.data.tensors import TensorData
from interlearn.report import Section, plot_curves
from interlearn.scenarios.base import Scenario
from interlearn.scenarios.stats import Gain, boundary, gain_verdict, paired_gain
from interlearn.shipped import SHIPPED, load_shipped
from interlearn.tasks import classification
from interlearn.training import evaluate, fit

__all__ = ["run", "BUDGETS", "BASE", "REPEATS"]

BASE = "mnist-optdigits-cnn"
BUDGETS = (1, 3, 10, 30, 100)  # labelled images per class; the training split has ~125 per class
REPEATS = 3  # seeds: seed, seed + 1, seed + 2
STEPS = 100
LR = 3e-3
FINETUNE_LR_SCALE = 0.1
METHODS = ("scratch", "transfer", "transfer_mirrored", "finetune_mirrored")
Feats = dict[str, torch.Tensor]
PLOT = "transfer/learning_curve.png"


def _pick(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of ``k`` random examples of every class (seeded)."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y).tolist():
        idx = (y == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(picks)


def _probe(f_train: torch.Tensor, y: torch.Tensor, cfg: FitConfig, seed: int) -> nn.Linear:
    """A new classifier trained on cached features of the frozen base."""
    torch.manual_seed(seed)
    head = nn.Linear(f_train.shape[1], 10)
    fit(head, TensorData(f_train, y), classification(10), cfg)
    return head


def _one_seed(
    base: nn.Sequential, train: TensorData, test: TensorData, feats: Feats, seed: int
) -> dict[str, dict[int, float]]:
    """Accuracy of every method at every budget for one seed."""
    task = classification(10)
    acc: dict[str, dict[int, float]] = {m: {} for m in METHODS}
    mirrored_test = TensorData(test.x.flip(-1), test.y)
    for k in BUDGETS:
        idx = _pick(train.y, k, seed)
        labelled = TensorData(train.x[idx], train.y[idx])
        cfg = dataclasses.replace(step_config(len(labelled), STEPS, 32, LR, seed=seed), device="cpu", amp=False)

        # scratch: the same architecture from random weights (blind to mirroring: one curve serves both targets)
        torch.manual_seed(seed)
        scratch = SHIPPED[BASE].architecture()
        fit(scratch, labelled, task, cfg)
        acc["scratch"][k] = evaluate(scratch, test, task)["accuracy"]

        # transfer: a new classifier on the frozen base's features (cached: the base is fixed)
        head = _probe(feats["train"][idx], train.y[idx], cfg, seed)
        acc["transfer"][k] = evaluate(head, TensorData(feats["test"], test.y), task)["accuracy"]
        head_m = _probe(feats["train_mirrored"][idx], train.y[idx], cfg, seed)
        acc["transfer_mirrored"][k] = evaluate(head_m, TensorData(feats["test_mirrored"], test.y), task)["accuracy"]

        # fine-tune on the mirrored digits: base + the probe's classifier, all layers train, the base ten times slower
        model = nn.Sequential(copy.deepcopy(base[:-1]), copy.deepcopy(head_m))
        groups = [
            {"params": list(model[0].parameters()), "lr": LR * FINETUNE_LR_SCALE},
            {"params": list(model[1].parameters()), "lr": LR},
        ]
        fit(model, TensorData(labelled.x.flip(-1), labelled.y), task, cfg, param_groups=groups)
        acc["finetune_mirrored"][k] = evaluate(model, mirrored_test, task)["accuracy"]
    return acc


def _curve_gains(
    runs: list[dict[str, dict[int, float]]], seeds: list[int], result: str, baseline: str
) -> tuple[Gain, list[Gain]]:
    """The gain averaged over the curve (the headline) and at every budget."""
    overall = paired_gain(
        [statistics.fmean(r[result].values()) for r in runs],
        [statistics.fmean(r[baseline].values()) for r in runs],
        seeds,
    )
    per_budget = [paired_gain([r[result][k] for r in runs], [r[baseline][k] for r in runs], seeds) for k in BUDGETS]
    return overall, per_budget


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """The learning curve over label budgets (3 seeds) and two sections."""
    folder = Path(out) / "transfer"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = load_digits(seed=seed, image=True)
    base = load_shipped(BASE).eval()
    zero_shot = evaluate(base, test, classification(10))["accuracy"]
    seeds = [seed + i for i in range(REPEATS)]
    runs = _runs(base, train, test, seeds, progress)
    mean = {m: {k: statistics.fmean(r[m][k] for r in runs) for k in BUDGETS} for m in METHODS}
    _plot(mean, zero_shot, folder / "learning_curve.png")
    rows: dict[str, dict[str, Any]] = {
        f"{m}@{k}": {
            "accuracy": mean[m][k],
            "labels_per_class": k,
            "accuracy_per_seed": [r[m][k] for r in runs],
            "seeds": seeds,
        }
        for m in METHODS
        for k in BUDGETS
    }
    rows["zero_shot"] = {"accuracy": zero_shot, "base": BASE}
    tr, tr_curve = _curve_gains(runs, seeds, "transfer", "scratch")
    trm, trm_curve = _curve_gains(runs, seeds, "transfer_mirrored", "scratch")
    ft, ft_curve = _curve_gains(runs, seeds, "finetune_mirrored", "transfer_mirrored")
    for name, g, curve in (
        ("transfer_vs_scratch", tr, tr_curve),
        ("transfer_mirrored_vs_scratch", trm, trm_curve),
        ("finetune_vs_transfer_mirrored", ft, ft_curve),
    ):
        rows[name] = g.row() | {"per_budget": {str(k): c.row() for k, c in zip(BUDGETS, curve)}}
    transfer = _transfer_section(mean, zero_shot, seeds, (tr, tr_curve), trm_curve)
    finetune = _finetune_section(mean, seeds, (ft, ft_curve))
    return Scenario(rows, [transfer, finetune])


def _runs(
    base: nn.Sequential, train: TensorData, test: TensorData, seeds: list[int], progress: bool
) -> list[dict[str, dict[int, float]]]:
    """Every method's test accuracy per budget, one dict per seed (the base's features computed once)."""
    with torch.no_grad():  # the frozen base's features, computed once
        body = base[:-1]
        feats = {
            "train": body(train.x),
            "test": body(test.x),
            "train_mirrored": body(train.x.flip(-1)),
            "test_mirrored": body(test.x.flip(-1)),
        }
    runs = []
    for s in seeds:
        runs.append(_one_seed(base, train, test, feats, s))
        if progress:
            line = ", ".join(f"{k}: " + "/".join(f"{runs[-1][m][k]:.2f}" for m in METHODS) for k in BUDGETS)
            print(f"  seed {s} (scratch/transfer/finetune at labels per class) {line}", flush=True)
    return runs


def _plot(mean: dict[str, dict[int, float]], zero_shot: float, path: Path) -> None:
    """The learning curves (mean over seeds), with the base's zero-shot accuracy as a line."""
    names = {
        "scratch": "scratch (either target)",
        "transfer": "transfer, digits",
        "transfer_mirrored": "transfer, mirrored digits",
        "finetune_mirrored": "fine-tune, mirrored digits",
    }
    plot_curves(
        {names[m]: (list(BUDGETS), [mean[m][k] for k in BUDGETS]) for m in METHODS},
        path,
        "labelled images per class",
        f"test accuracy (mean of {REPEATS} seeds)",
        "from the shipped MNIST base: accuracy vs labels",
        hlines={"base as is, digits (zero-shot)": zero_shot},
        xlog=True,
    )


def _pts(gs: list[Gain]) -> str:
    """Gains per budget in points ± SE."""
    return ", ".join(f"{k}: {100 * g.mean:+.1f} ± {100 * g.se:.1f}" for k, g in zip(BUDGETS, gs))


def _transfer_boundary(tr_curve: list[Gain], trm_curve: list[Gain]) -> tuple[str, str]:
    """Where transfer stops paying: ``(boundary text, stops)``."""
    stop_tr, stop_trm = boundary(BUDGETS, tr_curve, side="high"), boundary(BUDGETS, trm_curve, side="high")
    if stop_tr is not None:
        return (
            f"From {stop_tr} labels per class on, scratch catches up: the target's own labels then teach the network what "
            "the base knew, and the frozen features, shaped by MNIST's writers, cap what a new classifier on them reaches.",
            f"from {stop_tr} labels/class",
        )
    b_tr = (
        f"On these digits transfer still pays at {BUDGETS[-1]} labels per class, about all the training split has: "
        "source and target are nearly the same task. It stops paying when the target drifts from the source: on the "
        "same digits mirrored, the frozen features "
        + (
            f"stop beating scratch at {stop_trm} labels per class"
            if stop_trm is not None
            else "still beat scratch at every budget, by less"
        )
        + f" (transfer minus scratch, mirrored: {_pts(trm_curve)}), and fine-tuning takes over (next section)."
    )
    stops_tr = f"mirrored digits: from {stop_trm} labels/class" if stop_trm is not None else f"not within {BUDGETS[-1]}"
    return b_tr, stops_tr


def _transfer_section(
    mean: dict[str, dict[int, float]],
    zero_shot: float,
    seeds: list[int],
    gains: tuple[Gain, list[Gain]],
    trm_curve: list[Gain],
) -> Section:
    """Transfer (frozen base, new classifier) against scratch."""
    tr, tr_curve = gains
    b_tr, stops_tr = _transfer_boundary(tr_curve, trm_curve)
    return Section(
        paradigm="Transfer learning",
        question="With 1-100 labelled images per class of the embedded digits, does a base pretrained on 60,000 MNIST images "
        "(shipped with interlearn) beat training the same network from scratch? (Accuracy averaged over the five label "
        f"budgets; {REPEATS} seeds; the same network and optimizer steps for every method.)",
        baseline="scratch",
        baseline_value=statistics.fmean(mean["scratch"].values()),
        result="transfer (frozen base, new classifier)",
        result_value=statistics.fmean(mean["transfer"].values()),
        verdict=gain_verdict(tr, "transfer"),
        why=f"Gain per labels/class (points ± SE): {_pts(tr_curve)}. The base reads these digits at {zero_shot:.1%} with "
        "no label from them: its features already separate the classes, so a few labels place a classifier on them.",
        plot=PLOT,
        table=[
            {
                "labels/class": k,
                "scratch": round(mean["scratch"][k], 3),
                "transfer": round(mean["transfer"][k], 3),
                "gain (SE)": f"{100 * g.mean:+.1f} ({100 * g.se:.1f})",
                "mirrored: transfer": round(mean["transfer_mirrored"][k], 3),
                "mirrored: gain (SE)": f"{100 * gm.mean:+.1f} ({100 * gm.se:.1f})",
            }
            for k, g, gm in zip(BUDGETS, tr_curve, trm_curve)
        ],
        seeds=seeds,
        difference_se=tr.se,
        boundary=b_tr,
        stops=stops_tr,
    )


def _finetune_section(mean: dict[str, dict[int, float]], seeds: list[int], gains: tuple[Gain, list[Gain]]) -> Section:
    """Fine-tuning (LP-FT) against the frozen base, on the mirrored digits."""
    ft, ft_curve = gains
    stop_ft = boundary(BUDGETS, ft_curve, side="low")
    if stop_ft is None:
        b_ft = f"Fine-tuning pays at every budget, down to {BUDGETS[0]} label per class."
        stops_ft = "pays at every budget"
    else:
        b_ft = (
            f"Up to {stop_ft} label{'s' if stop_ft != 1 else ''} per class fine-tuning does not beat the frozen base (gain "
            "not above twice its standard error): so few labels cannot move the base's weights towards the target without "
            "fitting noise. Above that it adapts the features to the new input."
        )
        stops_ft = f"at <= {stop_ft} labels/class (too few to adapt)"
    return Section(
        paradigm="Fine-tuning",
        question="When the target differs from the source (the same digits, mirrored left to right), does letting the "
        "pretrained layers train too (a tenth of the learning rate, from the linear probe's classifier) beat keeping them "
        f"frozen? (Averaged over the five label budgets; {REPEATS} seeds.)",
        baseline="transfer (frozen base), mirrored digits",
        baseline_value=statistics.fmean(mean["transfer_mirrored"].values()),
        result="fine-tune (LP-FT, discriminative rates), mirrored digits",
        result_value=statistics.fmean(mean["finetune_mirrored"].values()),
        verdict=gain_verdict(ft, "fine-tuning"),
        why=f"Gain per labels/class (points ± SE): {_pts(ft_curve)}. Frozen, the base's features were shaped by upright "
        "MNIST digits and fit mirrored ones less well; fine-tuning reshapes them. On the digits as they are, the frozen "
        f"features are already this good ({statistics.fmean(mean['transfer'].values()):.1%} averaged over the budgets), "
        "which is when freezing is enough.",
        plot=PLOT,
        table=[
            {
                "labels/class": k,
                "scratch": round(mean["scratch"][k], 3),
                "transfer": round(mean["transfer_mirrored"][k], 3),
                "fine-tune": round(mean["finetune_mirrored"][k], 3),
                "gain (SE)": f"{100 * g.mean:+.1f} ({100 * g.se:.1f})",
            }
            for k, g in zip(BUDGETS, ft_curve)
        ],
        seeds=seeds,
        difference_se=ft.se,
        boundary=b_ft,
        stops=stops_ft,
    )
