"""Privacy accounting by Opacus or Google's dp-accounting: no hand-written formulas.

Each round of client-level DP-FedAvg is one Gaussian mechanism on the sum of clipped updates,
preceded by the round's client sampling. The accountant must analyse the sampling that runs,
under the adjacency that sampling supports, with the noise calibrated to that adjacency's
sensitivity (:mod:`interlearn.federated.protections.privacy.noise` does the calibration):

========================  ===================  ======================================  ============================
sampling                  adjacency            event                                   accountants
========================  ===================  ======================================  ============================
Poisson, rate ``q``       add/remove a client  ``PoissonSampledDpEvent(q, Gaussian)``  Opacus ``rdp`` / ``prv`` /
                                                                                       ``gdp``; dp-accounting
                                                                                       ``dp_rdp`` / ``dp_pld``
fixed ``m`` of ``N``      replace a client     ``SampledWithoutReplacementDpEvent``    dp-accounting ``dp_rdp``
                                               ``(N, m, Gaussian)``                    (Wang, Balle &
                                                                                       Kasiviswanathan 2019)
every client, every       (any)                ``GaussianDpEvent``                     all
round (local DP, q = 1)
========================  ===================  ======================================  ============================

Opacus' accountants analyse Poisson subsampling only (RDP: Mironov 2017, Mironov, Talwar &
Zhang 2019; PRV: Gopi, Lee & Wutschitz 2021; GDP: Dong, Roth & Su 2019), so a fixed-size cohort
with an Opacus accountant is refused with a message naming the fix. The accountant keeps the
event sequence (``events``: JSON-serializable, for checkpoints) and recomputes epsilon from it
with the library, so the reported epsilon is the library's own number for that sequence.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from interlearn.errors import ConfigError, InterlearnError, closest

__all__ = [
    "ACCOUNTANTS",
    "OPACUS_ACCOUNTANTS",
    "DP_ACCOUNTING_ACCOUNTANTS",
    "RoundEvent",
    "PrivacyAccountant",
    "PrivacyBudgetExhausted",
]

OPACUS_ACCOUNTANTS = ("rdp", "prv", "gdp")
DP_ACCOUNTING_ACCOUNTANTS = ("dp_rdp", "dp_pld")
ACCOUNTANTS = OPACUS_ACCOUNTANTS + DP_ACCOUNTING_ACCOUNTANTS

_ADJACENCY = {"poisson": "add_remove", "fixed": "replace_one", "all": None}


class PrivacyBudgetExhausted(InterlearnError):
    """The next round would spend more privacy than the target epsilon allows."""


@dataclass(frozen=True)
class RoundEvent:
    """One round's mechanism: a Gaussian with multiplier ``noise_multiplier`` (std over the
    sensitivity under the sampling's adjacency) after the round's client sampling.

    Attributes:
        sampling: ``"poisson"`` (rate ``sample_rate``), ``"fixed"`` (``cohort`` of
            ``population`` without replacement) or ``"all"`` (no subsampling: q = 1).
        noise_multiplier: ``z`` > 0.
        sample_rate: ``q`` (Poisson), ``cohort / population`` (fixed) or 1.
        population, cohort: ``N`` and ``m`` of a fixed-size cohort (0 otherwise).
    """

    sampling: str
    noise_multiplier: float
    sample_rate: float = 1.0
    population: int = 0
    cohort: int = 0

    def __post_init__(self) -> None:
        if self.sampling not in _ADJACENCY:
            raise ConfigError(f"event sampling {self.sampling!r}: one of {list(_ADJACENCY)}")
        if not self.noise_multiplier > 0 or not math.isfinite(self.noise_multiplier):
            raise ConfigError(f"noise_multiplier must be a positive finite number, got {self.noise_multiplier!r}")
        if not 0.0 < self.sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must lie in (0, 1], got {self.sample_rate!r}")
        if self.sampling == "fixed" and not 1 <= self.cohort <= self.population:
            raise ConfigError(
                f"a fixed-size cohort needs 1 <= cohort <= population, got {self.cohort} of {self.population}"
            )

    @property
    def adjacency(self) -> str | None:
        """``"add_remove"``, ``"replace_one"`` or ``None`` (no subsampling: either)."""
        return _ADJACENCY[self.sampling]

    def to_json(self) -> list[Any]:
        return [self.sampling, self.noise_multiplier, self.sample_rate, self.population, self.cohort]

    @classmethod
    def from_json(cls, v: list[Any]) -> RoundEvent:
        return cls(str(v[0]), float(v[1]), float(v[2]), int(v[3]), int(v[4]))

    def dp_event(self) -> Any:
        """The dp-accounting ``DpEvent`` of this round."""
        import dp_accounting

        gauss = dp_accounting.GaussianDpEvent(self.noise_multiplier)
        if self.sampling == "poisson":
            return dp_accounting.PoissonSampledDpEvent(self.sample_rate, gauss)
        if self.sampling == "fixed":
            return dp_accounting.SampledWithoutReplacementDpEvent(self.population, self.cohort, gauss)
        return gauss


class PrivacyAccountant:
    """Tracks (epsilon, delta) of a sequence of rounds with Opacus or dp-accounting.

    Args:
        delta: the delta of the (epsilon, delta) guarantee, in (0, 1). A common choice is
            below ``1 / population``.
        kind: Opacus' ``"rdp"``, ``"prv"``, ``"gdp"`` (Poisson sampling only) or dp-accounting's
            ``"dp_rdp"`` (Poisson and fixed-size cohorts), ``"dp_pld"`` (Poisson).
        target_epsilon: optional budget; :meth:`would_exceed` says whether one more step
            would go over it.

    Raises:
        ConfigError: unknown ``kind``, or ``delta``/``target_epsilon`` out of range.

    Example:
        >>> acc = PrivacyAccountant(delta=1e-5)
        >>> acc.step(noise_multiplier=1.0, sample_rate=0.01)
        >>> acc.epsilon() > 0
        True
    """

    def __init__(self, delta: float = 1e-5, kind: str = "rdp", target_epsilon: float | None = None):
        if kind not in ACCOUNTANTS:
            raise ConfigError(
                f"unknown accountant {kind!r}; did you mean {closest(kind, ACCOUNTANTS)}? (known: {list(ACCOUNTANTS)})"
            )
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"delta must lie in (0, 1), got {delta!r}")
        if target_epsilon is not None and not target_epsilon > 0:
            raise ConfigError(f"target_epsilon must be > 0 (or None), got {target_epsilon!r}")
        if kind in OPACUS_ACCOUNTANTS:
            import opacus.accountants  # noqa: F401  (lazy: opacus is the 'privacy' extra)
        else:
            import dp_accounting  # noqa: F401
        self.kind = kind
        self.delta = delta
        self.target_epsilon = target_epsilon
        self._events: list[tuple[RoundEvent, int]] = []  # runs of identical rounds
        self._cache: tuple[int, float] | None = None

    @property
    def library(self) -> str:
        """``"opacus"`` or ``"dp-accounting"``."""
        return "opacus" if self.kind in OPACUS_ACCOUNTANTS else "dp-accounting"

    def describe(self) -> str:
        """One line for run summaries, e.g. ``"opacus rdp"``."""
        return f"{self.library} {self.kind.removeprefix('dp_')} (delta = {self.delta:g})"

    @property
    def adjacency(self) -> str | None:
        """The adjacency of the subsampled rounds so far (``None`` before any)."""
        for ev, _ in self._events:
            if ev.adjacency is not None:
                return ev.adjacency
        return None

    @property
    def events(self) -> list[tuple[RoundEvent, int]]:
        """The composed rounds as ``(event, count)`` runs."""
        return list(self._events)

    @property
    def history(self) -> list[list[Any]]:
        """The event runs, JSON-serializable: ``[[sampling, z, q, N, m, count], ...]``."""
        return [ev.to_json() + [n] for ev, n in self._events]

    @history.setter
    def history(self, value: list[list[Any]]) -> None:
        events = []
        for v in value:
            if len(v) == 3:  # a checkpoint of an earlier version: Opacus' (z, q, steps) of Poisson rounds
                events.append((_poisson(float(v[0]), float(v[1])), int(v[2])))
            elif len(v) == 6:
                events.append((RoundEvent.from_json(list(v[:5])), int(v[5])))
            else:
                raise ConfigError(f"accountant history entry {v!r}: expected [sampling, z, q, N, m, count]")
        self._events = events
        self._cache = None

    @property
    def steps(self) -> int:
        """Number of mechanisms composed so far."""
        return sum(n for _, n in self._events)

    def check(self, event: RoundEvent) -> None:
        """Raise :class:`ConfigError` unless this accountant analyses ``event`` after the
        events so far (the message names the fix)."""
        if event.sampling == "fixed" and self.kind != "dp_rdp":
            raise ConfigError(
                f"fixed-size cohorts ({event.cohort} of {event.population} without replacement, replace-one adjacency) "
                f"have no {self.kind!r} accountant ({self.library} analyses Poisson sampling only): use "
                "PrivacyAccountant(kind='dp_rdp') (dp-accounting's SampledWithoutReplacementDpEvent) or Poisson "
                "sampling (SimulationConfig(sampling='poisson'))"
            )
        adj = self.adjacency
        if event.adjacency is not None and adj is not None and adj != event.adjacency:
            raise ConfigError(
                f"this accountant composed {adj} rounds; a {event.sampling} round is {event.adjacency}: one run "
                "must keep one sampling scheme (use a fresh PrivacyAccountant)"
            )

    def step_event(self, event: RoundEvent) -> None:
        """Compose one more round.

        Raises:
            ConfigError: see :meth:`check`.
        """
        self.check(event)
        if self._events and self._events[-1][0] == event:
            self._events[-1] = (event, self._events[-1][1] + 1)
        else:
            self._events.append((event, 1))
        self._cache = None

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None:
        """Compose one Poisson-subsampled Gaussian round (rate 1: a plain Gaussian).

        Raises:
            ConfigError: ``noise_multiplier <= 0`` or ``sample_rate`` outside (0, 1].
        """
        self.step_event(_poisson(noise_multiplier, sample_rate))

    def epsilon(self) -> float:
        """Epsilon spent so far at this accountant's delta (0.0 before any step)."""
        if not self._events:
            return 0.0
        key = self.steps
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, _epsilon(self.kind, self._events, self.delta))
        return self._cache[1]

    def epsilon_after_event(self, event: RoundEvent, steps: int = 1) -> float:
        """Epsilon after ``steps`` more rounds of ``event`` (state is unchanged)."""
        self.check(event)
        trial = copy.copy(self)
        trial._events = list(self._events)
        trial._cache = None
        for _ in range(steps):
            trial.step_event(event)
        return trial.epsilon()

    def epsilon_after(self, *, noise_multiplier: float, sample_rate: float, steps: int = 1) -> float:
        """Epsilon after ``steps`` more Poisson rounds (state is unchanged)."""
        return self.epsilon_after_event(_poisson(noise_multiplier, sample_rate), steps)

    def would_exceed_event(self, event: RoundEvent) -> bool:
        """True when a target is set and one more ``event`` would spend more than it."""
        return self.target_epsilon is not None and self.epsilon_after_event(event) > self.target_epsilon

    def would_exceed(self, *, noise_multiplier: float, sample_rate: float) -> bool:
        """True when a target is set and one more Poisson round would spend more than it."""
        return self.would_exceed_event(_poisson(noise_multiplier, sample_rate))

    def budget_message_event(self, event: RoundEvent) -> str:
        """A readable explanation of why training stops at the target epsilon."""
        nxt = self.epsilon_after_event(event)
        return (
            f"privacy budget reached: after {self.steps} noised round(s) epsilon = "
            f"{self.epsilon():.3f} (delta = {self.delta:g}, {self.library} {self.kind} accountant); one more "
            f"round would give epsilon = {nxt:.3f} > target_epsilon = {self.target_epsilon:g}. "
            "Training stops here; raise target_epsilon, the noise multiplier, or lower the "
            "sampling rate to train longer."
        )

    def budget_message(self, *, noise_multiplier: float, sample_rate: float) -> str:
        """:meth:`budget_message_event` for a Poisson round."""
        return self.budget_message_event(_poisson(noise_multiplier, sample_rate))


