"""Cohort sampling and simulated dropouts.

Every round samples a cohort uniformly without replacement (McMahan et al. 2017: a fraction
``C`` of the clients per round), from a generator seeded by ``(seed, round)`` so that a resumed
run samples exactly the cohorts of an uninterrupted one. Stragglers/dropouts (Bonawitz et al.
2019, "Towards Federated Learning at Scale: System Design", SysML) are simulated by removing
each sampled client with probability ``dropout``; the round aggregates over the survivors, or
is skipped (:class:`RoundSkipped`, with the reason logged) when fewer than ``min_survivors``
remain.
"""

from __future__ import annotations

import math

import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.types import ClientId

__all__ = ["cohort_size", "sample_cohort", "apply_dropout", "check_survivors", "round_generator", "client_generator"]

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant (splitmix64) to decorrelate derived seeds


def _mix(*parts: int) -> int:
    h = 0
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * _MIX & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def round_generator(seed: int, round_: int, purpose: int = 0) -> torch.Generator:
    """A generator determined by ``(seed, round, purpose)`` only (resume-safe)."""
    return torch.Generator().manual_seed(_mix(seed, round_, purpose, 1))


def client_generator(seed: int, round_: int, cid: ClientId) -> torch.Generator:
    """The generator a client's local training uses in a round (engine-independent)."""
    return torch.Generator().manual_seed(_mix(seed, round_, cid, 2))


def step_generator(seed: int, round_: int, cid: ClientId) -> torch.Generator:
    """The generator a client's update-step hooks use in a round (local noise, stochastic
    rounding): per client, so the draws do not depend on where or in which order clients run."""
    return torch.Generator().manual_seed(_mix(seed, round_, cid, 5))


def cohort_size(num_clients: int, fraction: float | None = None, count: int | None = None) -> int:
    """Clients per round from a ``fraction`` of the population or an absolute ``count``.

    Raises:
        ConfigError: both or neither given, or out of range.
    """
    if (fraction is None) == (count is None):
        raise ConfigError(f"give exactly one of clients_per_round (count) or fraction; got count={count}, fraction={fraction}")
    if fraction is not None:
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(f"fraction={fraction}: must be in (0, 1]")
        return max(1, int(math.ceil(fraction * num_clients - 1e-9)))
    if count is None or not 1 <= count <= num_clients:
        raise ConfigError(f"clients_per_round={count}: must be between 1 and the population size {num_clients}")
    return int(count)


def sample_cohort(num_clients: int, size: int, generator: torch.Generator) -> list[ClientId]:
    """``size`` distinct client ids drawn uniformly, sorted ascending."""
    if not 1 <= size <= num_clients:
        raise ConfigError(f"cohort size {size} must be between 1 and the population size {num_clients}")
    if size == num_clients:
        return list(range(num_clients))
    # Floyd-free draw that costs O(population) bytes once: fine up to millions of clients
    pick = torch.randperm(num_clients, generator=generator)[:size]
    return sorted(int(c) for c in pick)


def apply_dropout(cohort: list[ClientId], probability: float, generator: torch.Generator) -> tuple[list[ClientId], list[ClientId]]:
    """Split the cohort into ``(survivors, dropped)``; each client drops with ``probability``.

    Raises:
        ConfigError: ``probability`` outside [0, 1).
    """
    if not 0.0 <= probability < 1.0:
        raise ConfigError(f"dropout probability {probability}: must be in [0, 1)")
    if probability == 0.0 or not cohort:
        return list(cohort), []
    drop = torch.rand(len(cohort), generator=generator) < probability
    survivors = [c for c, d in zip(cohort, drop.tolist()) if not d]
    dropped = [c for c, d in zip(cohort, drop.tolist()) if d]
    return survivors, dropped


def check_survivors(survivors: int, minimum: int, round_: int) -> None:
    """Raise :class:`RoundSkipped` when fewer than ``minimum`` clients reported."""
    if survivors < minimum:
        raise RoundSkipped(f"round {round_}: only {survivors} client(s) reported, fewer than min_survivors={minimum}; round skipped")
