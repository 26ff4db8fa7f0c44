"""DP steps inside the real round loop (simulate) on both in-process engines."""

from __future__ import annotations

import pytest
import torch
from protection_helpers import toy_problem

from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate
from interlearn.federated.privacy import ClipUpdates, GaussianNoise, PrivacyAccountant, dp_fedavg_steps


@pytest.mark.parametrize("engine", ["sequential", "vectorized"])
def test_dp_fedavg_reports_epsilon_each_round_and_stops_at_target(engine):
    model, pop, test = toy_problem()
    steps = dp_fedavg_steps(clip_norm=0.5, noise_multiplier=1.0, sample_rate=4 / 12, target_epsilon=6.0)
    res = simulate(model, pop, LocalSGD(epochs=1, batch_size=10, lr=0.2), get_strategy("fedavg"),
                   SimulationConfig(rounds=50, clients_per_round=4, seed=0, progress=False),
                   engine=engine, steps=steps, test=test)
    eps = [h["dp/epsilon"] for h in res.history]
    assert len(eps) == len(res.history) < 50  # stopped early
    assert all(b > a for a, b in zip(eps, eps[1:])) and eps[-1] <= 6.0
    assert res.stopped is not None and "target_epsilon = 6" in res.stopped
    assert res.history[-1]["dp/delta"] == 1e-5
    assert res.final_accuracy is not None and res.final_accuracy > 0.6  # learns despite noise


def test_central_dp_with_adaptive_clipping_and_fedadam():
    model, pop, test = toy_problem()
    clip = ClipUpdates(0.05, adaptive=True, count_noise_std=0.5, learning_rate=0.3)
    noise = GaussianNoise(clip, 0.8, sample_rate=6 / 12, accountant=PrivacyAccountant(delta=1e-4))
    res = simulate(model, pop, LocalSGD(epochs=1, batch_size=10, lr=0.2), get_strategy("fedadam", lr=0.05),
                   SimulationConfig(rounds=8, clients_per_round=6, seed=1, progress=False),
                   steps=[clip, noise], test=test)
    norms = [h["clip/norm"] for h in res.history]
    assert norms[-1] > norms[0]  # the initial norm was far below the update norms: it grows
    assert all(h["dp/epsilon"] > 0 for h in res.history)
    assert noise.state_dict()["history"][0][2] == 8  # 8 noised rounds in the accountant
