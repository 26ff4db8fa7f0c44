"""DP steps inside the real round loop (simulate) on both in-process engines."""

from __future__ import annotations

import pytest
from protection_helpers import toy_problem

from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate
from interlearn.federated.privacy import ClipUpdates, GaussianNoise, PrivacyAccountant, dp_fedavg_steps


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "scaffold"])
def test_protection_steps_compose_with_every_strategy(strategy):
    """clip -> validate -> compress runs with every strategy; central DP and secure aggregation
    with every strategy that has no extras (SCAFFOLD's control variates are refused, loudly)."""
    from interlearn.errors import ConfigError
    from interlearn.federated import ScaffoldClient
    from interlearn.federated.compression import CompressUpdates
    from interlearn.federated.secagg import SecureAggregation
    from interlearn.federated.validation import ValidateUpdates

    model, pop, test = toy_problem()
    ref = {k: v.detach().clone() for k, v in model.named_parameters()}
    client = ScaffoldClient(lr=0.2) if strategy == "scaffold" else LocalSGD(lr=0.2)
    cfg = SimulationConfig(rounds=2, clients_per_round=6, seed=0, progress=False)
    kw = {"lr": 0.05} if strategy in ("fedadam", "fedyogi", "fedadagrad") else {}
    if strategy == "scaffold":
        kw = {"num_clients": len(pop)}

    def run(steps):
        return simulate(model, pop, client, get_strategy(strategy, **kw), cfg, steps=steps, test=test)

    res = run([ClipUpdates(5.0), ValidateUpdates(reference=ref), CompressUpdates("q8")])
    assert all("skipped" not in h for h in res.history) and res.final_accuracy > 0.3
    clip = ClipUpdates(5.0)
    dp = [clip, GaussianNoise(clip, 0.5, sample_rate=0.5, accountant=PrivacyAccountant())]
    for steps in (dp, [SecureAggregation()]):
        if strategy == "scaffold":
            with pytest.raises(ConfigError, match="extras"):
                run(steps)
        else:
            assert run(steps).final_accuracy > 0.3
