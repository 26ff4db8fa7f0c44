"""The registry of multi-task methods: how per-task losses become one update.

Two families share one interface, ``backward(losses, ctx)``, which replaces ``loss.backward()``
inside :func:`interlearn.fit`:

* **loss weighting** (``kind="weighting"``): combine the losses into one scalar, then backward
  (equal, static, uncertainty, DWA, RLW, FAMO, GradNorm);
* **gradient combination** (``kind="gradient"``): compute the per-task gradients of the shared
  parameters and aggregate them (MGDA, MGDA-UB, PCGrad, CAGrad, IMTL-G, Aligned-MTL, UPGrad,
  Nash-MTL), through torchjd's aggregators.

``losses`` only holds the tasks labelled in the batch; a task without labels contributes nothing.
Methods register by name with :func:`register_method`; :func:`make_method` builds one and lists
the known names when a name is unknown (STYLE.md #7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from interlearn.errors import ConfigError, closest

__all__ = ["MTLMethod", "StepContext", "register_method", "make_method", "list_methods", "method_kind"]


@dataclass
class StepContext:
    """What a method may use besides the losses.

    Attributes:
        model: the multi-task model (``shared_parameters()``, ``task_parameters(name)``).
        features: the batch's last shared representation (graph kept for backward).
        x: the batch inputs.
        y: the batch's packed targets.
        recompute: ``(x, y) -> {task: loss}`` without gradients, under the current weights.
    """

    model: Any
    features: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    recompute: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


class MTLMethod(nn.Module):
    """Base class: turns the per-task losses of a batch into gradients in ``.grad``.

    Args:
        tasks: the task names, in the model's order.

    Subclasses of the weighting family implement :meth:`combine`; gradient-combination methods
    override :meth:`backward`. ``last_weights`` holds the task weights of the last step when
    the method has them (for logging).
    """

    kind: ClassVar[str] = "weighting"
    #: whether :meth:`parameters` are trained by the model's optimizer (uncertainty weighting)
    optimizer_params: ClassVar[bool] = False

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        if not tasks:
            raise ConfigError("a multi-task method needs at least one task name")
        self.tasks = list(tasks)
        self.index = {t: i for i, t in enumerate(self.tasks)}
        self.last_weights: dict[str, float] = {}

    def _device(self, losses: dict[str, torch.Tensor]) -> torch.device:
        return next(iter(losses.values())).device

    def combine(self, losses: dict[str, torch.Tensor], ctx: StepContext) -> torch.Tensor:
        """The scalar to backpropagate (weighting methods)."""
        raise NotImplementedError

    def backward(self, losses: dict[str, torch.Tensor], ctx: StepContext) -> None:
        """Accumulate this method's update direction into the parameters' ``.grad``."""
        if not losses:
            return
        self.combine(losses, ctx).backward()

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the training loop before each epoch (DWA rolls its loss history here)."""


_REGISTRY: dict[str, type[MTLMethod]] = {}


def register_method(name: str) -> Callable[[type[MTLMethod]], type[MTLMethod]]:
    """Class decorator registering a method under ``name``.

    Raises:
        ConfigError: ``name`` is already registered.
    """

    def deco(cls: type[MTLMethod]) -> type[MTLMethod]:
        if name in _REGISTRY:
            raise ConfigError(f"multi-task method {name!r} is already registered (by {_REGISTRY[name].__name__}); pick another name")
        _REGISTRY[name] = cls
        cls.method_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def _load_builtins() -> None:
    # importing the modules registers their methods
    from interlearn.multitask import gradients, gradnorm, weighting  # noqa: F401


def list_methods(kind: str | None = None) -> list[str]:
    """Registered method names, optionally only one ``kind`` (``"weighting"`` / ``"gradient"``)."""
    _load_builtins()
    return [n for n, c in _REGISTRY.items() if kind is None or c.kind == kind]


def method_kind(name: str) -> str:
    """``"weighting"`` or ``"gradient"`` for a registered method name."""
    _load_builtins()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown multi-task method {name!r}; known methods: {', '.join(list_methods())} (closest: {closest(name, _REGISTRY)})")
    return _REGISTRY[name].kind


def make_method(name: str, tasks: Sequence[str], **options: Any) -> MTLMethod:
    """Build the method registered as ``name`` for ``tasks``.

    Args:
        name: e.g. ``"equal"``, ``"uncertainty"``, ``"pcgrad"``, ``"upgrad"``.
        tasks: task names in the model's order.
        **options: the method's own options (e.g. ``weights`` for ``static``, ``c`` for ``cagrad``).

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a bad option.
    """
    method_kind(name)
    cls = _REGISTRY[name]
    try:
        return cls(tasks, **options)
    except TypeError as exc:
        raise ConfigError(f"method {name!r}: bad options {sorted(options)} ({exc})") from exc
