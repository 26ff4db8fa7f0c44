import pytest
import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.server.sampling import (
    apply_dropout,
    check_survivors,
    client_generator,
    cohort_size,
    round_generator,
    sample_cohort,
)


def test_cohort_size():
    assert cohort_size(100, fraction=0.1) == 10
    assert cohort_size(100, count=7) == 7
    assert cohort_size(5, fraction=0.01) == 1
    with pytest.raises(ConfigError):
        cohort_size(100)
    with pytest.raises(ConfigError):
        cohort_size(100, count=101)


def test_sampling_is_seeded_and_distinct():
    a = sample_cohort(1000, 50, round_generator(0, 3))
    assert a == sample_cohort(1000, 50, round_generator(0, 3))
    assert a != sample_cohort(1000, 50, round_generator(0, 4))
    assert len(set(a)) == 50 and a == sorted(a)
    assert sample_cohort(5, 5, round_generator(0, 1)) == [0, 1, 2, 3, 4]


def test_dropout_rate_and_survivors():
    cohort = list(range(2000))
    surv, drop = apply_dropout(cohort, 0.3, round_generator(1, 1, 2))
    assert sorted(surv + drop) == cohort
    assert 0.25 < len(drop) / 2000 < 0.35
    assert apply_dropout(cohort, 0.0, round_generator(1, 1))[1] == []
    with pytest.raises(ConfigError):
        apply_dropout(cohort, 1.0, round_generator(1, 1))
    with pytest.raises(RoundSkipped, match="min_survivors=3"):
        check_survivors(2, 3, 7)
    check_survivors(3, 3, 7)


def test_client_generators_differ_per_client_and_round():
    draws = {(r, c): torch.rand(1, generator=client_generator(0, r, c)).item() for r in range(3) for c in range(3)}
    assert len(set(draws.values())) == 9
    assert torch.rand(1, generator=client_generator(0, 1, 1)).item() == draws[(1, 1)]


def test_cohort_sampling_schemes_and_their_checks():
    from interlearn.federated.server.sampling import CohortSampling, poisson_cohort

    f = CohortSampling.build("fixed", 100, fraction=0.1)
    assert (f.size, f.rate, f.expected_size) == (10, 0.1, 10.0)
    assert f.draw(round_generator(0, 1)) == sample_cohort(100, 10, round_generator(0, 1))  # the same cohorts as before
    p = CohortSampling.build("poisson", 100, clients_per_round=10)
    assert (p.size, p.rate, p.expected_size) == (None, 0.1, 10.0)
    assert p.draw(round_generator(0, 1)) == p.draw(round_generator(0, 1))  # seeded
    assert poisson_cohort(5, 1.0, round_generator(0, 1)) == [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="closest: 'poisson'"):
        CohortSampling.build("poison", 100, rate=0.1)
    with pytest.raises(ConfigError, match="exactly one"):
        CohortSampling.build("poisson", 100, rate=0.1, clients_per_round=10)
    with pytest.raises(ConfigError, match="between 1 and the population"):
        CohortSampling.build("poisson", 100, clients_per_round=101)


def test_resolve_sampling_follows_the_privacy_steps_and_refuses_a_mismatch():
    from types import SimpleNamespace

    from interlearn.federated.server.sampling import CohortSampling, releases_every_round, resolve_sampling

    assert resolve_sampling(None, 50, None, 5, 0.0).kind == "fixed"
    dp = SimpleNamespace(
        name="noise", sampling=CohortSampling.build("poisson", 50, clients_per_round=5), releases_every_round=True
    )
    got = resolve_sampling(None, 50, None, 5, 0.2, [dp])
    assert got.kind == "poisson" and got.dropout == 0.2
    with pytest.raises(ConfigError, match="SimulationConfig\\(sampling='poisson'\\)"):
        resolve_sampling("fixed", 50, None, 5, 0.0, [dp])
    assert releases_every_round([dp], 1) is True and releases_every_round([], 3) is False
    with pytest.raises(ConfigError, match="min_survivors=1"):
        releases_every_round([dp], 2)
    check_survivors(0, 1, 4, release=True)  # a DP round releases even with nobody


def test_large_populations_draw_cohorts_with_floyd_uniformly(monkeypatch):
    """Above ``_FLOYD_ABOVE`` clients the draw costs O(cohort); it must stay uniform."""
    import interlearn.federated.server.sampling as sampling

    g = torch.Generator().manual_seed(0)
    big = sampling.sample_cohort(2_000_000, 1_000, g)
    assert len(big) == len(set(big)) == 1_000 and big == sorted(big) and big[0] >= 0 and big[-1] < 2_000_000
    monkeypatch.setattr(sampling, "_FLOYD_ABOVE", 0)
    counts = torch.zeros(10)
    pairs: dict[tuple[int, ...], int] = {}
    for _ in range(6_000):
        c = sampling.sample_cohort(10, 3, g)
        counts[c] += 1
        pairs[tuple(c)] = pairs.get(tuple(c), 0) + 1
    assert float((counts - 1_800).abs().max()) < 150  # each id in 3/10 of the draws
    assert len(pairs) == 120 and max(pairs.values()) < 90  # every 3-subset, ~50 draws each
