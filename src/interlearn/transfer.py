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

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.cuts import KEEP_ALL, SCRATCH, cut_module, named_cut_points
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, closest
from interlearn.features import fit_head
from interlearn.surgery import count_params, freeze
from interlearn.tasks import Task
from interlearn.training import FitResult, fit

__all__ = ["cut_points", "resolve_cut", "split_at", "fresh_tail", "pretrain", "transfer", "TransferResult", "KEEP_ALL"]


def _sequential(model: nn.Module, what: str) -> nn.Sequential:
    if not isinstance(model, nn.Sequential):
        raise ConfigError(
            f"{what} cuts an nn.Sequential by layer index, got {type(model).__name__}; cut any other module at a named "
            "submodule: transfer(base, ..., cut='layer3') or interlearn.cuts.cut_module(base, 'layer3', ...)"
        )
    return model


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def cut_points(model: nn.Module, sample: torch.Tensor | None = None) -> list[int] | list[str]:
    """Candidate cuts: before every top-level layer with parameters except the first.

    Any module that is not an ``nn.Sequential`` gets named candidates instead
    (:func:`interlearn.cuts.named_cut_points`; ``sample`` is needed when it does not trace).

    A base with a single parametrized layer (a wrapped feature extractor) has one candidate,
    ``len(model)``: keep it whole and train a new linear head on its features.

    For the small CNN (``conv1 act1 pool1 conv2 act2 pool2 flatten fc1 act3 fc2``) these are
    ``[3, 7, 9]``: keep conv1, keep both conv blocks, keep everything but the classifier.
    """
    if not isinstance(model, nn.Sequential):
        return named_cut_points(model, sample)
    cuts = [i for i, m in enumerate(model) if _has_params(m) and any(_has_params(p) for p in list(model)[:i])]
    return cuts or [len(model)]  # a single feature extractor: keep it whole, train a linear head


def resolve_cut(model: nn.Module, cut: int | str) -> int | str:
    """A cut given as an index or as the name of the first replaced layer -> an index (a
    Sequential's top-level layers) or a submodule name (any other cut, any other module).

    Raises:
        ConfigError: an index out of ``[0, len(model)]``, an index into a non-Sequential model,
            or an unknown layer name (closest named).
    """
    modules = [n for n, _ in model.named_modules() if n]
    if not isinstance(model, nn.Sequential) or (isinstance(cut, str) and "." in cut and cut in modules):
        if isinstance(cut, str) and (cut in modules or cut in (KEEP_ALL, SCRATCH)):
            return cut
        if isinstance(cut, str) and not cut.lstrip("-").isdigit():
            raise ConfigError(f"cut={cut!r} is not a submodule of {type(model).__name__}; closest: {closest(cut, modules)} "
                              f"(or 'auto', or {KEEP_ALL!r} to keep everything)")
        raise ConfigError(f"cut={cut!r}: a {type(model).__name__} is cut at a submodule name, e.g. {closest('layer', modules, n=3)}; "
                          "see interlearn.transfer.cut_points(model, sample)")
    names = [n for n, _ in model.named_children()]
    if isinstance(cut, bool) or not isinstance(cut, (int, str)):
        raise ConfigError(f"cut={cut!r}: give 'auto', an index in [0, {len(model)}] or a layer name from {names}")
    if isinstance(cut, str):
        if cut.lstrip("-").isdigit():
            cut = int(cut)
        elif cut not in names:
            raise ConfigError(f"cut={cut!r} is not a layer of the base; closest: {closest(cut, names)} (or 'auto', or an index)")
        else:
            return names.index(cut)
    if not 0 <= cut <= len(model):
        raise ConfigError(f"cut={cut}: the base has {len(model)} layers; choose 0 <= cut <= {len(model)} (0 = from scratch)")
    return cut


def split_at(model: nn.Sequential, cut: int) -> tuple[nn.Sequential, nn.Sequential]:
    """``(model[:cut], model[cut:])`` as two Sequentials sharing the original layers."""
    model = _sequential(model, "split_at")
    kids = list(model.named_children())
    return nn.Sequential(OrderedDict(kids[:cut])), nn.Sequential(OrderedDict(kids[cut:]))


