"""Cut points of any ``nn.Module``: transfer at a named submodule (``layer3``, ``encoder.layer.4``).

A cut at a submodule keeps (and freezes) everything the model computes before that submodule
first runs, and replaces that submodule and everything after it with fresh, re-initialized
copies (the last ``nn.Linear`` resized to the new task, or a new linear head when the model ends
in features). Two ways to do it, chosen per model:

- **torch.fx** (Reed et al. 2022, "torch.fx: Practical Program Capture and Transformation for
  Deep Learning in Python", MLSys): when the model traces, its graph is split at the cut into a
  *body* and a *tail* module. A cut is offered only where a single tensor crosses it (between
  residual stages, not inside a block whose skip connection jumps over it). The body runs alone,
  so its features are cached (:mod:`interlearn.features`).
- **forward hooks**: a model that does not trace (e.g. a Hugging Face encoder, whose forward
  branches on shapes) is run once on a sample to record the order in which its modules first
  run; the modules from the cut on are re-initialized in place and the earlier ones frozen.
  The kept part cannot run alone, so its features are not cached.

Candidate cut points are the model's blocks in execution order: its parametrized children,
looking through single-child wrappers and expanding ``ModuleList`` stacks (a BERT encoder's
``encoder.layer.0`` ... ``encoder.layer.5``), after the first parametrized block; plus
``"(all)"`` (keep everything, train a new linear head on the output) when the model does not
end in its own linear head. Yosinski et al. 2014 motivate the search: which layers transfer
depends on the model and on how far the target task is from the source.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

import torch
from torch import fx, nn

from interlearn.errors import ConfigError, closest
from interlearn.surgery import freeze, unfreeze

__all__ = ["KEEP_ALL", "SCRATCH", "NamedCut", "named_cut_points", "cut_module", "trace", "has_params"]

KEEP_ALL = "(all)"
SCRATCH = "(scratch)"


def has_params(m: nn.Module) -> bool:
    """Whether ``m`` has at least one parameter."""
    return any(True for _ in m.parameters())


def _expand(name: str, mod: nn.Module) -> list[str]:
    kids = [(n, c) for n, c in mod.named_children() if has_params(c)]
    if isinstance(mod, (nn.ModuleList, nn.ModuleDict)):
        return [f"{name}.{n}" for n, _ in kids]
    if len(kids) == 1 and isinstance(kids[0][1], (nn.ModuleList, nn.ModuleDict)):
        return _expand(f"{name}.{kids[0][0]}", kids[0][1])
    return [name]


def _blocks(model: nn.Module, prefix: str = "") -> list[str]:
    """Structural candidates: parametrized children, through single-child wrappers, stacks expanded."""
    kids = [(n, c) for n, c in model.named_children() if has_params(c)]
    if len(kids) == 1 and not isinstance(kids[0][1], (nn.ModuleList, nn.ModuleDict)):
        return _blocks(kids[0][1], f"{prefix}{kids[0][0]}.")
    return [b for n, c in kids for b in _expand(f"{prefix}{n}", c)]


def trace(model: nn.Module, sample: torch.Tensor | None = None) -> fx.GraphModule | None:
    """``torch.fx.symbolic_trace(model)``, or ``None`` when it fails or, given ``sample``,
    computes something else than the model (checked in eval mode)."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001  (any tracing failure: data-dependent control flow, unsupported ops -> hooks)
        return None
    if sample is not None:
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                same = torch.allclose(gm(sample), model(sample), atol=1e-5)
        except Exception:  # noqa: BLE001  (the traced graph fails where the module does not)
            same = False
        model.train(was)
        if not same:
            return None
    return gm


def _scope(node: fx.Node) -> list[str]:
    stack = node.meta.get("nn_module_stack") or {}
    names = list(stack.keys())
    if node.op == "call_module":
        names.append(str(node.target))
    return names


def _start(gm: fx.GraphModule, name: str) -> int | None:
    for i, node in enumerate(gm.graph.nodes):
        if any(s == name or s.startswith(name + ".") for s in _scope(node)):
            return i
    return None


def _crossing(nodes: list[fx.Node], p: int) -> list[fx.Node]:
    after = set(nodes[p:])
    return [n for n in nodes[:p] if any(u in after for u in n.users)]


def _first_calls(model: nn.Module, sample: torch.Tensor) -> dict[str, int]:
    """Module name -> the position of its first call in a forward pass on ``sample``."""
    order: dict[str, int] = {}
    handles = []

    def seen(name: str) -> None:  # a pre-hook that returns None leaves the inputs alone
        order.setdefault(name, len(order))

    for name, mod in model.named_modules():
        if name:
            handles.append(mod.register_forward_pre_hook(lambda _m, _i, name=name: seen(name)))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return order


