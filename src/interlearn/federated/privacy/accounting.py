"""Privacy accounting through Opacus' accountants (RDP, PRV, GDP): no hand-written formulas.

Each federated round of client-level DP-FedAvg is one subsampled Gaussian mechanism with noise
multiplier ``z`` and sampling rate ``q = clients_per_round / population`` (McMahan et al. 2018).
Opacus accounts for exactly that mechanism (Poisson subsampling): RDP (Mironov 2017; Mironov,
Talwar & Zhang 2019), PRV (Gopi, Lee & Wutschitz 2021) or GDP (Dong, Roth & Su 2019).
"""

from __future__ import annotations

import copy
import math

from interlearn.errors import ConfigError, InterlearnError, closest

__all__ = ["ACCOUNTANTS", "PrivacyAccountant", "PrivacyBudgetExhausted"]

ACCOUNTANTS = ("rdp", "prv", "gdp")


class PrivacyBudgetExhausted(InterlearnError):
    """The next round would spend more privacy than the target epsilon allows."""


class PrivacyAccountant:
    """Tracks (epsilon, delta) of repeated subsampled Gaussian mechanisms with Opacus.

    Args:
        delta: the delta of the (epsilon, delta) guarantee, in (0, 1). A common choice is
            below ``1 / population``.
        kind: ``"rdp"``, ``"prv"`` or ``"gdp"`` (Opacus' accountant of that name).
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
            raise ConfigError(f"unknown accountant {kind!r}; did you mean {closest(kind, ACCOUNTANTS)}?")
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"delta must lie in (0, 1), got {delta!r}")
        if target_epsilon is not None and not target_epsilon > 0:
            raise ConfigError(f"target_epsilon must be > 0 (or None), got {target_epsilon!r}")
        from opacus.accountants import create_accountant  # lazy: opacus is the 'privacy' extra

        self.kind = kind
        self.delta = delta
        self.target_epsilon = target_epsilon
        self._acc = create_accountant(kind)

    @property
    def history(self) -> list[tuple[float, float, int]]:
        """Opacus' history: ``(noise_multiplier, sample_rate, steps)`` runs."""
        return list(self._acc.history)

    @history.setter
    def history(self, value: list[tuple[float, float, int]]) -> None:
        self._acc.history = [(float(z), float(q), int(n)) for z, q, n in value]

    @property
    def steps(self) -> int:
        """Number of mechanisms composed so far."""
        return sum(n for _, _, n in self._acc.history)

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None:
        """Compose one more subsampled Gaussian mechanism.

        Raises:
            ConfigError: ``noise_multiplier <= 0`` or ``sample_rate`` outside (0, 1].
        """
        _check(noise_multiplier, sample_rate)
        self._acc.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)

    def epsilon(self) -> float:
        """Epsilon spent so far at this accountant's delta (0.0 before any step)."""
        if not self._acc.history:
            return 0.0
        return float(self._acc.get_epsilon(delta=self.delta))

    def epsilon_after(self, *, noise_multiplier: float, sample_rate: float, steps: int = 1) -> float:
        """Epsilon that would be spent after ``steps`` more mechanisms (state is unchanged)."""
        _check(noise_multiplier, sample_rate)
        trial = copy.deepcopy(self._acc)
        for _ in range(steps):
            trial.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
        return float(trial.get_epsilon(delta=self.delta))

    def would_exceed(self, *, noise_multiplier: float, sample_rate: float) -> bool:
        """True when a target is set and one more step would spend more than it."""
        if self.target_epsilon is None:
            return False
        nxt = self.epsilon_after(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
        return nxt > self.target_epsilon

    def budget_message(self, *, noise_multiplier: float, sample_rate: float) -> str:
        """A readable explanation of why training stops at the target epsilon."""
        nxt = self.epsilon_after(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
        return (
            f"privacy budget reached: after {self.steps} noised round(s) epsilon = "
            f"{self.epsilon():.3f} (delta = {self.delta:g}, {self.kind} accountant); one more "
            f"round would give epsilon = {nxt:.3f} > target_epsilon = {self.target_epsilon:g}. "
            "Training stops here; raise target_epsilon, the noise multiplier, or lower the "
            "sampling rate to train longer."
        )


def _check(noise_multiplier: float, sample_rate: float) -> None:
    if not noise_multiplier > 0 or not math.isfinite(noise_multiplier):
        raise ConfigError(f"noise_multiplier must be a positive finite number, got {noise_multiplier!r}")
    if not 0.0 < sample_rate <= 1.0:
        raise ConfigError(f"sample_rate must lie in (0, 1], got {sample_rate!r}")
