"""Strategies and aggregators by name (STYLE.md #7): ``get_strategy("fedadam", lr=1e-2)``.

Both tables are :class:`~interlearn.registry.Registry` objects. Other modules add theirs with
:func:`register_strategy` / :func:`register_aggregator`; the robust aggregators (``median``,
``trimmed_mean``, ``krum``, ``multi_krum``, ``norm_bound``, ``bulyan``) register themselves when
their modules are imported, which the first lookup that misses does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlearn.federated.api import Aggregator, Strategy
from interlearn.federated.strategies.aggregate import WeightedMean
from interlearn.federated.strategies.fedavg import fedavg, fedavgm
from interlearn.federated.strategies.fedopt import fedadagrad, fedadam, fedyogi
from interlearn.federated.strategies.qfedavg import qfedavg
from interlearn.federated.strategies.scaffold import scaffold
from interlearn.registry import Registry

__all__ = [
    "STRATEGIES",
    "AGGREGATORS",
    "register_strategy",
    "register_aggregator",
    "get_strategy",
    "get_aggregator",
    "known_strategies",
    "known_aggregators",
]

STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy", "strategies")
"""Federated server strategies: name -> ``factory(**kwargs) -> Strategy``."""

AGGREGATORS: Registry[Callable[..., Aggregator]] = Registry(
    "aggregator", plugins=("interlearn.federated.protections.robust", "interlearn.federated.protections.bulyan")
)
"""Federated aggregation rules (how a cohort's updates combine): name -> ``factory(**kwargs) -> Aggregator``."""


def register_strategy(name: str, factory: Callable[..., Strategy]) -> None:
    """Register ``factory(**kwargs) -> Strategy`` under ``name``.

    Raises:
        ConfigError: ``name`` is already registered.
    """
    STRATEGIES.register(name, factory)


def register_aggregator(name: str, factory: Callable[..., Aggregator]) -> None:
    """Register ``factory(**kwargs) -> Aggregator`` under ``name``.

    Raises:
        ConfigError: ``name`` is already registered.
    """
    AGGREGATORS.register(name, factory)


def known_strategies() -> list[str]:
    """Names :func:`get_strategy` accepts (plugin modules included)."""
    return STRATEGIES.names()


def known_aggregators() -> list[str]:
    """Names :func:`get_aggregator` accepts (plugin modules such as the robust rules included)."""
    return AGGREGATORS.names()


def get_strategy(name: str, **kwargs: Any) -> Strategy:
    """Build the strategy registered as ``name`` (``fedavg``, ``fedavgm``, ``fedadam``,
    ``fedyogi``, ``fedadagrad``, ``scaffold``, ``qfedavg``). ``aggregator`` may be given by name.

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a bad keyword.
    """
    agg = kwargs.get("aggregator")
    if isinstance(agg, str):
        kwargs = {**kwargs, "aggregator": get_aggregator(agg)}
    strategy: Strategy = STRATEGIES.build(name, **kwargs)
    return strategy


def get_aggregator(name: str, **kwargs: Any) -> Aggregator:
    """Build the aggregator registered as ``name`` (``mean``, ``uniform_mean``, ``median``, ...).

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a bad keyword.
    """
    aggregator: Aggregator = AGGREGATORS.build(name, **kwargs)
    return aggregator


STRATEGIES.register_all(
    {
        "fedavg": fedavg,
        "fedavgm": fedavgm,
        "fedadam": fedadam,
        "fedyogi": fedyogi,
        "fedadagrad": fedadagrad,
        "scaffold": scaffold,
        "qfedavg": qfedavg,
    }
)
AGGREGATORS.register_all({"mean": WeightedMean, "uniform_mean": lambda: WeightedMean(uniform=True)})
