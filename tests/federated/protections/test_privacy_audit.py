"""The canary audit (Andrew et al. 2024 style): an empirical epsilon beside the accountant's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.protections.privacy import ClipUpdates, CohortSampling, GaussianNoise, dp_fedavg_steps
from interlearn.federated.protections.privacy.audit import (
    CanaryAudit,
    estimate_epsilon,
    gaussian_delta,
    gaussian_epsilon,
)


@pytest.mark.parametrize("mu", [0.3, 1.0, 2.5])
def test_gaussian_epsilon_agrees_with_dp_accounting(mu):
    dp_accounting = pytest.importorskip("dp_accounting")
    from dp_accounting.pld import privacy_loss_distribution as pld

    ref = pld.from_gaussian_mechanism(
        standard_deviation=1 / mu, value_discretization_interval=1e-4
    ).get_epsilon_for_delta(1e-5)
    assert gaussian_epsilon(mu, 1e-5) == pytest.approx(ref, rel=1e-3, abs=1e-3)
    assert gaussian_delta(gaussian_epsilon(mu, 1e-5), mu) <= 1e-5
    assert gaussian_epsilon(0.0, 1e-5) == 0.0 and gaussian_epsilon(-1.0, 1e-5) == 0.0
    assert dp_accounting is not None


def test_estimate_has_an_interval_and_sees_a_shift():
    rng = np.random.default_rng(0)
    null_a, null_b = rng.normal(0, 1, 300), rng.normal(0, 1, 300)
    est, lo, hi = estimate_epsilon(null_a, null_b, 1e-5, seed=1)
    assert lo == 0.0 and lo <= est <= hi < 1.5
    shifted = rng.normal(3, 1, 300)
    est, lo, hi = estimate_epsilon(shifted, null_b, 1e-5, seed=1)
    assert lo <= est <= hi and lo > gaussian_epsilon(2.5, 1e-5)


def _problem():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40 * 30, 50, generator=g), torch.randint(0, 10, (40 * 30,), generator=g)
    return Population(x, y, [list(range(30 * i, 30 * (i + 1))) for i in range(40)])


def _audit(z: float):
    pop = _problem()
    steps = dp_fedavg_steps(clip_norm=0.5, noise_multiplier=z, population=40, clients_per_round=8, delta=1e-5)
    audit = CanaryAudit(steps[1], num_canaries=100, bootstrap=200)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(50, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))  # 3,914 parameters
    res = simulate(
        model,
        pop,
        LocalSGD(epochs=1, batch_size=10, lr=0.1),
        get_strategy("fedavg"),
        SimulationConfig(rounds=20, clients_per_round=8, seed=0, progress=False, client_eval=False),
        steps=[*steps, audit],
    )
    return res, audit


@pytest.mark.slow
def test_no_noise_gives_a_large_empirical_epsilon_and_strong_noise_a_small_one():
    res, audit = _audit(1e-3)  # (practically) no noise: the canaries stand out
    loud = audit.result("iterates")
    assert audit.participations > 0 and res.history[0]["audit/canaries"] >= 0
    assert loud.empirical_epsilon > 10 and loud.low > 5
    res, audit = _audit(30.0)  # strong noise: they drown
    quiet = audit.result("iterates")
    eps = res.history[-1]["dp/epsilon"]
    assert quiet.empirical_epsilon < 1.0 and quiet.low <= eps  # within its interval of the bound
    for stat in ("iterates", "final"):
        r = audit.result(stat)
        assert r.low <= eps and r.confidence == 0.95 and r.num_canaries == 100 and r.dimension == 3914


def test_audit_refuses_setups_it_cannot_measure():
    clip = ClipUpdates(1.0)
    with pytest.raises(ConfigError, match="Poisson"):
        CanaryAudit(GaussianNoise(clip, 1.0, sampling=CohortSampling.build("fixed", 40, clients_per_round=8)))
    with pytest.raises(ConfigError, match="central"):
        CanaryAudit(GaussianNoise(clip, 1.0, mode="local"))
    steps = dp_fedavg_steps(clip_norm=0.5, noise_multiplier=1.0, population=40, clients_per_round=8)
    audit = CanaryAudit(steps[1])
    with pytest.raises(ConfigError, match="no model to score"):
        audit.result()
    with pytest.raises(ConfigError, match="after GaussianNoise"):
        simulate(
            torch.nn.Linear(50, 10),
            _problem(),
            LocalSGD(lr=0.1),
            get_strategy("fedavg"),
            SimulationConfig(rounds=1, clients_per_round=8, seed=0, progress=False),
            steps=[steps[0], audit, steps[1]],
        )
    assert math.isfinite(gaussian_epsilon(1.0, 1e-5))
