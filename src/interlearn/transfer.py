"""Transfer learning: a base model from a related task -> replace its last layers -> freeze the
rest -> train the new layers on the small task of interest.

One call, :func:`transfer`, does all of it: it trains the base on the abundant related task
(``source=``) or takes a given pretrained ``nn.Module`` (:func:`interlearn.pretrained.load_pretrained`
reads timm / Hugging Face / local files), cuts it, freezes the kept part, and trains fresh copies
of the replaced layers on the target data; the frozen part's features are cached when that is
exact (:mod:`interlearn.features`). ``cut="auto"`` chooses the cut by cross-validation on the
small labelled set (:mod:`interlearn.autocut`).

A *cut* ``k`` of an ``nn.Sequential`` keeps children ``[:k]`` (frozen) and replaces ``[k:]``;
``k = 0`` is training from scratch and ``k = len(model)`` keeps everything and adds a new linear
layer. Any other module (a residual network, a Hugging Face encoder) is cut at a *named*
submodule, ``cut="layer3"`` or ``cut="model.encoder.layer.4"`` (:mod:`interlearn.cuts`: split
with torch.fx where the model traces, re-initialized in place where it does not); a dotted name
also reaches inside a Sequential's layers. Yosinski et al. 2014, "How transferable are features in deep neural networks?" showed
why the cut matters: early layers are general, the last ones specific to the source task.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from interlearn.autocut import auto_cut
from interlearn.config import FitConfig, step_config
from interlearn.cuts import KEEP_ALL, cut_module, has_params
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.features import fit_head
from interlearn.split import cut_points, fresh_tail, join, resolve_cut, split_at
from interlearn.surgery import count_params, freeze
from interlearn.tasks import Task, classification
from interlearn.training import FitResult, fit

__all__ = ["cut_points", "resolve_cut", "split_at", "fresh_tail", "pretrain", "transfer", "TransferResult", "KEEP_ALL"]


def pretrain(
    base: nn.Module, source: TensorData, task: Task, config: FitConfig | None = None, val: TensorData | None = None
) -> FitResult:
    """Train ``base`` on the abundant related task (a thin, named wrapper around :func:`fit`)."""
    return fit(base, source, task, config or FitConfig(epochs=2, batch_size=128, lr=2e-3, warmup=0.05), val=val)


@dataclass
class TransferResult:
    """What :func:`transfer` returns.

    Attributes:
        model: ``nn.Sequential`` of the frozen kept layers followed by the trained new layers
            (``body`` and ``head`` for a named cut of another module; for a model that cannot be
            split, the model itself, its kept modules frozen).
        cut: the cut used (index of the first replaced layer, or its name).
        cut_name: name of the first replaced layer (``"(none)"`` when everything is kept).
        cached: whether the new layers trained on cached features.
        fit: the new layers' :class:`FitResult`.
        pretrain: the base's :class:`FitResult` when :func:`transfer` trained it.
        autocut: the :class:`interlearn.autocut.AutoCutReport` when ``cut="auto"``.
        trainable_params: parameters trained on the target task.
        notes: remarks (e.g. why features were not cached).
    """

    model: nn.Module
    cut: int | str
    cut_name: str
    cached: bool
    fit: FitResult
    pretrain: FitResult | None = None
    autocut: Any = None
    trainable_params: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines saying what was kept, what was trained, and the auto-cut report if any."""
        lines = [
            f"cut at {self.cut} (first replaced layer: {self.cut_name}); trainable params {self.trainable_params:,}; "
            f"features {'cached' if self.cached else 'not cached'}"
        ]
        if self.autocut is not None:
            lines.append(self.autocut.table())
        return "\n".join(lines + self.notes)