def _poisson(noise_multiplier: float, sample_rate: float) -> RoundEvent:
    return RoundEvent("poisson" if sample_rate < 1.0 else "all", noise_multiplier, sample_rate)


def _epsilon(kind: str, events: list[tuple[RoundEvent, int]], delta: float) -> float:
    """The library's epsilon for ``events`` at ``delta``."""
    if kind in OPACUS_ACCOUNTANTS:
        from opacus.accountants import create_accountant

        acc = create_accountant(kind)
        acc.history = [(ev.noise_multiplier, ev.sample_rate, n) for ev, n in events]
        return float(acc.get_epsilon(delta=delta))
    import dp_accounting

    rel = dp_accounting.NeighboringRelation
    adj = next((ev.adjacency for ev, _ in events if ev.adjacency is not None), "add_remove")
    relation = rel.ADD_OR_REMOVE_ONE if adj == "add_remove" else rel.REPLACE_ONE
    if kind == "dp_rdp":
        acc = dp_accounting.rdp.RdpAccountant(neighboring_relation=relation)
    else:
        acc = dp_accounting.pld.PLDAccountant(neighboring_relation=relation)
    acc.compose(
        dp_accounting.ComposedDpEvent([dp_accounting.SelfComposedDpEvent(ev.dp_event(), n) for ev, n in events])
    )
    return float(acc.get_epsilon(delta))
