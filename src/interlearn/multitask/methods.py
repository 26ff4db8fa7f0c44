"""Multi-task methods by name: :func:`make_method`, :func:`list_methods`, :func:`method_kind`.

Importing this module registers the built-in methods (loss weightings in
:mod:`~interlearn.multitask.weighting` and :mod:`~interlearn.multitask.gradnorm`, gradient
combinations in :mod:`~interlearn.multitask.gradients`); the interface they implement and the
registry are in :mod:`~interlearn.multitask.base`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interlearn.errors import ConfigError
from interlearn.multitask.base import MTL_METHODS, MTLContext, MTLMethod, register_method
from interlearn.multitask.gradients import MGDAUB, JacobianMethod
from interlearn.multitask.gradnorm import GradNorm
from interlearn.multitask.weighting import DWA, FAMO, RLW, Equal, Static, Uncertainty

__all__ = [
    "MTLMethod",
    "MTLContext",
    "MTL_METHODS",
    "register_method",
    "make_method",
    "list_methods",
    "method_kind",
    "BUILTIN_METHODS",
]

BUILTIN_METHODS = (Equal, Static, Uncertainty, DWA, RLW, FAMO, GradNorm, JacobianMethod, MGDAUB)
"""The built-in method classes (importing their modules registered them; every torchjd
aggregator is a registered subclass of :class:`JacobianMethod`)."""


def list_methods(kind: str | None = None) -> list[str]:
    """Registered method names, optionally only one ``kind`` (``"weighting"`` / ``"gradient"``)."""
    return [n for n, c in MTL_METHODS.items() if kind is None or c.kind == kind]


def method_kind(name: str) -> str:
    """``"weighting"`` or ``"gradient"`` for a registered method name.

    Raises:
        ConfigError: unknown name (the message lists the known methods).
    """
    return MTL_METHODS.get(name).kind


def make_method(name: str, tasks: Sequence[str], **options: Any) -> MTLMethod:
    """Build the method registered as ``name`` for ``tasks``.

    Args:
        name: e.g. ``"equal"``, ``"uncertainty"``, ``"pcgrad"``, ``"upgrad"``.
        tasks: task names in the model's order.
        **options: the method's own options (e.g. ``weights`` for ``static``, ``c`` for ``cagrad``).

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a bad option.
    """
    cls = MTL_METHODS.get(name)
    try:
        return cls(tasks, **options)
    except TypeError as exc:
        raise ConfigError(f"method {name!r}: bad options {sorted(options)} ({exc})") from exc
