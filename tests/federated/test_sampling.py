import pytest
import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.sampling import apply_dropout, check_survivors, client_generator, cohort_size, round_generator, sample_cohort


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
