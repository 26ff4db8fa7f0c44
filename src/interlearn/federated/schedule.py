"""Values that change with the round: the client learning rate, the local epochs, the cohort
size, the noise multiplier.

A :class:`Schedule` is a small frozen object called with a round index (1-based) that returns
the value for that round; it is pure (the same round always gives the same value), so a run
killed and resumed from a checkpoint follows exactly the schedule an uninterrupted run follows,
and it pickles to worker processes. Where a number is accepted, a schedule is too
(``LocalSGD(lr=..., epochs=...)``, ``SimulationConfig(clients_per_round=...)``,
``GaussianNoise(noise_multiplier=...)``)::

    lr = piecewise({1: 3e-3, 101: 1e-3})                 # 3e-3 for rounds 1-100, then 1e-3
    lr = cosine(0.1, 0.001, rounds=200)                   # half a cosine from 0.1 to 0.001
    lr = step_decay(0.1, every=50, factor=0.5)            # halves every 50 rounds
    update = LocalSGD(epochs=piecewise({1: 1, 50: 2}), lr=lr)

Write your own by subclassing :class:`Schedule` (a frozen dataclass with ``__call__``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from interlearn.errors import ConfigError

__all__ = [
    "Schedule",
    "Constant",
    "Piecewise",
    "StepDecay",
    "Cosine",
    "constant",
    "piecewise",
    "step_decay",
    "cosine",
    "at",
]

T = TypeVar("T", int, float)


class Schedule:
    """A value per round: ``schedule(round) -> value`` (rounds count from 1)."""

    def __call__(self, round_: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """The same value every round."""

    value: float

    def __call__(self, round_: int) -> float:
        return self.value


@dataclass(frozen=True)
class Piecewise(Schedule):
    """``values[i]`` from round ``starts[i]`` on (``starts`` ascending, the first one 1).

    Raises:
        ConfigError: empty, unsorted, or not starting at round 1.
    """

    starts: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.starts or len(self.starts) != len(self.values):
            raise ConfigError(f"piecewise schedule: {self.starts} / {self.values}: give one value per start round")
        if self.starts[0] != 1 or list(self.starts) != sorted(set(self.starts)):
            raise ConfigError(f"piecewise schedule starts {self.starts}: ascending, distinct, the first one 1")

    def __call__(self, round_: int) -> float:
        value = self.values[0]
        for start, v in zip(self.starts, self.values):
            if round_ >= start:
                value = v
        return value


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``initial * factor ** ((round - 1) // every)``."""

    initial: float
    every: int
    factor: float

    def __post_init__(self) -> None:
        if self.every < 1 or not self.factor > 0:
            raise ConfigError(f"step decay every={self.every}, factor={self.factor}: need every >= 1, factor > 0")

    def __call__(self, round_: int) -> float:
        return self.initial * self.factor ** ((max(round_, 1) - 1) // self.every)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from ``start`` (round 1) to ``end`` (round ``rounds`` and after)."""

    start: float
    end: float
    rounds: int

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError(f"cosine schedule rounds={self.rounds}: must be >= 1")

    def __call__(self, round_: int) -> float:
        t = min(max(round_ - 1, 0), max(self.rounds - 1, 1)) / max(self.rounds - 1, 1)
        return self.end + 0.5 * (self.start - self.end) * (1.0 + math.cos(math.pi * t))


def constant(value: float) -> Constant:
    """The same ``value`` every round."""
    return Constant(value)


def piecewise(values: Mapping[int, float]) -> Piecewise:
    """``{first_round: value, ...}``: each value from its round on (the first key must be 1).

    Example:
        >>> piecewise({1: 0.1, 101: 0.01})(150)
        0.01
    """
    starts = tuple(sorted(int(r) for r in values))
    return Piecewise(starts, tuple(values[r] for r in starts))


def step_decay(initial: float, every: int, factor: float) -> StepDecay:
    """``initial``, multiplied by ``factor`` every ``every`` rounds."""
    return StepDecay(initial, every, factor)


def cosine(start: float, end: float, rounds: int) -> Cosine:
    """Half a cosine from ``start`` at round 1 to ``end`` at round ``rounds``."""
    return Cosine(start, end, rounds)


def at(value: T | Schedule, round_: int) -> float:
    """``value`` at ``round_``: a schedule is called, a number is itself."""
    return value(round_) if isinstance(value, Schedule) else value