@dataclass(frozen=True)
class _Plan:
    traced: bool
    order: dict[str, int]  # module -> position (graph position when traced)
    gm: fx.GraphModule | None


def _plan(model: nn.Module, sample: torch.Tensor | None) -> _Plan:
    gm = trace(model, sample)
    if gm is not None:
        nodes = list(gm.graph.nodes)
        order: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for s in _scope(node):
                order.setdefault(s, i)
        return _Plan(True, order, gm)
    if sample is None:
        raise ConfigError(
            f"{type(model).__name__} does not trace with torch.fx; give a sample input so its modules' order can be recorded"
        )
    return _Plan(False, _first_calls(model, sample[:2]), None)


def named_cut_points(model: nn.Module, sample: torch.Tensor | None = None) -> list[str]:
    """Candidate cuts of any module, in execution order (see the module docstring).

    Args:
        model: the base.
        sample: an input batch; needed when the model does not trace with torch.fx.

    Returns:
        Dotted module names (e.g. ``["layer2", "layer3", "fc"]``), plus ``"(all)"`` when the
        model ends in features rather than its own linear head.
    """
    plan = _plan(model, sample)
    blocks = sorted((b for b in _blocks(model) if b in plan.order), key=lambda b: plan.order[b])
    cands = [
        b for b in blocks if any(has_params(model.get_submodule(o)) for o in blocks if plan.order[o] < plan.order[b])
    ]
    if plan.traced and plan.gm is not None:
        nodes = list(plan.gm.graph.nodes)
        cands = [b for b in cands if len(_crossing(nodes, _start(plan.gm, b) or 0)) == 1]
    if not _ends_in_linear(model, plan, sample):
        cands.append(KEEP_ALL)
    return cands


def _ends_in_linear(model: nn.Module, plan: _Plan, sample: torch.Tensor | None) -> bool:
    if plan.gm is not None:  # the graph's output comes straight from an nn.Linear
        out = next(n for n in plan.gm.graph.nodes if n.op == "output").args[0]
        return (
            isinstance(out, fx.Node)
            and out.op == "call_module"
            and isinstance(plan.gm.get_submodule(str(out.target)), nn.Linear)
        )
    return sample is not None and _head_linear(model, sample[:2]) is not None


def _head_linear(model: nn.Module, sample: torch.Tensor) -> str | None:
    """The ``nn.Linear`` whose output is the model's output, if there is one."""
    outs: dict[int, str] = {}

    def seen(name: str, out: object) -> None:  # a hook that returns None leaves the output alone
        outs[id(out)] = name

    handles = [
        m.register_forward_hook(lambda _m, _i, o, name=n: seen(name, o))
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear)
    ]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(sample)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return outs.get(id(out)) if isinstance(out, torch.Tensor) else None


def _reset(module: nn.Module) -> None:
    for m in module.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()


def _with_head(tail: nn.Module, features: torch.Tensor, num_outputs: int) -> nn.Module:
    """``tail`` answering with ``num_outputs`` values: its own head resized, or a new one appended."""
    head = _head_linear(tail, features)
    if head is not None:
        old = cast(nn.Linear, tail.get_submodule(head))  # _head_linear names an nn.Linear
        parent = tail.get_submodule(head.rpartition(".")[0]) if "." in head else tail
        setattr(parent, head.rpartition(".")[2], nn.Linear(old.in_features, num_outputs, bias=old.bias is not None))
        return tail
    was = tail.training
    with torch.no_grad():
        dim = tail.eval()(features).flatten(1).shape[1]
    tail.train(was)
    return nn.Sequential(OrderedDict(tail=tail, new_flatten=nn.Flatten(), new_head=nn.Linear(dim, num_outputs)))


@dataclass
class NamedCut:
    """A base cut at a named submodule.

    Attributes:
        name: the first replaced module (``"(all)"``: none, ``"(scratch)"``: all of them).
        body: the frozen kept part as its own module (``nn.Identity`` when it cannot run alone).
        new: the trained part: fresh layers taking ``body``'s output (split), or the whole model
            with the kept modules frozen inside it (in place).
        separable: whether ``body`` runs alone (its features can be cached).
        note: how the cut was made.
    """

    name: str
    body: nn.Module
    new: nn.Module
    separable: bool
    note: str

    def model(self) -> nn.Module:
        """The kept and the new part as one model: ``Sequential(body, head)`` when the cut split
        the model, else ``new`` (the whole model, its kept modules frozen inside it)."""
        return nn.Sequential(OrderedDict(body=self.body, head=self.new)) if self.separable else self.new


