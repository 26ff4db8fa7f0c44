"""Cohort sampling and simulated dropouts.

Two ways to draw a round's cohort, both from a generator seeded by ``(seed, round)`` so that a
resumed run samples exactly the cohorts of an uninterrupted one:

* ``"fixed"``: ``m`` clients uniformly without replacement (McMahan et al. 2017: a fraction
  ``C`` of the clients per round). The matching privacy analysis is sampling without
  replacement under *replace-one* adjacency (Wang, Balle & Kasiviswanathan 2019).
* ``"poisson"``: every client joins independently with probability ``q`` (so the cohort size
  varies around ``q * N``), what DP-FedAvg (McMahan et al. 2018, "Learning Differentially
  Private Recurrent Language Models") and Opacus' accountants analyse under *add/remove*
  adjacency. A Poisson round may pick nobody.

:class:`CohortSampling` names the scheme, the population and the rate; the round loop draws with
it and hands it to the update steps (``ctx.sampling``) so that a privacy step can check
that it accounts for the sampling that actually runs. Stragglers/dropouts (Bonawitz et al.
2019, "Towards Federated Learning at Scale: System Design", SysML) are simulated by removing
each sampled client with probability ``dropout``; the round aggregates over the survivors, or
is skipped (:class:`RoundSkipped`, with the reason logged) when fewer than ``min_survivors``
remain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interlearn.errors import ConfigError, RoundSkipped, closest
from interlearn.federated.api import UpdateStep
from interlearn.types import ClientId

__all__ = [
    "mix_seed",
    "SAMPLINGS",
    "CohortSampling",
    "cohort_size",
    "sample_cohort",
    "poisson_cohort",
    "resolve_sampling",
    "releases_every_round",
    "apply_dropout",
    "check_survivors",
    "round_generator",
    "client_generator",
]

SAMPLINGS = ("fixed", "poisson")

# above this many clients a fixed-size cohort is drawn with Floyd's algorithm (O(cohort));
# up to it, with a permutation of the population (the draw every earlier run made)
_FLOYD_ABOVE = 100_000

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant (splitmix64) to decorrelate derived seeds


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, round, purpose, ...): a multiply-xorshift hash, so nearby
    inputs give unrelated streams."""
    h = 0
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * _MIX & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def round_generator(seed: int, round_: int, purpose: int = 0) -> torch.Generator:
    """A generator determined by ``(seed, round, purpose)`` only (resume-safe)."""
    return torch.Generator().manual_seed(mix_seed(seed, round_, purpose, 1))


def client_generator(seed: int, round_: int, cid: ClientId) -> torch.Generator:
    """The generator a client's local training uses in a round (engine-independent)."""
    return torch.Generator().manual_seed(mix_seed(seed, round_, cid, 2))


def step_generator(seed: int, round_: int, cid: ClientId) -> torch.Generator:
    """The generator a client's update-step hooks use in a round (local noise, stochastic
    rounding): per client, so the draws do not depend on where or in which order clients run."""
    return torch.Generator().manual_seed(mix_seed(seed, round_, cid, 5))


def cohort_size(num_clients: int, fraction: float | None = None, count: int | None = None) -> int:
    """Clients per round from a ``fraction`` of the population or an absolute ``count``.

    Raises:
        ConfigError: both or neither given, or out of range.
    """
    if (fraction is None) == (count is None):
        raise ConfigError(
            f"give exactly one of clients_per_round (count) or fraction; got count={count}, fraction={fraction}"
        )
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
    if num_clients > _FLOYD_ABOVE:
        # Floyd's algorithm (Bentley & Floyd 1987, "A sample of brilliance"): ``size`` draws, so
        # a round's cost grows with the cohort, not with a population of millions (a permutation
        # of 10^6 ids costs ~50 ms a round)
        # step j draws t uniform in 0..j: floor(u * (j + 1)) of a float64 uniform (bias < 2^-30)
        first = num_clients - size
        u = torch.rand(size, dtype=torch.float64, generator=generator)
        draws = (u * torch.arange(first + 1, num_clients + 1, dtype=torch.float64)).long().tolist()
        chosen: set[int] = set()
        for j, t in zip(range(first, num_clients), draws):
            chosen.add(j if t in chosen else t)
        return sorted(chosen)
    pick = torch.randperm(num_clients, generator=generator)[:size]
    return sorted(int(c) for c in pick)