def fresh_tail(model: nn.Sequential, cut: int, num_outputs: int, sample: torch.Tensor | None = None, seed: int | None = None) -> nn.Sequential:
    """New layers replacing ``model[cut:]``: same architecture, re-initialized, last Linear resized.

    With ``cut == len(model)`` (keep everything) the new part is ``Flatten -> Linear`` sized from
    ``sample``'s features.

    Raises:
        ConfigError: the replaced part has no ``nn.Linear`` to resize, or ``sample`` is missing
            when it is needed.
    """
    model = _sequential(model, "fresh_tail")
    if seed is not None:
        torch.manual_seed(seed)
    body, tail = split_at(model, cut)
    if len(tail) == 0:
        if sample is None:
            raise ConfigError("fresh_tail: keeping every layer needs a sample input to size the new linear head")
        with torch.no_grad():
            was = body.training
            dev = next((p.device for p in body.parameters()), sample.device)
            dim = body.eval()(sample[:1].to(dev)).flatten(1).shape[1]
            body.train(was)
        return nn.Sequential(OrderedDict(new_flatten=nn.Flatten(), new_head=nn.Linear(dim, num_outputs)))
    tail = copy.deepcopy(tail)
    for m in tail.modules():
        if m is not tail and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    linears = [(n, m) for n, m in tail.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"the replaced layers {[n for n, _ in tail.named_children()]} have no nn.Linear to resize to {num_outputs} outputs; pass head=")
    name, last = linears[-1]
    if last.out_features != num_outputs:
        parent = tail.get_submodule(name.rpartition(".")[0]) if "." in name else tail
        setattr(parent, name.rpartition(".")[2], nn.Linear(last.in_features, num_outputs, bias=last.bias is not None))
    for p in tail.parameters():
        p.requires_grad_(True)
    return tail


def pretrain(base: nn.Module, source: TensorData, task: Task, config: FitConfig | None = None, val: TensorData | None = None) -> FitResult:
    """Train ``base`` on the abundant related task (a thin, named wrapper around :func:`fit`)."""
    return fit(base, source, task, config or FitConfig(epochs=2, batch_size=128, lr=2e-3, warmup=0.05), val=val)


def _join(body: nn.Sequential, new: nn.Module) -> nn.Sequential:
    """``body`` then ``new`` as one Sequential, keeping layer names where they do not collide."""
    kids = list(body.named_children()) + (list(new.named_children()) if isinstance(new, nn.Sequential) else [("head", new)])
    names = [n for n, _ in kids]
    if len(set(names)) == len(names):
        return nn.Sequential(OrderedDict(kids))
    return nn.Sequential(*[m for _, m in kids])


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
        lines = [f"cut at {self.cut} (first replaced layer: {self.cut_name}); trainable params {self.trainable_params:,}; "
                 f"features {'cached' if self.cached else 'not cached'}"]
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
    from interlearn.budgets import step_config

    cfg = config or step_config(len(target), 300, 32, 1e-3, 1e-4, seed)
    k = None if cut == "auto" else resolve_cut(base, cut)  # a bad cut fails before any training
    pre: FitResult | None = None
    base = copy.deepcopy(base)
    if source is not None:
        if source_task is None:
            last = [m for m in base.modules() if isinstance(m, nn.Linear)]
            if not last:
                raise ConfigError("transfer(source=...) needs source_task= when the base has no final nn.Linear")
            from interlearn.tasks import classification

            source_task = classification(last[-1].out_features)
        pre = pretrain(base, source, source_task, pretrain_config)
    report = None
    if k is None:
        from interlearn.autocut import auto_cut

        report = auto_cut(base, target, task, config=cfg, folds=folds, include_scratch=include_scratch, seed=seed)
        k = report.chosen
    if isinstance(k, str):
        return _transfer_named(base, k, target, task, cfg, head, val, cache, seed, pre, report)
    body, _ = split_at(base, k)
    new = head if head is not None else fresh_tail(base, k, task.num_outputs, sample=target.x[:1], seed=seed)
    for p in body.parameters():
        p.requires_grad_(False)
    if len(body) and _has_params(body):
        freeze(body)
    result = fit_head(body, new, target, task, cfg, val=val, cache=cache)
    model = _join(body, new)
    names = [n for n, _ in base.named_children()]
    notes = [f"features not cached: {result.reason}"] if not result.cached and result.reason else []
    return TransferResult(model, k, names[k] if k < len(names) else "(none)", result.cached, result.fit, pre, report, count_params(new, trainable_only=True), notes)


def _transfer_named(base: nn.Module, cut: str, target: TensorData, task: Task, cfg: FitConfig, head: nn.Module | None,
                    val: TensorData | None, cache: bool, seed: int, pre: FitResult | None, report: Any) -> TransferResult:
    """:func:`transfer` at a named submodule of any module (:func:`interlearn.cuts.cut_module`)."""
    nc = cut_module(base, cut, task.num_outputs, target.x[:2], seed=seed)
    notes = [f"cut: {nc.note}"]
    if head is not None:
        if not nc.separable:
            raise ConfigError(f"head= needs a base that splits at {cut!r}; {type(base).__name__} does not trace with torch.fx, so the cut "
                              "re-initializes the replaced modules in place (leave head=None)")
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
    return TransferResult(model, cut, cut if cut != KEEP_ALL else "(none)", cached, fit_result, pre, report, trainable, notes)
