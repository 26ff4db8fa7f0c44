"""The interface of multi-task methods, and their registry: how per-task losses become one update.

Two families share one interface, ``backward(losses, ctx)``, which replaces ``loss.backward()``
inside :func:`interlearn.fit`:

* **loss weighting** (``kind="weighting"``): combine the losses into one scalar, then backward
  (equal, static, uncertainty, DWA, RLW, FAMO, GradNorm);
* **gradient combination** (``kind="gradient"``): compute the per-task gradients of the shared
  parameters and aggregate them (MGDA, MGDA-UB, PCGrad, CAGrad, IMTL-G, Aligned-MTL, UPGrad,
  Nash-MTL), through torchjd's aggregators.

``losses`` only holds the tasks labelled in the batch; a task without labels contributes nothing.
Methods register by name with :func:`register_method` (into :data:`MTL_METHODS`);
:func:`interlearn.multitask.methods.make_method` builds one and lists the known names when a
name is unknown (STYLE.md #7). The built-in methods live in :mod:`~interlearn.multitask.weighting`,
:mod:`~interlearn.multitask.gradients` and :mod:`~interlearn.multitask.gradnorm`, which import
this module; :mod:`~interlearn.multitask.methods` imports them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.registry import Registry

__all__ = ["MTLMethod", "MTLContext", "MTL_METHODS", "register_method"]


@dataclass
class MTLContext:
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
    #: the name the method is registered under (set by :func:`register_method`)
    method_name: ClassVar[str] = ""
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

    def combine(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> torch.Tensor:
        """The scalar to backpropagate (weighting methods)."""
        raise NotImplementedError

    def backward(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> None:
        """Accumulate this method's update direction into the parameters' ``.grad``."""
        if not losses:
            return
        self.combine(losses, ctx).backward()

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the training loop before each epoch (DWA rolls its loss history here)."""


MTL_METHODS: Registry[type[MTLMethod]] = Registry("multi-task method", "methods")
"""Multi-task methods: name -> :class:`MTLMethod` subclass."""


def register_method(name: str) -> Callable[[type[MTLMethod]], type[MTLMethod]]:
    """Class decorator registering a method under ``name``.

    Raises:
        ConfigError: ``name`` is already registered.
    """

    def deco(cls: type[MTLMethod]) -> type[MTLMethod]:
        MTL_METHODS.register(name, cls)
        cls.method_name = name
        return cls

    return deco
