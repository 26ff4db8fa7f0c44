"""Strategies and aggregators by name (STYLE.md #7): ``get_strategy("fedadam", lr=1e-2)``.

Other modules add theirs with :func:`register_strategy` / :func:`register_aggregator` (the
robust aggregators register ``median``, ``trimmed_mean``, ``krum``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlearn.errors import ConfigError, closest
from interlearn.federated.aggregate import WeightedMean
from interlearn.federated.api import Aggregator, Strategy
from interlearn.federated.strategies.fedavg import fedavg, fedavgm
from interlearn.federated.strategies.fedopt import fedadagrad, fedadam, fedyogi
from interlearn.federated.strategies.qfedavg import qfedavg
from interlearn.federated.strategies.scaffold import scaffold

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

STRATEGIES: dict[str, Callable[..., Strategy]] = {}
AGGREGATORS: dict[str, Callable[..., Aggregator]] = {}


def register_strategy(name: str, factory: Callable[..., Strategy]) -> None:
    """Register ``factory(**kwargs) -> Strategy`` under ``name``.

    Raises:
        ConfigError: ``name`` is already registered.
    """
    if name in STRATEGIES:
        raise ConfigError(f"strategy {name!r} is already registered; known: {sorted(STRATEGIES)}")
    STRATEGIES[name] = factory


def register_aggregator(name: str, factory: Callable[..., Aggregator]) -> None:
    """Register ``factory(**kwargs) -> Aggregator`` under ``name``.

    Raises:
        ConfigError: ``name`` is already registered.
    """
    if name in AGGREGATORS:
        raise ConfigError(f"aggregator {name!r} is already registered; known: {sorted(AGGREGATORS)}")
    AGGREGATORS[name] = factory


# modules that register more aggregators/strategies when imported (loaded on the first miss,
# so ``get_strategy("fedavg", aggregator="median")`` works without importing them by hand)
_PLUGINS = ("interlearn.federated.robust", "interlearn.federated.bulyan")


def _load_plugins() -> None:
    import importlib

    for mod in _PLUGINS:
        try:
            importlib.import_module(mod)
        except ImportError:  # an optional module that is not there
            pass


def _lookup(table: dict[str, Callable[..., Any]], kind: str, name: str, kwargs: dict[str, Any]) -> Any:
    if name not in table:
        _load_plugins()
    if name not in table:
        raise ConfigError(f"unknown {kind} {name!r}; known {kind}s: {sorted(table)} (closest: {closest(name, table)})")
    try:
        return table[name](**kwargs)
    except TypeError as exc:  # unexpected keyword argument
        raise ConfigError(f"{kind} {name!r}: {exc}") from exc


def known_strategies() -> list[str]:
    """Names :func:`get_strategy` accepts (plugin modules included)."""
    _load_plugins()
    return sorted(STRATEGIES)


def known_aggregators() -> list[str]:
    """Names :func:`get_aggregator` accepts (plugin modules such as the robust rules included)."""
    _load_plugins()
    return sorted(AGGREGATORS)


def get_strategy(name: str, **kwargs: Any) -> Strategy:
    """Build the strategy registered as ``name`` (``fedavg``, ``fedavgm``, ``fedadam``,
    ``fedyogi``, ``fedadagrad``, ``scaffold``, ...). ``aggregator`` may be given by name.

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a bad keyword.
    """
    agg = kwargs.get("aggregator")
    if isinstance(agg, str):
        kwargs = {**kwargs, "aggregator": get_aggregator(agg)}
    return _lookup(STRATEGIES, "strategy", name, kwargs)


def get_aggregator(name: str, **kwargs: Any) -> Aggregator:
    """Build the aggregator registered as ``name`` (``mean``, ``uniform_mean``, ...).

    Raises:
        ConfigError: unknown name (the message lists the known ones) or a bad keyword.
    """
    return _lookup(AGGREGATORS, "aggregator", name, kwargs)


for _n, _f in {"fedavg": fedavg, "fedavgm": fedavgm, "fedadam": fedadam, "fedyogi": fedyogi,
               "fedadagrad": fedadagrad, "scaffold": scaffold, "qfedavg": qfedavg}.items():
    register_strategy(_n, _f)
register_aggregator("mean", WeightedMean)
register_aggregator("uniform_mean", lambda: WeightedMean(uniform=True))
