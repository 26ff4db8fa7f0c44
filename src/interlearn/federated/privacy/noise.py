"""Gaussian noise for client-level differential privacy, central or local.

Central DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language
Models"): the server releases only the unweighted mean of the clipped updates plus Gaussian
noise of std ``z * C / n`` (``C`` the clip norm, ``n`` the clients in the round), so one
client's whole contribution is hidden. With adaptive clipping (Andrew et al. 2021) part of the
budget goes to the unclipped count: the update noise multiplier becomes
``z_delta = (z**-2 - (2 * sigma_b)**-2) ** -0.5`` so the round as a whole is a Gaussian
mechanism with multiplier ``z`` (their Theorem 1), and that ``z`` is what the accountant sees.

Local DP: each client adds ``N(0, (z * C)**2)`` to its own clipped update before upload, so the
server (and anyone else) sees only noised updates. Accounting then uses sampling rate 1 (no
amplification: the client knows it takes part).

Noise is drawn from the round's ``torch.Generator`` (seeded, reproducible). That is right for
simulation and research; a production deployment needs a cryptographically secure source (as
Opacus' ``secure_mode``) and the floating-point care of Mironov 2012.

Compose ``[ClipUpdates, GaussianNoise, ...]``: clients clip then (local) noise; the server
collapses the cohort into one noised mean (central) before the strategy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult, RoundContext
from interlearn.federated.privacy.accounting import PrivacyAccountant, PrivacyBudgetExhausted
from interlearn.federated.privacy.clipping import ClipUpdates
from interlearn.federated.privacy.cohort import is_aggregate, mean_result, num_clients
from interlearn.types import Params

__all__ = ["add_gaussian_noise", "update_noise_multiplier", "GaussianNoise"]

MODES = ("central", "local")


def add_gaussian_noise(update: Params, std: float, generator: torch.Generator) -> Params:
    """Return ``update`` plus i.i.d. ``N(0, std**2)`` noise on every floating tensor."""
    out: Params = {}
    for k, v in update.items():
        if v.is_floating_point() and std > 0:
            noise = torch.randn(v.shape, generator=generator, dtype=torch.float32) * std
            out[k] = v + noise.to(v.dtype)
        else:
            out[k] = v
    return out


def update_noise_multiplier(noise_multiplier: float, count_noise_std: float) -> float:
    """Noise multiplier left for the update once the adaptive-clipping count takes its share.

    Andrew et al. 2021, Theorem 1: ``(z**-2 - (2 * sigma_b)**-2) ** -0.5``.

    Raises:
        ConfigError: ``2 * count_noise_std <= noise_multiplier`` (the count would need all of
            the budget).
    """
    if count_noise_std <= 0:
        return noise_multiplier
    if 2 * count_noise_std <= noise_multiplier:
        raise ConfigError(
            f"count_noise_std={count_noise_std} is too small for noise_multiplier="
            f"{noise_multiplier}: adaptive clipping needs 2 * count_noise_std > noise_multiplier "
            "(Andrew et al. suggest count_noise_std = clients_per_round / 20)"
        )
    return (noise_multiplier**-2 - (2 * count_noise_std) ** -2) ** -0.5


class GaussianNoise:
    """Add calibrated Gaussian noise (central or local DP) and account for it every round.

    Args:
        clip: the :class:`ClipUpdates` step placed before this one (its clip norm sets the
            noise scale).
        noise_multiplier: ``z`` > 0, noise std in units of the clip norm.
        mode: ``"central"`` (server noises the mean) or ``"local"`` (each client noises).
        sample_rate: ``clients_per_round / population`` (central mode, for accounting).
        accountant: optional :class:`PrivacyAccountant`; when given, ``ctx.notes`` gets
            ``dp/epsilon`` and ``dp/delta`` every round, and when its ``target_epsilon`` would be
            exceeded by the next round, ``ctx.notes["stop"]`` gets a message (the round loop
            stops) and any further round raises :class:`PrivacyBudgetExhausted`.

    Raises:
        ConfigError: bad mode or values, a missing sample rate, adaptive clipping without
            count noise in central mode, or a target epsilon that even one round exceeds.
    """

    name = "noise"

    def __init__(
        self,
        clip: ClipUpdates,
        noise_multiplier: float,
        *,
        mode: str = "central",
        sample_rate: float | None = None,
        accountant: PrivacyAccountant | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown noise mode {mode!r}; use one of {MODES}")
        if not isinstance(clip, ClipUpdates):
            raise ConfigError(f"clip must be the ClipUpdates step placed before this one, got {clip!r}")
        if not noise_multiplier > 0 or not math.isfinite(noise_multiplier):
            raise ConfigError(f"noise_multiplier must be a positive finite number, got {noise_multiplier!r}")
        if mode == "central" and clip.adaptive and clip.count_noise_std <= 0:
            raise ConfigError(
                "central DP with adaptive clipping releases the unclipped count too: set "
                "ClipUpdates(count_noise_std=...) > 0 (e.g. clients_per_round / 20)"
            )
        if mode == "local":
            sample_rate = 1.0
        if accountant is not None and sample_rate is None:
            raise ConfigError("sample_rate (= clients_per_round / population) is needed to account for central DP")
        if sample_rate is not None and not 0.0 < sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must lie in (0, 1], got {sample_rate!r}")
        self.clip = clip
        self.noise_multiplier = noise_multiplier
        self.mode = mode
        self.sample_rate = sample_rate
        self.accountant = accountant
        self._stop: str | None = None
        if accountant is not None and accountant.would_exceed(noise_multiplier=noise_multiplier, sample_rate=sample_rate):  # type: ignore[arg-type]
            raise ConfigError(
                "target_epsilon is exceeded by a single round: "
                + accountant.budget_message(noise_multiplier=noise_multiplier, sample_rate=sample_rate)  # type: ignore[arg-type]
            )

    @property
    def update_multiplier(self) -> float:
        """Noise multiplier applied to the update (``z``, or ``z_delta`` with adaptive clipping)."""
        if self.mode == "central" and self.clip.adaptive:
            return update_noise_multiplier(self.noise_multiplier, self.clip.count_noise_std)
        return self.noise_multiplier

    @property
    def stop_reason(self) -> str | None:
        """Why training must stop (target epsilon), or ``None``."""
        return self._stop

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        if self._stop is not None:
            raise PrivacyBudgetExhausted(self._stop)
        if self.mode == "local":
            std = self.noise_multiplier * self.clip.clip_norm
            return replace(result, update=add_gaussian_noise(result.update, std, ctx.generator))
        return result

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        if self._stop is not None:
            raise PrivacyBudgetExhausted(self._stop)
        if self.mode == "local" or not results:
            return list(results)
        for r in results:
            if r.extras:
                raise ConfigError(
                    f"central DP does not cover strategy extras ({sorted(r.extras)}, e.g. SCAFFOLD's control "
                    "variates): use a strategy without extras with GaussianNoise"
                )
            if is_aggregate(r) and r.metrics.get("secagg/weighted", 0.0):
                raise ConfigError(
                    "central DP needs the unweighted mean; build SecureAggregation(weighted=False)"
                )
        n = num_clients(results)
        std = self.update_multiplier * self.clip.clip_norm / n
        agg = mean_result(results, uniform=True)
        noised = replace(agg, update=add_gaussian_noise(agg.update, std, ctx.generator))
        ctx.notes["dp/noise_std"] = std
        return [noised]

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        acc = self.accountant
        if acc is None:
            return new
        q = float(self.sample_rate)  # type: ignore[arg-type]
        acc.step(noise_multiplier=self.noise_multiplier, sample_rate=q)
        ctx.notes["dp/epsilon"] = acc.epsilon()
        ctx.notes["dp/delta"] = acc.delta
        if acc.would_exceed(noise_multiplier=self.noise_multiplier, sample_rate=q):
            self._stop = acc.budget_message(noise_multiplier=self.noise_multiplier, sample_rate=q)
            ctx.notes["stop"] = self._stop
            ctx.log.append(self._stop)
        return new

    def state_dict(self) -> dict[str, object]:
        """The accountant's history (JSON-serializable) and the stop reason, for resumes."""
        hist = [list(h) for h in self.accountant.history] if self.accountant is not None else []
        return {"history": hist, "stop": self._stop}

    def load_state_dict(self, state: dict[str, object]) -> None:
        if self.accountant is not None:
            self.accountant.history = [tuple(h) for h in state.get("history", [])]  # type: ignore[union-attr]
        self._stop = state.get("stop")  # type: ignore[assignment]
