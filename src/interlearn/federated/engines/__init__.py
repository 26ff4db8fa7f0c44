"""Engines by name: ``get_engine("auto" | "sequential" | "vectorized" | "multicore" | "ray")``.

Every engine runs the same client update (one step function, :mod:`interlearn.federated.client.step`)
and differs only in how it schedules clients: one after another (``sequential``), many at once
(``vectorized``), on worker processes (``multicore``), on Ray (``ray``), on Flower nodes
(``interlearn.federated.flower``). ``auto`` picks the fastest for the model and machine.
``ray`` is imported lazily (Ray is an optional dependency); other engines register with
:func:`register_engine`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlearn.federated.api import Engine
from interlearn.federated.engines.auto import AutoEngine
from interlearn.federated.engines.base import EngineBase, run_cohort_on
from interlearn.federated.engines.multicore import MultiCoreEngine
from interlearn.federated.engines.ray_engine import RayEngine
from interlearn.federated.engines.sequential import SequentialEngine
from interlearn.federated.engines.vectorized import VectorizedEngine
from interlearn.registry import Registry

__all__ = [
    "ENGINES",
    "AutoEngine",
    "EngineBase",
    "MultiCoreEngine",
    "SequentialEngine",
    "VectorizedEngine",
    "get_engine",
    "register_engine",
    "run_cohort_on",
]


ENGINES: Registry[Callable[..., Engine]] = Registry("engine")
"""Engines: name -> ``factory(**kwargs) -> Engine``."""

ENGINES.register_all(
    {
        "auto": AutoEngine,
        "sequential": SequentialEngine,
        "vectorized": VectorizedEngine,
        "multicore": MultiCoreEngine,
        "ray": RayEngine,  # imports Ray (an optional dependency) when started
    }
)


def register_engine(name: str, factory: Callable[..., Engine]) -> None:
    """Register ``factory(**kwargs) -> Engine`` under ``name``.

    Raises:
        ConfigError: the name is taken.
    """
    ENGINES.register(name, factory)


def get_engine(name: str, **kwargs: Any) -> Engine:
    """Build the engine registered as ``name``.

    Raises:
        ConfigError: unknown name (lists the known ones) or bad keyword arguments.
    """
    engine: Engine = ENGINES.build(name, **kwargs)
    return engine
