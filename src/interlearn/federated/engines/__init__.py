"""Engines by name: ``get_engine("sequential" | "vectorized" | "ray")``.

``ray`` is imported lazily (Ray is an optional dependency); other engines register with
:func:`register_engine`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlearn.errors import ConfigError, closest
from interlearn.federated.api import Engine
from interlearn.federated.engines.sequential import SequentialEngine

__all__ = ["ENGINES", "get_engine", "register_engine", "SequentialEngine", "VectorizedEngine"]


def _vectorized(**kw: Any) -> Engine:
    from interlearn.federated.engines.vectorized import VectorizedEngine

    return VectorizedEngine(**kw)


def _ray(**kw: Any) -> Engine:
    from interlearn.federated.engines.ray_engine import RayEngine

    return RayEngine(**kw)


def _fused_mlp(**kw: Any) -> Engine:
    from interlearn.federated.engines.fused_mlp import FusedMLPEngine

    return FusedMLPEngine(**kw)


ENGINES: dict[str, Callable[..., Engine]] = {"sequential": SequentialEngine, "vectorized": _vectorized, "ray": _ray, "fused_mlp": _fused_mlp}


def register_engine(name: str, factory: Callable[..., Engine]) -> None:
    """Register ``factory(**kwargs) -> Engine`` under ``name``.

    Raises:
        ConfigError: the name is taken.
    """
    if name in ENGINES:
        raise ConfigError(f"engine {name!r} is already registered; known: {sorted(ENGINES)}")
    ENGINES[name] = factory


def get_engine(name: str, **kwargs: Any) -> Engine:
    """Build the engine registered as ``name``.

    Raises:
        ConfigError: unknown name (lists the known ones) or bad keyword arguments.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; known engines: {sorted(ENGINES)} (closest: {closest(name, ENGINES)})")
    try:
        return ENGINES[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"engine {name!r}: {exc}") from exc


def __getattr__(name: str) -> Any:
    if name == "VectorizedEngine":
        from interlearn.federated.engines.vectorized import VectorizedEngine

        return VectorizedEngine
    raise AttributeError(name)
