"""``cut="auto"``: choose which layers to keep (frozen) and which to replace, by cross-validation.

Every candidate cut of the base (:func:`interlearn.transfer.cut_points`) is scored by k-fold
cross-validation on the small labelled target set only (stratified by class): the kept layers'
features are computed once per candidate (:mod:`interlearn.features`), so each fold trains only
the fresh replaced layers. Training from scratch (cut 0) is scored the same way; when every
transfer cut scores below it, the report says *negative transfer* (Rosenstein et al. 2005,
"To transfer or not to transfer"; Yosinski et al. 2014 for why the best cut varies).

With fewer than two labelled examples in some class, no fold can hold out an example of that
class while still training on it, so cross-validation is impossible: the choice then falls back
to a stated rule (the middle candidate: keep the general early layers, replace the specific
late ones, following Yosinski et al. 2014), and the report says so.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.cuts import SCRATCH, cut_module
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.features import cache_status, extract_features, fit_head
from interlearn.split import cut_points, fresh_tail, resolve_cut, split_at
from interlearn.surgery import count_params, freeze
from interlearn.tasks import Task
from interlearn.tracking import paused
from interlearn.training import evaluate, fit

__all__ = ["auto_cut", "AutoCutReport", "CutScore", "stratified_folds"]


@dataclass(frozen=True)
class CutScore:
    """Cross-validated score of one cut.

    Attributes:
        cut: index of the first replaced layer (0 = from scratch), or its name for a named cut
            (``"(scratch)"``, ``"(all)"``).
        name: that layer's name.
        mean: mean held-out metric over folds (``task.main_metric``).
        std: its standard deviation over folds.
        folds: per-fold scores.
        trainable_params: parameters the cut trains.
    """

    cut: int | str
    name: str
    mean: float
    std: float
    folds: tuple[float, ...]
    trainable_params: int


@dataclass(frozen=True)
class AutoCutReport:
    """The auto-cut decision and the evidence for it.

    Attributes:
        chosen: the chosen cut index.
        chosen_name: name of the first replaced layer at that cut.
        scores: one :class:`CutScore` per candidate transfer cut (empty with ``method="rule"``).
        scratch: the from-scratch score (``None`` when not computed).
        method: ``"cv"`` (cross-validated) or ``"rule"`` (too few labels per class to validate).
        folds: number of folds used (0 with ``"rule"``).
        metric: the metric scored.
        negative_transfer: every transfer cut scored below training from scratch.
        note: one sentence explaining the decision.
    """

    chosen: int | str
    chosen_name: str
    scores: tuple[CutScore, ...]
    scratch: CutScore | None
    method: Literal["cv", "rule"]
    folds: int
    metric: str
    negative_transfer: bool
    note: str
    candidates: tuple[int | str, ...] = field(default_factory=tuple)

    def table(self) -> str:
        """A text table of the scores, the choice and the negative-transfer verdict."""
        lines = [
            f"auto cut ({self.method}, {self.folds} folds, {self.metric}): chose cut {self.chosen} ({self.chosen_name})"
        ]
        rows = list(self.scores) + ([self.scratch] if self.scratch is not None else [])
        if rows:
            lines.append(f"{'cut':>4}  {'first replaced':<16} {'mean':>7} {'std':>7} {'trainable':>10}")
            for s in rows:
                mark = " <- chosen" if s.cut == self.chosen and s is not self.scratch else ""
                label = "(scratch)" if s is self.scratch else s.name
                lines.append(f"{s.cut!s:>4}  {label:<16} {s.mean:>7.4f} {s.std:>7.4f} {s.trainable_params:>10,}{mark}")
        lines.append(self.note)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""

        def row(s: CutScore) -> dict[str, Any]:
            return {
                "cut": s.cut,
                "name": s.name,
                "mean": s.mean,
                "std": s.std,
                "folds": list(s.folds),
                "trainable_params": s.trainable_params,
            }

        return {
            "chosen": self.chosen,
            "chosen_name": self.chosen_name,
            "method": self.method,
            "folds": self.folds,
            "metric": self.metric,
            "negative_transfer": self.negative_transfer,
            "note": self.note,
            "scores": [row(s) for s in self.scores],
            "scratch": row(self.scratch) if self.scratch else None,
        }


def stratified_folds(y: torch.Tensor, k: int, seed: int = 0, stratify: bool = True) -> list[torch.Tensor]:
    """Held-out indices of ``k`` folds; with ``stratify`` each class is spread evenly over folds.

    Raises:
        ConfigError: ``k < 2`` or more folds than examples.
    """
    n = len(y)
    if k < 2 or k > n:
        raise ConfigError(f"folds={k}: need 2 <= folds <= number of examples ({n})")
    g = torch.Generator().manual_seed(seed)
    buckets: list[list[int]] = [[] for _ in range(k)]
    groups = [(y == c).nonzero().flatten() for c in torch.unique(y)] if stratify else [torch.arange(n)]
    offset = 0
    for idx in groups:
        idx = idx[torch.randperm(len(idx), generator=g)]
        for j, i in enumerate(idx.tolist()):
            buckets[(j + offset) % k].append(i)
        offset += len(idx)  # keeps fold sizes balanced across classes
    return [torch.tensor(sorted(b), dtype=torch.long) for b in buckets]


def _prepare(
    base: nn.Module, cut: int | str, task: Task, data: TensorData, seed: int
) -> tuple[nn.Module, nn.Module, bool]:
    """``(kept part, fresh part, whether the kept part runs alone)`` at ``cut``."""
    if isinstance(cut, int):
        return nn.Identity(), fresh_tail(base, cut, task.num_outputs, sample=data.x[:1], seed=seed), True
    nc = cut_module(base, cut, task.num_outputs, data.x[:2], seed=seed)
    return nc.body, nc.new, nc.separable


def _score(
    base: nn.Module, cut: int | str, data: TensorData, task: Task, cfg: FitConfig, held: list[torch.Tensor], seed: int
) -> CutScore:
    if isinstance(cut, int):
        body: nn.Module = copy.deepcopy(split_at(base, cut)[0])
        for p in body.parameters():
            p.requires_grad_(False)
        if any(True for _ in body.parameters()):
            freeze(body)
        separable = True
    else:
        body, _, separable = _prepare(base, cut, task, data, seed)
    ok = separable and cache_status(body, data.x[:2])[0]
    feats = extract_features(body, data, device=cfg.device) if ok else None
    scores, params = [], 0
    for f, val_idx in enumerate(held):
        mask = torch.ones(len(data), dtype=torch.bool)
        mask[val_idx] = False
        tr_idx = mask.nonzero().flatten()
        _, head, sep = _prepare(base, cut, task, data, seed * 1000 + f)
        params = count_params(head, trainable_only=True)
        if sep:
            pre = (feats.subset(tr_idx), None) if feats is not None else None
            fit_head(body, head, data.subset(tr_idx), task, cfg, cache=ok, features=pre)
            model = head if feats is not None else nn.Sequential(body, head)
        else:  # the whole model trains with its kept modules frozen
            fit(head, data.subset(tr_idx), task, cfg)
            model = head
        val = feats.subset(val_idx) if feats is not None else data.subset(val_idx)
        scores.append(evaluate(model, val, task, device=cfg.device)[task.main_metric])
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / max(len(scores) - 1, 1))
    return CutScore(cut, _name(base, cut), mean, std, tuple(scores), params)


def _name(base: nn.Module, cut: int | str) -> str:
    if isinstance(cut, str):
        return cut
    names = [n for n, _ in base.named_children()]
    return names[cut] if cut < len(names) else "(none)"


def auto_cut(
    base: nn.Module,
    data: TensorData,
    task: Task,
    *,
    config: FitConfig | None = None,
    candidates: list[int] | list[str] | None = None,
    folds: int = 5,
    include_scratch: bool = True,
    seed: int = 0,
) -> AutoCutReport:
    """Score candidate cuts of ``base`` by cross-validation on ``data``; choose the best.

    Args:
        base: the (pretrained) model, an ``nn.Sequential`` (index cuts) or any module (named
            cuts, :mod:`interlearn.cuts`); not modified.
        data: the small labelled target set (the only data used).
        task: the target task.
        config: training settings for the replaced layers in every fold (use the same as for
            the final training so the scores predict it).
        candidates: cuts to try, indices or submodule names (default
            :func:`interlearn.transfer.cut_points`).
        folds: at most this many folds (fewer when a class has fewer examples).
        include_scratch: also score cut 0 (all layers fresh) to detect negative transfer.
        seed: fold assignment and fresh-layer initialization.

    Returns:
        An :class:`AutoCutReport`; ties go to the later cut (fewer trained parameters).
        Training from scratch is cut ``0`` of a Sequential and ``"(scratch)"`` of another module.

    Raises:
        ConfigError: no candidate cuts, or a candidate out of range.
    """
    cfg = config or FitConfig(epochs=100, batch_size=32, lr=1e-3, warmup=0.1, weight_decay=1e-4, seed=seed)
    cands = _candidates(base, data, candidates)
    classify = task.kind == "classification"
    k = min(folds, int(torch.unique(data.y, return_counts=True)[1].min())) if classify else min(folds, len(data))
    if k < 2:
        return _by_rule(base, cands, task)
    held = stratified_folds(data.y, k, seed, stratify=classify)
    with paused():  # the folds' trainings are scoring, not the run: never tracked
        scores = tuple(_score(base, c, data, task, cfg, held, seed) for c in cands)
        scratch = (
            _score(base, 0 if isinstance(cands[0], int) else SCRATCH, data, task, cfg, held, seed)
            if include_scratch
            else None
        )
    sign = 1.0 if task.higher_is_better else -1.0
    best = max(scores, key=lambda s: (sign * s.mean, cands.index(s.cut)))
    negative = scratch is not None and all(sign * s.mean < sign * scratch.mean for s in scores)
    note = _cv_note(best, scratch, negative, k, task.main_metric)
    return AutoCutReport(best.cut, best.name, scores, scratch, "cv", k, task.main_metric, negative, note, tuple(cands))


def _candidates(base: nn.Module, data: TensorData, candidates: list[int] | list[str] | None) -> list[int | str]:
    """The candidate cuts, resolved, without training from scratch (scored apart)."""
    cands = [resolve_cut(base, c) for c in (candidates if candidates is not None else cut_points(base, data.x[:2]))]
    cands = [c for c in cands if c != 0 and c != SCRATCH]
    if not cands:
        raise ConfigError(
            f"auto cut: no candidate cuts in a base with layers {[n for n, _ in base.named_children()]}; give an explicit cut"
        )
    return cands


def _by_rule(base: nn.Module, cands: list[int | str], task: Task) -> AutoCutReport:
    """The middle candidate, when some class has too few examples to cross-validate."""
    chosen = cands[(len(cands) - 1) // 2]
    note = (
        f"cross-validation impossible (fewer than 2 labelled examples in some class); chose the middle "
        f"candidate cut {chosen} ({_name(base, chosen)}) by rule; negative transfer cannot be assessed"
    )
    return AutoCutReport(chosen, _name(base, chosen), (), None, "rule", 0, task.main_metric, False, note, tuple(cands))


def _cv_note(best: CutScore, scratch: CutScore | None, negative: bool, k: int, metric: str) -> str:
    """The report's note: the chosen cut, or the negative-transfer warning with its noise."""
    if negative and scratch is not None:
        gap, noise = abs(scratch.mean - best.mean), max(best.std, scratch.std) / math.sqrt(k)
        return (
            f"NEGATIVE TRANSFER: every cut scores below training from scratch ({scratch.mean:.4f}); the best "
            f"cut {best.cut} ({best.name}) scores {best.mean:.4f}, a gap {'larger' if gap > noise else 'no larger'} than "
            f"the cross-validation noise (standard error {noise:.4f}). Consider training from scratch."
        )
    return f"chose cut {best.cut} ({best.name}): best cross-validated {metric} {best.mean:.4f}" + (
        f" vs {scratch.mean:.4f} from scratch" if scratch is not None else ""
    )
