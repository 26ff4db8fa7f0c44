"""What the two keyboard recipes (:mod:`~interlearn.recipes.keyboard`, next character, and
:mod:`~interlearn.recipes.keyboard_words`, next word) share: their users as a federated
population, an evenly spread sample of users, and the checks of their common fields."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.federated.engines import ENGINES
from interlearn.federated.population import Population
from interlearn.federated.strategies import STRATEGIES

__all__ = ["population_of", "spread", "check_at_least", "check_federated"]


class _User(Protocol):
    @property
    def train(self) -> TensorData: ...


U = TypeVar("U")


def population_of(users: Sequence[_User]) -> Population:
    """One client per user, holding only that user's training chunks (never validation or test)."""
    return Population.from_clients([(u.train.x, u.train.y) for u in users])


def spread(users: Sequence[U], n: int) -> list[U]:
    """Every ``len(users) // n``-th user, at most ``n`` (a fixed sample across the list's order)."""
    step = max(len(users) // n, 1)
    return list(users[::step][:n])


def check_at_least(config: Any, prefix: str, names: Iterable[str], minimum: int) -> None:
    """Each named field of ``config`` must be at least ``minimum``.

    Raises:
        ConfigError: naming the field (``keyboard.rounds=0: must be >= 1``).
    """
    for name in names:
        if int(getattr(config, name)) < minimum:
            raise ConfigError(f"{prefix}.{name}={getattr(config, name)}: must be >= {minimum}")


def check_federated(config: Any, prefix: str) -> None:
    """The federated-training fields both keyboards have: ``strategy`` and ``engine`` (names
    registered with :func:`~interlearn.federated.register_strategy` /
    :func:`~interlearn.federated.register_engine`), ``max_local_steps`` and ``max_users``.

    Raises:
        ConfigError: a bad value, named with the fix (an unknown name lists the known ones).
    """
    STRATEGIES.check(config.strategy, f"{prefix}.strategy")
    ENGINES.check(config.engine, f"{prefix}.engine")
    if config.max_local_steps is not None and config.max_local_steps < 1:
        raise ConfigError(f"{prefix}.max_local_steps={config.max_local_steps}: use None (full epochs) or >= 1")
    if config.max_users is not None and config.max_users < config.clients_per_round:
        raise ConfigError(
            f"{prefix}.max_users={config.max_users} is smaller than clients_per_round={config.clients_per_round}"
        )