def poisson_cohort(num_clients: int, rate: float, generator: torch.Generator) -> list[ClientId]:
    """Each of ``num_clients`` clients joins independently with probability ``rate``; sorted
    ids (possibly none).

    Raises:
        ConfigError: ``rate`` outside (0, 1].
    """
    if not 0.0 < rate <= 1.0:
        raise ConfigError(f"Poisson sampling rate {rate!r}: must be in (0, 1]")
    if rate == 1.0:
        return list(range(num_clients))
    picked = torch.rand(num_clients, generator=generator, dtype=torch.float64) < rate
    return [int(c) for c in picked.nonzero().reshape(-1)]


@dataclass(frozen=True)
class CohortSampling:
    """How every round's cohort is drawn: what a privacy accountant has to know.

    Attributes:
        kind: ``"fixed"`` (``size`` clients without replacement) or ``"poisson"`` (each client
            independently with probability ``rate``).
        population: ``N``, the number of clients.
        rate: ``q``: the Poisson probability, or ``size / N`` for fixed cohorts (derived).
        size: the fixed cohort size ``m`` (``None`` for Poisson).
        dropout: probability that a sampled client does not report (simulated stragglers).

    Raises:
        ConfigError: an unknown kind or out-of-range values.

    Example:
        >>> CohortSampling.build("poisson", population=1000, clients_per_round=100).rate
        0.1
    """

    kind: str
    population: int
    rate: float
    size: int | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SAMPLINGS:
            raise ConfigError(
                f"sampling={self.kind!r}: choose one of {list(SAMPLINGS)} (closest: {closest(str(self.kind), SAMPLINGS)})"
            )
        if isinstance(self.population, bool) or not isinstance(self.population, int) or self.population < 1:
            raise ConfigError(f"population={self.population!r}: must be the number of clients (>= 1)")
        if not 0.0 < self.rate <= 1.0:
            raise ConfigError(f"sampling rate {self.rate!r}: must be in (0, 1] (clients_per_round / population)")
        if self.kind == "fixed":
            if self.size is None or not 1 <= self.size <= self.population:
                raise ConfigError(f"fixed cohorts need 1 <= size <= population={self.population}, got size={self.size}")
            if not math.isclose(self.rate, self.size / self.population, rel_tol=1e-12):
                raise ConfigError(
                    f"fixed cohorts have rate = size / population = {self.size / self.population}, got {self.rate}"
                )
        elif self.size is not None:
            raise ConfigError(f"a Poisson cohort has no fixed size (got size={self.size}); give the rate")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout}: must be in [0, 1)")

    @classmethod
    def build(
        cls,
        kind: str,
        population: int,
        *,
        fraction: float | None = None,
        clients_per_round: int | None = None,
        rate: float | None = None,
        dropout: float = 0.0,
    ) -> CohortSampling:
        """From a population and exactly one of ``fraction``, ``clients_per_round`` (for Poisson:
        the expected cohort, ``q = clients_per_round / N``) or ``rate``.

        Raises:
            ConfigError: not exactly one of them, or out of range.
        """
        given = [v is not None for v in (fraction, clients_per_round, rate)]
        if sum(given) != 1:
            raise ConfigError(
                f"give exactly one of fraction, clients_per_round or rate; got fraction={fraction}, "
                f"clients_per_round={clients_per_round}, rate={rate}"
            )
        if kind == "fixed":
            if rate is not None:
                size = int(round(rate * population))
                if not math.isclose(size, rate * population, rel_tol=1e-9):
                    raise ConfigError(
                        f"rate={rate} times population={population} is not a whole cohort; give clients_per_round"
                    )
            else:
                size = cohort_size(population, fraction, clients_per_round)
            return cls("fixed", population, size / population, size, dropout)
        if clients_per_round is not None:
            if not 1 <= clients_per_round <= population:
                raise ConfigError(
                    f"clients_per_round={clients_per_round}: must be between 1 and the population size {population}"
                )
            rate = clients_per_round / population
        q = fraction if fraction is not None else rate
        if q is None:
            raise ConfigError("Poisson sampling needs a rate: give clients_per_round, rate or fraction")
        return cls(kind, population, float(q), None, dropout)

    @property
    def expected_size(self) -> float:
        """Clients sampled per round on average (``m``, or ``q * N``)."""
        return float(self.size) if self.size is not None else self.rate * self.population

    def draw(self, generator: torch.Generator) -> list[ClientId]:
        """This round's cohort (sorted ids; a Poisson cohort may be empty)."""
        if self.kind == "fixed" and self.size is not None:  # __post_init__ requires the size of a fixed cohort
            return sample_cohort(self.population, self.size, generator)
        return poisson_cohort(self.population, self.rate, generator)

    def describe(self) -> str:
        """One line for run summaries."""
        if self.kind == "fixed":
            text = (
                f"fixed-size cohorts: {self.size} of {self.population} clients without replacement (q = {self.rate:g})"
            )
        else:
            text = f"Poisson sampling: each of {self.population} clients joins with probability q = {self.rate:g} (expected {self.expected_size:g})"
        return text + (f"; each sampled client drops with probability {self.dropout:g}" if self.dropout else "")

    def same_scheme(self, other: CohortSampling) -> bool:
        """Same kind, population and rate (dropout aside)."""
        return (
            self.kind == other.kind
            and self.population == other.population
            and math.isclose(self.rate, other.rate, rel_tol=1e-9)
        )