def transfer(
    base: nn.Module,
    target: TensorData,
    task: Task,
    *,
    source: TensorData | None = None,
    source_task: Task | None = None,
    pretrain_config: FitConfig | None = None,
    cut: int | str = "auto",
    config: FitConfig | None = None,
    head: nn.Module | None = None,
    val: TensorData | None = None,
    cache: bool = True,
    folds: int = 5,
    include_scratch: bool = True,
    seed: int = 0,
) -> TransferResult:
    """Transfer ``base`` to the small task of interest ``target``.

    Args:
        base: any module: an ``nn.Sequential`` (e.g. :func:`interlearn.models.small_cnn.small_cnn`,
            :func:`interlearn.pretrained.load_pretrained`'s result) is cut between its layers,
            any other module at a named submodule. It is copied, never modified.
        target: the small labelled set of the task of interest.
        task: the target task (its ``num_outputs`` sizes the new last layer).
        source: when given, ``base`` is first trained on this abundant related data.
        source_task: the source task (default: classification with ``base``'s output size).
        pretrain_config: training settings for the base on ``source``.
        cut: ``"auto"`` (cross-validated choice), an index, or the name of the first layer to
            replace (a dotted submodule name such as ``"layer3"``; ``"(all)"`` keeps everything).
        config: training settings for the new layers (also used for the auto-cut scoring);
            default: about 300 AdamW steps (lr 1e-3, warmup + cosine, batch <= 32).
        head: explicit new layers instead of fresh copies of the replaced ones.
        val: optional validation data of the target task.
        cache: cache the frozen part's features when that is exact.
        folds: cross-validation folds for ``cut="auto"``.
        include_scratch: with ``cut="auto"``, also score training from scratch, to detect
            negative transfer.
        seed: seeds the new layers' initialization and the folds.

    Returns:
        A :class:`TransferResult`.

    Raises:
        ConfigError: a bad cut (closest names listed), missing ``source_task`` information, or
            ``head=`` with a model that cannot be split.
        ShapeError: ``head`` does not fit the kept layers' features.
    """
    cfg = config or step_config(len(target), 300, 32, 1e-3, 1e-4, seed)
    k = None if cut == "auto" else resolve_cut(base, cut)  # a bad cut fails before any training
    base, pre = _pretrained_copy(base, source, source_task, pretrain_config)
    report = None
    if k is None:
        report = auto_cut(base, target, task, config=cfg, folds=folds, include_scratch=include_scratch, seed=seed)
        k = report.chosen
    if isinstance(k, str):
        return _transfer_named(base, k, target, task, cfg, head, val, cache, seed, pre, report)
    return _transfer_indexed(base, k, target, task, cfg, head, val, cache, seed, pre, report)


def _pretrained_copy(
    base: nn.Module, source: TensorData | None, source_task: Task | None, pretrain_config: FitConfig | None
) -> tuple[nn.Module, FitResult | None]:
    """A copy of ``base``, first trained on ``source`` when given (and that training's result)."""
    base = copy.deepcopy(base)
    if source is None:
        return base, None
    if source_task is None:
        last = [m for m in base.modules() if isinstance(m, nn.Linear)]
        if not last:
            raise ConfigError("transfer(source=...) needs source_task= when the base has no final nn.Linear")
        source_task = classification(last[-1].out_features)
    return base, pretrain(base, source, source_task, pretrain_config)


def _transfer_indexed(
    base: nn.Module,
    k: int,
    target: TensorData,
    task: Task,
    cfg: FitConfig,
    head: nn.Module | None,
    val: TensorData | None,
    cache: bool,
    seed: int,
    pre: FitResult | None,
    report: Any,
) -> TransferResult:
    """:func:`transfer` at layer index ``k`` of an ``nn.Sequential``: freeze the layers before, train new ones after."""
    body, _ = split_at(base, k)
    new = head if head is not None else fresh_tail(base, k, task.num_outputs, sample=target.x[:1], seed=seed)
    for p in body.parameters():
        p.requires_grad_(False)
    if len(body) and has_params(body):
        freeze(body)
    result = fit_head(body, new, target, task, cfg, val=val, cache=cache)
    model = join(body, new)
    names = [n for n, _ in base.named_children()]
    notes = [f"features not cached: {result.reason}"] if not result.cached and result.reason else []
    return TransferResult(
        model,
        k,
        names[k] if k < len(names) else "(none)",
        result.cached,
        result.fit,
        pre,
        report,
        count_params(new, trainable_only=True),
        notes,
    )


def _transfer_named(
    base: nn.Module,
    cut: str,
    target: TensorData,
    task: Task,
    cfg: FitConfig,
    head: nn.Module | None,
    val: TensorData | None,
    cache: bool,
    seed: int,
    pre: FitResult | None,
    report: Any,
) -> TransferResult:
    """:func:`transfer` at a named submodule of any module (:func:`interlearn.cuts.cut_module`)."""
    nc = cut_module(base, cut, task.num_outputs, target.x[:2], seed=seed)
    notes = [f"cut: {nc.note}"]
    if head is not None:
        if not nc.separable:
            raise ConfigError(
                f"head= needs a base that splits at {cut!r}; {type(base).__name__} does not trace with torch.fx, so the cut "
                "re-initializes the replaced modules in place (leave head=None)"
            )
        nc.new = head
    if nc.separable:
        result = fit_head(nc.body, nc.new, target, task, cfg, val=val, cache=cache)
        model: nn.Module = nn.Sequential(OrderedDict(body=nc.body, head=nc.new))
        cached, fit_result = result.cached, result.fit
        if not result.cached and result.reason:
            notes.append(f"features not cached: {result.reason}")
    else:
        fit_result = fit(nc.new, target, task, cfg, val=val)
        model, cached = nc.new, False
        notes.append("features not cached: the kept part cannot run alone (the model does not trace with torch.fx)")
    trainable = count_params(nc.new, trainable_only=True)
    return TransferResult(
        model, cut, cut if cut != KEEP_ALL else "(none)", cached, fit_result, pre, report, trainable, notes
    )
