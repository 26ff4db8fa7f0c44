"""Where a base model is cut, and the two parts: cut points, a cut by index or name, the kept
layers and fresh copies of the replaced ones.

A *cut* ``k`` of an ``nn.Sequential`` keeps children ``[:k]`` and replaces ``[k:]``; ``k = 0`` is
training from scratch and ``k = len(model)`` keeps everything and adds a new linear layer. Any
other module is cut at a *named* submodule (:mod:`interlearn.cuts`). These pieces are shared by
:mod:`interlearn.transfer`, :mod:`interlearn.autocut`, :mod:`interlearn.budgets` and
:mod:`interlearn.advise` (Yosinski et al. 2014, "How transferable are features in deep neural
networks?", for why the cut matters).
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from interlearn.cuts import KEEP_ALL, SCRATCH, has_params, named_cut_points
from interlearn.errors import ConfigError, closest

__all__ = ["cut_points", "resolve_cut", "split_at", "fresh_tail", "join", "KEEP_ALL", "SCRATCH"]


def _sequential(model: nn.Module, what: str) -> nn.Sequential:
    if not isinstance(model, nn.Sequential):
        raise ConfigError(
            f"{what} cuts an nn.Sequential by layer index, got {type(model).__name__}; cut any other module at a named "
            "submodule: transfer(base, ..., cut='layer3') or interlearn.cuts.cut_module(base, 'layer3', ...)"
        )
    return model


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
    cuts = [i for i, m in enumerate(model) if has_params(m) and any(has_params(p) for p in list(model)[:i])]
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
            raise ConfigError(
                f"cut={cut!r} is not a submodule of {type(model).__name__}; closest: {closest(cut, modules)} "
                f"(or 'auto', or {KEEP_ALL!r} to keep everything)"
            )
        raise ConfigError(
            f"cut={cut!r}: a {type(model).__name__} is cut at a submodule name, e.g. {closest('layer', modules, n=3)}; "
            "see interlearn.transfer.cut_points(model, sample)"
        )
    names = [n for n, _ in model.named_children()]
    if isinstance(cut, bool) or not isinstance(cut, (int, str)):
        raise ConfigError(f"cut={cut!r}: give 'auto', an index in [0, {len(model)}] or a layer name from {names}")
    if isinstance(cut, str):
        if cut.lstrip("-").isdigit():
            cut = int(cut)
        elif cut not in names:
            raise ConfigError(
                f"cut={cut!r} is not a layer of the base; closest: {closest(cut, names)} (or 'auto', or an index)"
            )
        else:
            return names.index(cut)
    if not 0 <= cut <= len(model):
        raise ConfigError(
            f"cut={cut}: the base has {len(model)} layers; choose 0 <= cut <= {len(model)} (0 = from scratch)"
        )
    return cut


def split_at(model: nn.Module, cut: int) -> tuple[nn.Sequential, nn.Sequential]:
    """``(model[:cut], model[cut:])`` as two Sequentials sharing the original layers.

    Raises:
        ConfigError: ``model`` is not an ``nn.Sequential`` (cut other modules by name).
    """
    kids = list(_sequential(model, "split_at").named_children())
    return nn.Sequential(OrderedDict(kids[:cut])), nn.Sequential(OrderedDict(kids[cut:]))


def fresh_tail(
    model: nn.Module, cut: int, num_outputs: int, sample: torch.Tensor | None = None, seed: int | None = None
) -> nn.Sequential:
    """New layers replacing ``model[cut:]``: same architecture, re-initialized, last Linear resized.

    With ``cut == len(model)`` (keep everything) the new part is ``Flatten -> Linear`` sized from
    ``sample``'s features.

    Raises:
        ConfigError: the replaced part has no ``nn.Linear`` to resize, or ``sample`` is missing
            when it is needed.
    """
    seq = _sequential(model, "fresh_tail")
    if seed is not None:
        torch.manual_seed(seed)
    body, tail = split_at(seq, cut)
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
        reset = getattr(m, "reset_parameters", None)
        if m is not tail and callable(reset):
            reset()
    linears = [(n, m) for n, m in tail.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(
            f"the replaced layers {[n for n, _ in tail.named_children()]} have no nn.Linear to resize to {num_outputs} outputs; pass head="
        )
    name, last = linears[-1]
    if last.out_features != num_outputs:
        parent = tail.get_submodule(name.rpartition(".")[0]) if "." in name else tail
        setattr(parent, name.rpartition(".")[2], nn.Linear(last.in_features, num_outputs, bias=last.bias is not None))
    for p in tail.parameters():
        p.requires_grad_(True)
    return tail


def join(body: nn.Sequential, new: nn.Module) -> nn.Sequential:
    """``body`` then ``new`` as one Sequential, keeping layer names where they do not collide."""
    kids = list(body.named_children()) + (
        list(new.named_children()) if isinstance(new, nn.Sequential) else [("head", new)]
    )
    names = [n for n, _ in kids]
    if len(set(names)) == len(names):
        return nn.Sequential(OrderedDict(kids))
    return nn.Sequential(*[m for _, m in kids])
