"""Gaussian noise for client-level differential privacy, central or local.

Central DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language
Models", ICLR): clients clip their update to norm ``C``; the server adds Gaussian noise to the
SUM of the clipped updates and divides by a *fixed* denominator, never by the number of clients
that happened to report (that number depends on who took part and would leak it):

================  ==============  ===========  =========================  =====================
sampling          adjacency       sensitivity  noise std on the sum       released mean
================  ==============  ===========  =========================  =====================
Poisson, rate q   add/remove one  ``C``        ``z * C``                  ``(sum + noise)/(qN)``
fixed m of N      replace one     ``2 C``      ``z * 2C``                 ``(sum + noise)/m``
================  ==============  ===========  =========================  =====================

The accountant (:class:`~interlearn.federated.protections.privacy.accounting.PrivacyAccountant`) composes
the matching event every round: ``PoissonSampledDpEvent(q, Gaussian(z))`` or
``SampledWithoutReplacementDpEvent(N, m, Gaussian(z))``; a combination with no matching
accountant is refused. The release happens every round: a Poisson round that sampled nobody
releases the noise alone (the round loop must not skip it, see
:func:`interlearn.federated.server.sampling.releases_every_round`). With adaptive clipping (Andrew et
al. 2021) part of the budget goes to the unclipped count: the update noise multiplier becomes
``z_delta = (z**-2 - (2 * sigma_b)**-2) ** -0.5`` so that the round as a whole is a Gaussian
mechanism with multiplier ``z`` (their Theorem 1, stated for add/remove adjacency: Poisson only).

Dropouts (a sampled client that does not report, a lost worker) are not used for amplification:
each round is accounted at the sampling rate, an upper bound on the rate at which a client
actually contributes as long as dropping out does not depend on the client's data; the fixed
denominator then shrinks the released mean by the survival rate.

Local DP: each client adds ``N(0, (2 z C)**2)`` to its own clipped update before upload (any two
updates of one client are neighbours: sensitivity ``2 C``); accounting uses no sampling
amplification (the client knows it takes part): a ``GaussianDpEvent(z)`` per round.

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
from typing import Any

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult, RoundContext, UpdateStep
from interlearn.federated.protections.privacy.accounting import PrivacyAccountant, PrivacyBudgetExhausted, RoundEvent
from interlearn.federated.protections.privacy.clipping import ClipUpdates
from interlearn.federated.protections.privacy.cohort import AGGREGATE_ID, is_aggregate, summed_metrics
from interlearn.federated.schedule import Schedule, at
from interlearn.federated.server.sampling import CohortSampling
from interlearn.types import Params

__all__ = ["add_gaussian_noise", "update_noise_multiplier", "noisy_sum_mean", "GaussianNoise"]

MODES = ("central", "local")


def add_gaussian_noise(update: Params, std: float, generator: torch.Generator) -> Params:
    """Return ``update`` plus i.i.d. ``N(0, std**2)`` noise on every floating tensor (drawn in
    float64 for float64 tensors, float32 otherwise)."""
    out: Params = {}
    for k, v in update.items():
        if v.is_floating_point() and std > 0:
            dt = torch.float64 if v.dtype == torch.float64 else torch.float32
            noise = torch.randn(v.shape, generator=generator, dtype=dt) * std
            out[k] = (v.to(dt) + noise).to(v.dtype)
        else:
            out[k] = v
    return out


def noisy_sum_mean(
    results: Sequence[ClientResult], template: Params, std: float, denominator: float, generator: torch.Generator
) -> Params:
    """``(sum of the results' updates + N(0, std**2)) / denominator`` per key.

    An aggregate result (secure aggregation) stands for ``num_clients`` updates through their
    mean, so it adds ``mean * num_clients``. ``template`` fixes keys, shapes and dtypes (used
    when ``results`` is empty: the noise-only release).
    """
    out: Params = {}
    for k, ref in template.items():
        dt = torch.float64 if ref.dtype == torch.float64 else torch.float32
        total = torch.zeros(ref.shape, dtype=dt, device=ref.device)
        for r in results:
            count = float(r.metrics.get("num_clients", 1)) if is_aggregate(r) else 1.0
            total = total + r.update[k].to(dt) * count
        if ref.is_floating_point() and std > 0:
            total = total + torch.randn(ref.shape, generator=generator, dtype=dt).to(ref.device) * std
        out[k] = (total / denominator).to(ref.dtype)
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


class GaussianNoise(UpdateStep):
    """Add calibrated Gaussian noise (central or local DP) and account for it every round.

    Args:
        clip: the :class:`ClipUpdates` step placed before this one (its clip norm sets the
            noise scale).
        noise_multiplier: ``z`` > 0, noise std in units of the sensitivity; a
            :class:`~interlearn.federated.schedule.Schedule` changes it with the round (the
            accountant composes each round's own event, and the stop check looks one round ahead).
        mode: ``"central"`` (server noises the sum) or ``"local"`` (each client noises).
        sampling: the run's client sampling (central mode; required): it fixes the adjacency,
            the sensitivity, the denominator and the accountant's event, e.g.
            ``CohortSampling.build("poisson", population=1000, clients_per_round=100)``.
        accountant: optional :class:`PrivacyAccountant`; when given, ``ctx.notes`` gets
            ``dp/epsilon`` and ``dp/delta`` every round, and when its ``target_epsilon`` would be
            exceeded by the next round, ``ctx.stop`` gets a message (the round loop
            stops) and any further round raises :class:`PrivacyBudgetExhausted`.

    Every round ``ctx.notes`` also states ``dp/sampling``, ``dp/adjacency``, ``dp/estimator``,
    ``dp/accountant`` and ``dp/dropouts`` (they end up in the run's metrics), and
    :meth:`summary` says the same in one paragraph.

    Raises:
        ConfigError: bad mode or values, central mode without ``sampling``, a sampling the
            accountant cannot analyse, adaptive clipping without count noise or with fixed-size
            cohorts, or a target epsilon that even one round exceeds.
    """

    name = "noise"

    def __init__(
        self,
        clip: ClipUpdates,
        noise_multiplier: float | Schedule,
        *,
        mode: str = "central",
        sampling: CohortSampling | None = None,
        accountant: PrivacyAccountant | None = None,
        sample_rate: float | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown noise mode {mode!r}; use one of {MODES}")
        if not isinstance(clip, ClipUpdates):
            raise ConfigError(f"clip must be the ClipUpdates step placed before this one, got {clip!r}")
        if not isinstance(noise_multiplier, Schedule) and not (
            noise_multiplier > 0 and math.isfinite(noise_multiplier)
        ):
            raise ConfigError(f"noise_multiplier must be a positive finite number, got {noise_multiplier!r}")
        if sample_rate is not None:
            raise ConfigError(
                "GaussianNoise(sample_rate=...) cannot fix the estimator's denominator: pass the run's sampling, "
                f"e.g. sampling=CohortSampling.build('poisson', population=N, rate={sample_rate}) "
                "(or use dp_fedavg_steps(population=N, clients_per_round=m))"
            )
        if mode == "central":
            if not isinstance(sampling, CohortSampling):
                raise ConfigError(
                    "central DP needs the run's client sampling (it fixes the adjacency, the noise scale and the "
                    "fixed denominator): pass sampling=CohortSampling.build('poisson', population=N, clients_per_round=m)"
                )
            if clip.adaptive and clip.count_noise_std <= 0:
                raise ConfigError(
                    "central DP with adaptive clipping releases the unclipped count too: set "
                    "ClipUpdates(count_noise_std=...) > 0 (e.g. clients_per_round / 20)"
                )
            if clip.adaptive and sampling.kind == "fixed":
                raise ConfigError(
                    "adaptive clipping's budget split (Andrew et al. 2021, Theorem 1) is derived for add/remove "
                    "adjacency: use Poisson sampling (CohortSampling.build('poisson', ...)) or a fixed clip norm"
                )
        else:
            sampling = None
        self.clip = clip
        self.noise_schedule = noise_multiplier
        self._round = 1  # the round the hooks run in (the scheduled z is that round's)
        self.mode = mode
        self.sampling = sampling
        # central DP releases an update in every round, even with nobody sampled
        self.releases_every_round = mode == "central"
        self.accountant = accountant
        self._stop: str | None = None
        self._last_round = 0
        self._unaccounted: list[int] = []
        if accountant is not None:
            accountant.check(self.event)
            if accountant.would_exceed_event(self.event):
                raise ConfigError(
                    "target_epsilon is exceeded by a single round: " + accountant.budget_message_event(self.event)
                )

    # ---- what the mechanism is
    @property
    def adjacency(self) -> str:
        """``"add_remove"`` (Poisson), ``"replace_one"`` (fixed cohorts; local DP)."""
        if self.sampling is not None and self.sampling.kind == "poisson":
            return "add_remove"
        return "replace_one"

    @property
    def sensitivity(self) -> float:
        """L2 sensitivity of the noised quantity (the sum, or one client's update) under
        :attr:`adjacency`: ``C`` for add/remove, ``2 C`` for replace-one."""
        return (1.0 if self.adjacency == "add_remove" else 2.0) * self.clip.clip_norm

    @property
    def denominator(self) -> float:
        """The fixed denominator of the released mean: ``q N`` or ``m`` (central mode)."""
        return self.sampling.expected_size if self.sampling is not None else 1.0

    @property
    def noise_multiplier(self) -> float:
        """``z`` of the current round (the schedule's value, or the constant)."""
        return self.multiplier_at(self._round)

    def multiplier_at(self, round_: int) -> float:
        """``z`` of round ``round_``.

        Raises:
            ConfigError: the schedule gives a non-positive or infinite ``z`` there.
        """
        z = float(at(self.noise_schedule, round_))
        if not (z > 0 and math.isfinite(z)):
            raise ConfigError(f"noise_multiplier schedule gives z = {z} in round {round_}: must be positive and finite")
        return z

    @property
    def event(self) -> RoundEvent:
        """The accountant's event for one round (the current one) of this mechanism."""
        return self.event_at(self._round)

    def event_at(self, round_: int) -> RoundEvent:
        """The accountant's event for round ``round_`` (its scheduled ``z``)."""
        s, z = self.sampling, self.multiplier_at(round_)
        if s is None or s.rate >= 1.0:
            return RoundEvent("all", z)
        if s.kind == "poisson":
            return RoundEvent("poisson", z, s.rate)
        return RoundEvent("fixed", z, s.rate, s.population, s.size or 0)

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

    def statements(self, run_sampling: CohortSampling | None = None) -> dict[str, str]:
        """What the reported epsilon is about, as ``dp/...`` strings (see :meth:`summary`)."""
        if self.mode == "local":
            sampling = "local DP: every reporting client noises its own update; no sampling amplification"
            adjacency = "replace-one (any two updates of one client; sensitivity 2C)"
            estimator = f"each client adds N(0, (2 z C)^2), z = {self.noise_multiplier:g}"
        else:
            s = run_sampling if run_sampling is not None else self.sampling
            sampling = s.describe() if s is not None else "no sampling given"
            adjacency = (
                "add/remove one client (sensitivity C)"
                if self.adjacency == "add_remove"
                else "replace one client (sensitivity 2C)"
            )
            estimator = (
                f"fixed denominator: (sum of clipped updates + N(0, (z * {self.sensitivity / self.clip.clip_norm:g}C)^2)) "
                f"/ {self.denominator:g}, never / clients reported"
            )
        acc = self.accountant
        dropout = run_sampling.dropout if run_sampling is not None else 0.0
        return {
            "dp/sampling": sampling,
            "dp/adjacency": adjacency,
            "dp/estimator": estimator,
            "dp/accountant": f"{acc.describe()}, event {self.event.sampling} (z = {self.noise_multiplier:g}, q = {self.event.sample_rate:g})"
            if acc is not None
            else "none (no epsilon is reported)",
            "dp/dropouts": (
                "not used for amplification: every round is accounted at the sampling rate "
                f"(dropout {dropout:g}; valid while dropping out does not depend on client data)"
            ),
        }

    def summary(self, run_sampling: CohortSampling | None = None) -> str:
        """One paragraph for a run's summary: mechanism, adjacency, estimator, accountant,
        dropouts, and the epsilon so far."""
        st = self.statements(run_sampling)
        eps = (
            (
                f"epsilon = {self.accountant.epsilon():.4g} at delta = {self.accountant.delta:g} after "
                f"{self.accountant.steps} round(s)"
            )
            if self.accountant is not None
            else "no accountant"
        )
        skipped = (
            f"; rounds skipped before the release, accounted as releases: {self._unaccounted}"
            if self._unaccounted
            else ""
        )
        return (
            f"Client-level DP ({self.mode}): {st['dp/sampling']}; adjacency: {st['dp/adjacency']}; "
            f"estimator: {st['dp/estimator']}; accountant: {st['dp/accountant']}; dropouts: {st['dp/dropouts']}; "
            f"{eps}{skipped}."
        )

    # ---- hooks
    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        self._round = ctx.round
        if self._stop is not None:
            raise PrivacyBudgetExhausted(self._stop)
        if self.mode == "local":
            std = self.noise_multiplier * self.sensitivity
            return replace(result, update=add_gaussian_noise(result.update, std, ctx.generator))
        return result

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        self._round = ctx.round
        if self._stop is not None:
            raise PrivacyBudgetExhausted(self._stop)
        run_sampling = ctx.sampling
        if (
            self.mode == "central"
            and run_sampling is not None
            and self.sampling is not None
            and not run_sampling.same_scheme(self.sampling)
        ):
            raise ConfigError(
                f"the noise step accounts for {self.sampling.describe()}, but the round loop draws "
                f"{run_sampling.describe()}: build GaussianNoise with the run's sampling"
            )
        self._account_gap(ctx)
        ctx.notes.update(self.statements(run_sampling))
        out = list(results) if self.mode == "local" else [self._release(results, ctx)]
        self._account(ctx)
        return out

    def _release(self, results: Sequence[ClientResult], ctx: RoundContext) -> ClientResult:
        for r in results:
            if r.extras:
                raise ConfigError(
                    f"central DP does not cover strategy extras ({sorted(r.extras)}, e.g. SCAFFOLD's control "
                    "variates): use a strategy without extras with GaussianNoise"
                )
            if is_aggregate(r) and r.metrics.get("secagg/weighted", 0.0):
                raise ConfigError("central DP needs the unweighted sum; build SecureAggregation(weighted=False)")
        template = results[0].update if results else ctx.global_params
        if template is None:
            raise ConfigError(
                "a round with no client results needs the global params (ctx.global_params) to release noise"
            )
        std = self.update_multiplier * self.sensitivity
        mean = noisy_sum_mean(results, template, std, self.denominator, ctx.generator)
        ctx.notes["dp/noise_std"] = std / self.denominator
        ctx.expected_clients = self.denominator
        ctx.notes["dp/expected_clients"] = self.denominator
        metrics = summed_metrics(results)
        if not results:
            ctx.log.append(
                f"round {ctx.round}: no client reported; released the noise-only update (DP accounting needs a release every round)"
            )
        # one aggregate: any positive weight gives the same mean downstream
        weight = float(sum(r.weight for r in results)) or 1.0
        return ClientResult(AGGREGATE_ID, mean, weight, metrics)

    def _account_gap(self, ctx: RoundContext) -> None:
        """Rounds between the last release and this one never reached this step: a stage before
        it (secure aggregation below its threshold, validation) skipped them. They are
        accounted as releases (an upper bound if the skip did not depend on client data) and
        named in the log and the summary, never silently dropped."""
        missing = list(range(self._last_round + 1, ctx.round)) if ctx.round > self._last_round + 1 else []
        if missing and self.accountant is not None:
            for r in missing:
                self.accountant.step_event(self.event_at(r))
            ctx.log.append(
                f"rounds {missing} were skipped before the DP release; accounted as releases (epsilon covers them "
                "only if the skip did not depend on client data)"
            )
        self._unaccounted.extend(missing)
        self._last_round = max(self._last_round, ctx.round)

    def _account(self, ctx: RoundContext) -> None:
        acc = self.accountant
        if acc is None:
            return
        acc.step_event(self.event)
        ctx.notes["dp/epsilon"] = acc.epsilon()
        ctx.notes["dp/delta"] = acc.delta
        upcoming = self.event_at(ctx.round + 1)
        if acc.would_exceed_event(upcoming):
            self._stop = acc.budget_message_event(upcoming)
            ctx.stop = self._stop
            ctx.log.append(self._stop)

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        return new

    def state_dict(self) -> dict[str, Any]:
        """The accountant's events (JSON-serializable), the last round and the stop reason."""
        hist = self.accountant.history if self.accountant is not None else []
        return {"history": hist, "stop": self._stop, "last_round": self._last_round, "skipped": list(self._unaccounted)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.accountant is not None:
            self.accountant.history = list(state.get("history", []))
        self._stop = state.get("stop")
        self._last_round = int(state.get("last_round", 0))
        self._unaccounted = [int(r) for r in state.get("skipped", [])]