def resolve_sampling(
    kind: str | None,
    population: int,
    fraction: float | None,
    clients_per_round: int | None,
    dropout: float,
    steps: Sequence[UpdateStep] = (),
) -> CohortSampling:
    """The round loop's sampling: ``kind`` if given, else what the update steps account for
    (a step's declared ``sampling``, e.g. central DP noise), else ``"fixed"``.

    Raises:
        ConfigError: a step accounts for another scheme, population or rate than the run's
            (the message names both and the fix), or two steps disagree.
    """
    wanted = [s.sampling for s in steps if s.sampling is not None]
    if kind is None:
        kind = wanted[0].kind if wanted else "fixed"
    sampling = CohortSampling.build(
        kind, population, fraction=fraction, clients_per_round=clients_per_round, dropout=dropout
    )
    for w in wanted:
        if not w.same_scheme(sampling):
            raise ConfigError(
                f"an update step accounts for {w.describe()}, but this run draws {sampling.describe()}: "
                f"build the step with the run's sampling (CohortSampling.build({kind!r}, population={population}, ...)) "
                f"or set SimulationConfig(sampling={w.kind!r}) with the matching clients_per_round / fraction"
            )
    return sampling


def releases_every_round(steps: Sequence[UpdateStep], min_survivors: int) -> bool:
    """Whether some step (central DP noise) must release an update in every round, even one in
    which nobody was sampled or too few clients reported.

    The accountant composes one subsampled Gaussian mechanism per round; skipping a round
    because of *who* took part (an empty Poisson cohort, fewer than ``min_survivors``) would
    publish that fact outside the mechanism, so such a round releases the noise-only update
    instead (the round loop passes ``release=True`` to :func:`check_survivors` and runs the
    server steps on the results it has, possibly none).

    Raises:
        ConfigError: ``min_survivors > 1`` with such a step: a round must not depend on how many
            clients reported (a threshold on the count changes the sum's sensitivity from one
            clip norm to ``min_survivors`` of them); set ``min_survivors=1``.
    """
    release = any(s.releases_every_round for s in steps)
    if release and min_survivors > 1:
        names = [s.name for s in steps if s.releases_every_round]
        raise ConfigError(
            f"min_survivors={min_survivors} with {names}: under differential privacy every round releases an "
            "update (noise only when nobody reported), or the accounted epsilon is wrong; set min_survivors=1"
        )
    return release


def apply_dropout(
    cohort: list[ClientId], probability: float, generator: torch.Generator
) -> tuple[list[ClientId], list[ClientId]]:
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


def check_survivors(survivors: int, minimum: int, round_: int, *, release: bool = False) -> None:
    """Raise :class:`RoundSkipped` when fewer than ``minimum`` clients reported, unless the round
    must ``release`` an update regardless (see :func:`releases_every_round`)."""
    if survivors < minimum and not release:
        raise RoundSkipped(
            f"round {round_}: only {survivors} client(s) reported, fewer than min_survivors={minimum}; round skipped"
        )