def _check(model: nn.Module, cut: str, plan: _Plan) -> None:
    if cut in (KEEP_ALL, SCRATCH):
        return
    names = [n for n, _ in model.named_modules() if n]
    if cut not in names:
        raise ConfigError(
            f"cut={cut!r} is not a submodule of {type(model).__name__}; closest: {closest(cut, names)} "
            f"(or 'auto', {KEEP_ALL!r} to keep everything)"
        )
    if cut not in plan.order:
        raise ConfigError(f"cut={cut!r}: that module never runs in the model's forward pass; choose one that does")


def cut_module(base: nn.Module, cut: str, num_outputs: int, sample: torch.Tensor, seed: int | None = None) -> NamedCut:
    """Cut a copy of ``base`` at the submodule ``cut``; freeze the kept part, re-initialize the rest.

    Args:
        base: any module (not modified).
        cut: a submodule name, ``"(all)"`` or ``"(scratch)"``.
        num_outputs: outputs of the new task (the last Linear is resized or a head added).
        sample: an input batch (sizes the new head; records the order of untraceable models).
        seed: seeds the re-initialization.

    Returns:
        A :class:`NamedCut`.

    Raises:
        ConfigError: an unknown submodule (closest names listed), one that never runs, or a
            cut that a skip connection jumps over in a traced model.
    """
    model = copy.deepcopy(base)
    plan = _plan(model, sample[:2])
    _check(model, cut, plan)
    if seed is not None:
        torch.manual_seed(seed)
    if cut == KEEP_ALL:
        freeze(model)
        with torch.no_grad():
            dim = model.eval()(sample[:1]).flatten(1).shape[1]
        head = nn.Sequential(OrderedDict(new_flatten=nn.Flatten(), new_head=nn.Linear(dim, num_outputs)))
        return NamedCut(cut, model, head, True, "kept everything; a new linear head on its output")
    if plan.traced and plan.gm is not None and cut != SCRATCH:
        return _split_graph(base, plan.gm, cut, num_outputs, sample)
    return _reinit_in_place(model, plan, cut, num_outputs, sample)


def _split_graph(base: nn.Module, gm: fx.GraphModule, cut: str, num_outputs: int, sample: torch.Tensor) -> NamedCut:
    """Split the traced graph where ``cut`` first runs: a frozen body and fresh copies of the rest."""
    nodes = list(gm.graph.nodes)
    p = _start(gm, cut) or 0
    crossing = _crossing(nodes, p)
    if len(crossing) != 1:
        raise ConfigError(
            f"cut={cut!r}: {len(crossing)} values cross this point of {type(base).__name__}'s graph "
            f"({[n.name for n in crossing]}), e.g. a skip connection; cut between blocks instead "
            f"(candidates: {named_cut_points(base, sample[:2])})"
        )
    body_graph, tail_graph = fx.Graph(), fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in nodes[:p]:
        env[node] = body_graph.node_copy(node, lambda a: env[a])
    body_graph.output(env[crossing[0]])
    tenv: dict[fx.Node, fx.Node] = {crossing[0]: tail_graph.placeholder("features")}
    for node in nodes[p:]:
        tenv[node] = tail_graph.node_copy(node, lambda a: tenv[a])
    body, tail = fx.GraphModule(gm, body_graph), fx.GraphModule(gm, tail_graph)
    tail = copy.deepcopy(tail)  # fresh copies of the replaced layers; the originals stay in the body's model
    _reset(tail)
    freeze(body)
    with torch.no_grad():
        feats = body.eval()(sample[:2])
    new = _with_head(tail, feats, num_outputs)
    for p_ in new.parameters():
        p_.requires_grad_(True)
    return NamedCut(cut, body, new, True, f"split with torch.fx at {cut}")


def _reinit_in_place(model: nn.Module, plan: _Plan, cut: str, num_outputs: int, sample: torch.Tensor) -> NamedCut:
    """Re-initialize, in place, the modules first running at or after the cut; freeze the others."""
    start = -1 if cut == SCRATCH else plan.order[cut]
    fresh = {n for n, pos in plan.order.items() if pos >= start}
    freeze(model)
    names = []
    for name, mod in model.named_modules():
        own = [n for n, _ in mod.named_parameters(recurse=False)]
        if name in fresh and own:
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
            names += [f"{name}.{n}" for n in own]
    if names:
        unfreeze(model, names)  # also lets fresh BatchNorm layers update their statistics again
    new = _with_head(model, sample[:2], num_outputs)
    if new is not model:  # a head appended after the model's output: it trains, the model keeps its frozen part
        for p_ in new.get_submodule("new_head").parameters():
            p_.requires_grad_(True)
    how = "torch.fx" if plan.traced else "forward hooks (the model does not trace with torch.fx)"
    return NamedCut(cut, nn.Identity(), new, False, f"re-initialized from {cut} on in place, order from {how}")
