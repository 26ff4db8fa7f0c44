"""An empirical privacy audit beside the accountant's epsilon: canary clients, one run.

Andrew, Kairouz, Oh, Oprea, McMahan & Suriyakumar 2024, "One-shot Empirical Privacy
Estimation for Federated Learning" (ICLR). ``2k`` random directions ``u_j`` (unit vectors in
parameter space) are drawn; ``k`` of them become *canary clients*: in every round each canary
joins with the real clients' sampling rate ``q`` and uploads ``C * u_j`` (an update of exactly
the clip norm, so clipping leaves it as it is). :class:`CanaryAudit` adds them server-side,
before the central noise step, so they go through the same sum, noise and fixed denominator as
real clients. The other ``k`` directions are never inserted.

The statistic of each canary is a cosine with the released models: ``"final"`` uses the final
model delta ``theta_T - theta_0`` (Andrew et al.'s final-model observer); ``"iterates"`` (an
observer of every round's release, as the accountant assumes) takes each round's delta
``theta_t - theta_{t-1}`` and scores canary ``j`` by its largest per-round cosine above its own
average over the rounds, ``max_t c_jt - mean_t c_jt``: consecutive deltas point in similar
directions, so a canary's cosines share an offset that hides its rounds in a sum, while the
rounds it took part in stand out as spikes.
Unseen canaries give the null distribution, inserted ones a shifted one. As in Andrew et al.
both are modelled as Gaussians (here with a pooled variance, a Gaussian mechanism with
separation ``mu``) and the *empirical epsilon* is that mechanism's epsilon at the accountant's
delta: the privacy loss this observer demonstrates. Its confidence interval is a percentile
bootstrap over the canaries (seeded).

What it is, and is not: an *estimate* of the epsilon these observers can demonstrate; the
accountant's epsilon bounds every observer of every round's release, so the estimate should lie
below it up to its interval (the benchmark checks this). It is not a worst-case lower bound
(Andrew et al. call it an estimate; it relies on near-Gaussian statistics), and a 25k-parameter
model interferes more with its canaries than the paper's million-parameter ones. It audits
add/remove presence, so it needs Poisson sampling. Audit one uninterrupted run (the step keeps
``theta_0`` and the scores in memory; it has no checkpoint state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult, RoundContext, UpdateStep
from interlearn.federated.protections.privacy.cohort import is_aggregate
from interlearn.federated.protections.privacy.noise import GaussianNoise
from interlearn.federated.server.sampling import mix_seed
from interlearn.types import Params

__all__ = [
    "CANARY_ID",
    "STATISTICS",
    "AuditResult",
    "CanaryAudit",
    "gaussian_delta",
    "gaussian_epsilon",
    "separation",
    "estimate_epsilon",
]

STATISTICS = ("iterates", "final")

CANARY_ID = -1000
"""Canary ``j`` has client id ``CANARY_ID - j`` (never a real client's id)."""


def _log_phi(x: float) -> float:
    """log of the standard normal CDF, stable far in the lower tail."""
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    # asymptotic expansion: Phi(x) ~ phi(x) / |x| * (1 - 1/x^2 + 3/x^4)
    return -x * x / 2 - math.log(-x * math.sqrt(2 * math.pi)) + math.log1p(-1 / x**2 + 3 / x**4)


def gaussian_delta(eps: float, mu: float) -> float:
    """delta(eps) of a Gaussian mechanism with sensitivity-to-noise ratio ``mu`` (mu-GDP):
    ``Phi(-eps/mu + mu/2) - e^eps * Phi(-eps/mu - mu/2)`` (Balle & Wang 2018, Theorem 8)."""
    if mu <= 0:
        return 0.0
    return math.exp(_log_phi(-eps / mu + mu / 2)) - math.exp(eps + _log_phi(-eps / mu - mu / 2))


def gaussian_epsilon(mu: float, delta: float) -> float:
    """Smallest epsilon >= 0 with ``gaussian_delta(epsilon, mu) <= delta`` (bisection).

    Hand-written because the audit's bootstrap evaluates it hundreds of times: dp-accounting's
    PLD takes about half a second per Gaussian; the tests check this against it."""
    if mu <= 0 or gaussian_delta(0.0, mu) <= delta:
        return 0.0
    hi = 1.0
    while gaussian_delta(hi, mu) > delta:
        hi *= 2
        if hi > 1e5:
            return math.inf
    lo = 0.0
    while hi - lo > 1e-9 * max(hi, 1.0):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if gaussian_delta(mid, mu) <= delta else (mid, hi)
    return hi


@dataclass(frozen=True)
class AuditResult:
    """The audit's numbers for one statistic.

    Attributes:
        statistic: ``"iterates"`` or ``"final"``.
        empirical_epsilon: the estimate at ``delta`` (see the module docstring).
        low, high: its ``confidence`` bootstrap interval.
        confidence: e.g. 0.95.
        delta: the accountant's delta.
        mu: the separation of inserted from unseen canaries (pooled standard deviations).
        num_canaries: inserted canaries (as many unseen ones).
        dimension: parameters the canaries live in.
        participations: canary uploads over the run.
    """

    statistic: str
    empirical_epsilon: float
    low: float
    high: float
    confidence: float
    delta: float
    mu: float
    num_canaries: int
    dimension: int
    participations: int

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def separation(inserted: np.ndarray, unseen: np.ndarray) -> float:
    """``mu``: the difference of the two means over the pooled standard deviation."""
    pooled = math.sqrt(
        (inserted.var(ddof=1) * (len(inserted) - 1) + unseen.var(ddof=1) * (len(unseen) - 1))
        / (len(inserted) + len(unseen) - 2)
    )
    return float((inserted.mean() - unseen.mean()) / pooled) if pooled > 0 else math.inf


def estimate_epsilon(
    inserted: np.ndarray,
    unseen: np.ndarray,
    delta: float,
    *,
    confidence: float = 0.95,
    bootstrap: int = 400,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(estimate, low, high)``: the epsilon at ``delta`` of the Gaussian mechanism whose
    separation ``mu`` the two samples show (:func:`separation`), and its percentile-bootstrap
    interval (each sample resampled with replacement, seeded).

    Raises:
        ConfigError: fewer than 2 values in a sample.
    """
    if len(inserted) < 2 or len(unseen) < 2:
        raise ConfigError("the audit needs at least 2 inserted and 2 unseen canaries")

    def eps(a: np.ndarray, b: np.ndarray) -> float:
        return gaussian_epsilon(separation(a, b), delta)

    point = eps(inserted, unseen)
    rng = np.random.default_rng(seed)
    draws = np.array(
        [eps(rng.choice(inserted, len(inserted)), rng.choice(unseen, len(unseen))) for _ in range(bootstrap)]
    )
    tail = (1 - confidence) / 2
    return point, float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


class CanaryAudit(UpdateStep):
    """Update step inserting canary clients server-side and scoring the models they shaped.

    Place it right AFTER :class:`~interlearn.federated.protections.privacy.GaussianNoise` in the step list
    (server hooks run in reverse, so the canaries join the results before the noised sum):
    ``[clip, noise, CanaryAudit(noise)]``. Call :meth:`result` after the run.

    Args:
        noise: the central noise step of the run (its clip norm, sampling and accountant).
        num_canaries: ``k`` inserted canaries (and ``k`` unseen ones).
        seed: seeds the directions and the canaries' participation.
        confidence: of the bootstrap interval.
        bootstrap: bootstrap resamples.

    Raises:
        ConfigError: local noise, a sampling other than Poisson, ``num_canaries < 2``, or the
            step placed where the cohort is already collapsed.

    Example:
        >>> from interlearn.federated.protections.privacy import dp_fedavg_steps
        >>> clip, noise = dp_fedavg_steps(clip_norm=1.0, noise_multiplier=1.0, population=100, clients_per_round=10)
        >>> steps = [clip, noise, CanaryAudit(noise, num_canaries=50)]
    """

    name = "audit"

    def __init__(
        self,
        noise: GaussianNoise,
        *,
        num_canaries: int = 200,
        seed: int = 0,
        confidence: float = 0.95,
        bootstrap: int = 400,
    ) -> None:
        if not isinstance(noise, GaussianNoise) or noise.mode != "central":
            raise ConfigError("the canary audit measures central DP: pass the run's GaussianNoise(mode='central') step")
        if noise.sampling is None or noise.sampling.kind != "poisson":
            raise ConfigError(
                "the canary audit tests add/remove presence: run it with Poisson sampling (CohortSampling.build('poisson', ...))"
            )
        self._rate = noise.sampling.rate  # canaries join each round as a client would
        if num_canaries < 2:
            raise ConfigError(f"num_canaries={num_canaries}: must be >= 2")
        if not 0 < confidence < 1:
            raise ConfigError(f"confidence={confidence}: must lie in (0, 1)")
        self.noise = noise
        self.k = int(num_canaries)
        self.seed = int(seed)
        self.confidence = float(confidence)
        self.bootstrap = int(bootstrap)
        self._dirs: torch.Tensor | None = None  # (2k, d) unit rows; the first k are inserted
        self._keys: list[str] = []
        self._theta0: torch.Tensor | None = None
        self._final: torch.Tensor | None = None  # cosines with theta_T - theta_0, (2k,)
        self._rounds: list[torch.Tensor] = []  # per-round cosines, each (2k,)
        self.participations = 0

    def _directions(self, template: Params) -> torch.Tensor:
        if self._dirs is None:
            self._keys = [k for k, v in template.items() if v.is_floating_point()]
            d = sum(template[k].numel() for k in self._keys)
            g = torch.Generator().manual_seed(mix_seed(self.seed, 0, 11))
            u = torch.randn(2 * self.k, d, generator=g, dtype=torch.float32)
            self._dirs = u / u.norm(dim=1, keepdim=True)
        return self._dirs

    def _flat(self, params: Params) -> torch.Tensor:
        return torch.cat([params[k].detach().reshape(-1).to(torch.float64) for k in self._keys])

    def _update(self, j: int, template: Params) -> Params:
        vec = self._directions(template)[j].to(torch.float64) * self.noise.clip.clip_norm
        out: Params = {}
        i = 0
        for k, v in template.items():
            if v.is_floating_point():
                out[k] = vec[i : i + v.numel()].reshape(v.shape).to(v.dtype)
                i += v.numel()
            else:
                out[k] = torch.zeros_like(v)
        return out

    def _cosines(self, delta: torch.Tensor) -> torch.Tensor:
        norm = float(delta.norm())
        if norm <= 0 or self._dirs is None:
            return torch.zeros(2 * self.k, dtype=torch.float64)
        return (self._dirs @ delta.to(torch.float32)).to(torch.float64) / norm

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        return result

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        if any(is_aggregate(r) for r in results):
            raise ConfigError("CanaryAudit must come after GaussianNoise in the step list (its server hook runs first)")
        template = results[0].update if results else ctx.global_params
        if template is None:
            return list(results)
        self._directions(template)
        g = torch.Generator().manual_seed(mix_seed(self.seed, ctx.round, 13))
        joins = (torch.rand(self.k, generator=g, dtype=torch.float64) < self._rate).nonzero().reshape(-1)
        canaries = [
            ClientResult(CANARY_ID - int(j), self._update(int(j), template), 1.0, {"audit/canary": 1.0}) for j in joins
        ]
        self.participations += len(canaries)
        ctx.notes["audit/canaries"] = len(canaries)
        return list(results) + canaries

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        if self._dirs is None:
            return new
        if self._theta0 is None:
            self._theta0 = self._flat(old)
        now = self._flat(new)
        self._rounds.append(self._cosines(now - self._flat(old)))
        self._final = self._cosines(now - self._theta0)
        return new

    def scores(self, statistic: str = "iterates") -> tuple[np.ndarray, np.ndarray]:
        """``(inserted, unseen)`` canary statistics so far.

        Raises:
            ConfigError: unknown statistic, or no round has run yet.
        """
        if statistic not in STATISTICS:
            raise ConfigError(f"statistic={statistic!r}: choose one of {list(STATISTICS)}")
        if self._final is None:
            raise ConfigError(
                "the audit has no model to score yet: run simulate(..., steps=[clip, noise, audit]) first"
            )
        if statistic == "iterates":
            per_round = torch.stack(self._rounds)  # (rounds, 2k)
            v = (per_round.max(dim=0).values - per_round.mean(dim=0)).numpy()
        else:
            v = self._final.numpy()
        return v[: self.k], v[self.k :]

    def result(self, statistic: str = "iterates") -> AuditResult:
        """The empirical epsilon of the run so far for ``statistic`` (see the module docstring).

        Raises:
            ConfigError: unknown statistic, or no round has run yet.
        """
        inserted, unseen = self.scores(statistic)
        delta = self.noise.accountant.delta if self.noise.accountant is not None else 1e-5
        est, lo, hi = estimate_epsilon(
            inserted, unseen, delta, confidence=self.confidence, bootstrap=self.bootstrap, seed=self.seed
        )
        dims = int(self._dirs.shape[1]) if self._dirs is not None else 0  # scores() raised if no round ran
        return AuditResult(
            statistic,
            est,
            lo,
            hi,
            self.confidence,
            delta,
            separation(inserted, unseen),
            self.k,
            dims,
            self.participations,
        )
