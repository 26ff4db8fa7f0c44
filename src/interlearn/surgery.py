"""Model surgery: select by name glob, freeze/unfreeze, replace modules or the last layers,
build parameter groups (discriminative learning rates, layer-wise decay), and show what trains.

Small functions over module names, not subclasses (STYLE.md #8). Names are those of
``model.named_parameters()`` / ``model.named_modules()``; globs use ``fnmatch`` (``"backbone.*"``,
``"*.bias"``, ``"layer4*"``). A pattern that matches nothing is an error listing the closest names.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from interlearn.errors import ConfigError, ShapeError, closest

__all__ = [
    "select_names",
    "select_params",
    "select_modules",
    "freeze",
    "unfreeze",
    "replace_module",
    "replace_last",
    "leaf_layers",
    "param_groups",
    "layerwise_groups",
    "count_params",
    "trainable_table",
    "check_head_input",
]

_BN = (nn.modules.batchnorm._BatchNorm,)


def _as_list(patterns: str | Iterable[str]) -> list[str]:
    return [patterns] if isinstance(patterns, str) else list(patterns)


def select_names(names: Sequence[str], patterns: str | Iterable[str], what: str = "name") -> list[str]:
    """The ``names`` matching any glob (a name also matches the patterns it is a dotted child of:
    ``"head"`` selects ``"head.weight"``), in the order of ``names``' first matches.

    Raises:
        ConfigError: a pattern matches nothing (the closest names are listed; ``what`` says
            what the names are, e.g. ``"parameter"``).
    """
    out: list[str] = []
    for pat in _as_list(patterns):
        hit = [n for n in names if fnmatch.fnmatchcase(n, pat) or n == pat or n.startswith(pat + ".")]
        if not hit:
            raise ConfigError(f"{what} pattern {pat!r} matches nothing; closest names: {closest(pat, names)}")
        out += [n for n in hit if n not in out]
    return out


def select_params(model: nn.Module, patterns: str | Iterable[str]) -> list[str]:
    """Names of parameters matching any glob (a module name selects all its parameters)."""
    return select_names([n for n, _ in model.named_parameters()], patterns, "parameter")


def select_modules(model: nn.Module, patterns: str | Iterable[str]) -> list[str]:
    """Names of modules matching any glob."""
    return select_names([n for n, _ in model.named_modules() if n], patterns, "module")


def _bn_eval_hook(module: nn.Module, _inputs: Any) -> None:
    # A frozen BatchNorm must not update its running statistics even when the model is put in
    # train mode: this pre-hook switches it back to eval before every forward.
    if getattr(module, "_interlearn_frozen", False):
        module.training = False


def _set_bn_frozen(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, _BN):
            params = list(m.parameters(recurse=False))
            frozen = bool(params) and not any(p.requires_grad for p in params)
            if frozen and not getattr(m, "_interlearn_hook", None):
                setattr(m, "_interlearn_hook", m.register_forward_pre_hook(_bn_eval_hook))  # noqa: B010  (not a declared attribute)
            setattr(m, "_interlearn_frozen", frozen)  # noqa: B010
            if frozen:
                m.eval()


def freeze(model: nn.Module, patterns: str | Iterable[str] = "*") -> list[str]:
    """Set ``requires_grad=False`` on matching parameters; frozen BatchNorm stays in eval mode.

    Returns:
        The names of the parameters frozen.
    """
    return _set_trainable(model, patterns, False)


def unfreeze(model: nn.Module, patterns: str | Iterable[str] = "*") -> list[str]:
    """Set ``requires_grad=True`` on matching parameters (BatchNorm resumes updating statistics)."""
    return _set_trainable(model, patterns, True)


def _set_trainable(model: nn.Module, patterns: str | Iterable[str], trainable: bool) -> list[str]:
    names = select_params(model, patterns)
    params = dict(model.named_parameters())
    for n in names:
        params[n].requires_grad_(trainable)
    _set_bn_frozen(model)
    return names


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    modules = dict(model.named_modules())
    if name not in modules or not name:
        raise ConfigError(f"no module named {name!r}; closest names: {closest(name, [n for n in modules if n])}")
    parent_name, _, child = name.rpartition(".")
    return modules[parent_name], child


def _first_in_features(module: nn.Module) -> tuple[str, int] | None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return "features", m.in_features
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return "channels", m.in_channels
    return None


def check_head_input(features: torch.Tensor, head: nn.Module) -> None:
    """Raise ``ShapeError`` when ``head`` cannot take ``features`` (naming both shapes)."""
    need = _first_in_features(head)
    if need is None:
        return
    kind, size = need
    have = features.shape[1] if features.dim() > 1 else features.shape[0]
    if kind == "features" and features.dim() > 2:
        have = features.shape[-1]
    if have != size:
        raise ShapeError(
            f"the new head expects {size} input {kind} but the features have shape {tuple(features.shape)} "
            f"({have} {kind}); build the head with in_features={have} or add a Flatten/pooling before it"
        )


def replace_module(model: nn.Module, name: str, new: nn.Module, example_input: torch.Tensor | None = None) -> nn.Module:
    """Replace the submodule ``name`` by ``new`` in place and return the old one.

    Args:
        example_input: when given, a forward pass records the input reaching ``name`` and
            checks that ``new`` accepts it (``ShapeError`` naming both shapes otherwise).
    """
    parent, child = _parent(model, name)
    old = getattr(parent, child)
    if example_input is not None:
        seen: list[torch.Tensor] = []
        handle = old.register_forward_pre_hook(lambda _m, inp: seen.append(inp[0]))
        try:
            was = model.training
            model.eval()
            with torch.no_grad():
                model(example_input)
            model.train(was)
        finally:
            handle.remove()
        if seen:
            check_head_input(seen[0], new)
    setattr(parent, child, new)
    return old


def leaf_layers(model: nn.Module) -> list[str]:
    """Names of modules that own parameters directly, in registration order (the "layers")."""
    return [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]


def replace_last(
    model: nn.Sequential, k: int, new: nn.Module | Sequence[nn.Module], example_input: torch.Tensor | None = None
) -> nn.Sequential:
    """A new ``nn.Sequential``: ``model`` without its last ``k`` children, followed by ``new``.

    The kept children are shared (not copied) with ``model``.

    Raises:
        ConfigError: ``model`` is not sequential or ``k`` is out of range.
        ShapeError: with ``example_input``, when the features do not fit ``new``.
    """
    if not isinstance(model, nn.Sequential):
        raise ConfigError(
            f"replace_last needs an nn.Sequential, got {type(model).__name__}; use replace_module(model, name, new)"
        )
    n = len(model)
    if not 0 <= k <= n:
        raise ConfigError(f"k={k}: the model has {n} top-level layers; choose 0 <= k <= {n}")
    kept = list(model.named_children())[: n - k]
    body = nn.Sequential(OrderedDict(kept))
    tail: nn.Module = new if isinstance(new, nn.Module) else nn.Sequential(*new)
    if example_input is not None:
        with torch.no_grad():
            was = body.training
            body.eval()
            feats = body(example_input)
            body.train(was)
        check_head_input(feats, tail)
    tail_items = list(tail.named_children()) if isinstance(tail, nn.Sequential) else [(str(n - k), tail)]
    if all(name.isdigit() for name, _ in kept) and all(name.isdigit() for name, _ in tail_items):
        # purely numbered models stay numbered 0..m-1, like nn.Sequential(*modules)
        return nn.Sequential(*[m for _, m in kept], *[m for _, m in tail_items])
    names = [name for name, _ in kept]
    items = list(kept)
    for i, (name, m) in enumerate(tail_items):
        name = name if not name.isdigit() else f"new{i}"
        if name in names:
            raise ConfigError(f"new layer name {name!r} clashes with a kept layer; rename it (kept: {names})")
        names.append(name)
        items.append((name, m))
    # named layers keep their names, so code addressing them by name keeps working
    return nn.Sequential(OrderedDict(items))


def param_groups(
    model: nn.Module, lrs: Mapping[str, float], default_lr: float | None = None, weight_decay: float | None = None
) -> list[dict[str, Any]]:
    """Parameter groups with a learning rate per glob (discriminative learning rates).

    The first matching pattern wins; parameters matched by no pattern go to a group with
    ``default_lr`` (skipped when ``None``). Frozen parameters are included, so later unfreezing
    (gradual unfreezing) trains them without rebuilding the optimizer.
    """
    named = list(model.named_parameters())
    taken: set[str] = set()
    groups: list[dict[str, Any]] = []
    for pat, lr in lrs.items():
        names = [n for n in select_params(model, pat) if n not in taken]
        taken.update(names)
        if names:
            g: dict[str, Any] = {"params": [p for n, p in named if n in names], "lr": lr, "names": names}
            if weight_decay is not None:
                g["weight_decay"] = weight_decay
            groups.append(g)
    rest = [n for n, _ in named if n not in taken]
    if rest and default_lr is not None:
        g = {"params": [p for n, p in named if n in rest], "lr": default_lr, "names": rest}
        if weight_decay is not None:
            g["weight_decay"] = weight_decay
        groups.append(g)
    return groups


def layerwise_groups(
    model: nn.Module, lr: float, decay: float, blocks: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Layer-wise learning-rate decay: block ``i`` of ``L`` (input first) gets ``lr * decay**(L-1-i)``.

    Args:
        blocks: block names, input side first; default the top-level children with parameters.
    """
    if not 0 < decay <= 1:
        raise ConfigError(f"decay={decay}: must be in (0, 1]")
    blocks = (
        list(blocks)
        if blocks is not None
        else [n for n, m in model.named_children() if any(True for _ in m.parameters())]
    )
    depth = len(blocks)
    return param_groups(model, {b: lr * decay ** (depth - 1 - i) for i, b in enumerate(blocks)}, default_lr=lr)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only trainable ones)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def trainable_table(model: nn.Module) -> str:
    """A text table: parameters, trainable and frozen counts per top-level module."""
    rows = []
    for name, child in model.named_children():
        total = sum(p.numel() for p in child.parameters())
        train = sum(p.numel() for p in child.parameters() if p.requires_grad)
        if total:
            rows.append((name, type(child).__name__, total, train))
    own = list(model.parameters(recurse=False))
    if own:
        rows.append(
            ("(own)", type(model).__name__, sum(p.numel() for p in own), sum(p.numel() for p in own if p.requires_grad))
        )
    w = max([len(r[0]) for r in rows] + [6])
    lines = [f"{'module':<{w}}  {'type':<16} {'params':>10} {'trainable':>10} {'frozen':>10}"]
    for name, typ, total, train in rows:
        lines.append(f"{name:<{w}}  {typ:<16} {total:>10,} {train:>10,} {total - train:>10,}")
    tot, tr = count_params(model), count_params(model, True)
    lines.append(f"{'total':<{w}}  {'':<16} {tot:>10,} {tr:>10,} {tot - tr:>10,}")
    return "\n".join(lines)
