"""DP steps inside the real round loop (simulate) on both in-process engines."""

from __future__ import annotations

import itertools

import pytest
import torch
from protection_helpers import toy_problem

from interlearn.errors import ConfigError
from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate
from interlearn.federated.protections.privacy import (
    ClipUpdates,
    CohortSampling,
    GaussianNoise,
    PrivacyAccountant,
    dp_fedavg_steps,
)


def _cfg(**kw):
    return SimulationConfig(**{"rounds": 6, "clients_per_round": 4, "seed": 0, "progress": False, **kw})


def _run(steps, cfg, engine="sequential", **kw):
    model, pop, test = toy_problem()
    return simulate(
        model,
        pop,
        LocalSGD(epochs=1, batch_size=10, lr=0.2),
        get_strategy("fedavg"),
        cfg,
        engine=engine,
        steps=steps,
        test=test,
        **kw,
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sequential", "vectorized"])
def test_dp_fedavg_reports_epsilon_each_round_and_stops_at_target(engine):
    steps = dp_fedavg_steps(clip_norm=0.5, noise_multiplier=1.0, population=12, clients_per_round=4, target_epsilon=6.0)
    res = _run(steps, _cfg(rounds=50), engine)
    eps = [h["dp/epsilon"] for h in res.history]
    assert len(eps) == len(res.history) < 50  # stopped early
    assert all(b > a for a, b in itertools.pairwise(eps)) and eps[-1] <= 6.0
    assert res.stopped is not None and "target_epsilon = 6" in res.stopped
    assert res.history[-1]["dp/delta"] == 1e-5
    assert res.final_accuracy is not None and res.final_accuracy > 0.6  # learns despite noise


def _reference_epsilon(kind, event, rounds, delta):
    """The library's own epsilon for ``rounds`` repetitions of the event that ran."""
    if kind == "rdp":
        from opacus.accountants import RDPAccountant

        acc = RDPAccountant()
        for _ in range(rounds):
            acc.step(noise_multiplier=event.noise_multiplier, sample_rate=event.sample_rate)
        return acc.get_epsilon(delta=delta)
    import dp_accounting

    gauss = dp_accounting.GaussianDpEvent(event.noise_multiplier)
    if event.sampling == "poisson":
        ev, rel = (
            dp_accounting.PoissonSampledDpEvent(event.sample_rate, gauss),
            dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
        )
    else:
        ev, rel = (
            dp_accounting.SampledWithoutReplacementDpEvent(12, 4, gauss),
            dp_accounting.NeighboringRelation.REPLACE_ONE,
        )
    acc = (dp_accounting.rdp.RdpAccountant if kind == "dp_rdp" else dp_accounting.pld.PLDAccountant)(
        neighboring_relation=rel
    )
    for _ in range(rounds):
        acc.compose(ev)
    return acc.get_epsilon(delta)


@pytest.mark.parametrize(
    "sampling,kind", [("poisson", "rdp"), ("poisson", "dp_rdp"), ("poisson", "dp_pld"), ("fixed", "dp_rdp")]
)
def test_epsilon_equals_the_librarys_own_computation_for_the_rounds_that_ran(sampling, kind):
    """The run's epsilon is the accounting library's number for the event sequence of the
    mechanism that ran: one sampled Gaussian per round, at the run's sampling and rate."""
    steps = dp_fedavg_steps(
        clip_norm=0.5,
        noise_multiplier=1.1,
        population=12,
        clients_per_round=4,
        sampling=sampling,
        accountant=kind,
        delta=1e-4,
    )
    res = _run(steps, _cfg(rounds=5))
    noise = steps[1]
    assert noise.event.sampling == sampling and noise.event.sample_rate == pytest.approx(4 / 12)
    assert noise.accountant.steps == 5 == len(res.history)
    assert all("skipped" not in h for h in res.history)
    ref = _reference_epsilon(kind, noise.event, 5, 1e-4)
    assert res.history[-1]["dp/epsilon"] == pytest.approx(ref, rel=1e-9)
    rec = res.history[-1]
    assert rec["dp/sampling"].startswith("Poisson" if sampling == "poisson" else "fixed-size")
    assert rec["dp/adjacency"].startswith("add/remove" if sampling == "poisson" else "replace one")
    assert rec["dp/estimator"].startswith("fixed denominator") and "/ 4" in rec["dp/estimator"]
    assert kind.removeprefix("dp_") in rec["dp/accountant"] and "dp/dropouts" in rec


def test_poisson_rounds_vary_in_size_and_empty_rounds_release_noise_instead_of_skipping():
    steps = dp_fedavg_steps(clip_norm=0.5, noise_multiplier=1.0, population=12, clients_per_round=1)
    res = _run(steps, _cfg(rounds=16, clients_per_round=1))
    sizes = [h["cohort"] for h in res.history]
    assert 0 in sizes and len(set(sizes)) >= 3  # q = 1/12: some rounds pick nobody, some one, some more
    assert all("skipped" not in h for h in res.history)
    assert steps[1].accountant.steps == 16  # every round, the empty ones too, was a release
    empty = [h for h, n in zip(res.history, sizes) if n == 0]
    assert all(any("noise-only" in line for line in h["log"]) for h in empty)


def test_poisson_sampling_is_poisson():
    from interlearn.federated.server.sampling import CohortSampling, round_generator

    s = CohortSampling.build("poisson", 1000, clients_per_round=100)
    sizes = torch.tensor([float(len(s.draw(round_generator(0, r, 0)))) for r in range(400)])
    assert float(sizes.mean()) == pytest.approx(100, abs=3 * (90 / 400) ** 0.5 + 1)
    assert float(sizes.var()) == pytest.approx(90, rel=0.3)  # N q (1 - q)


def test_configurations_without_a_matching_accountant_or_mechanism_are_refused():
    poisson = dp_fedavg_steps(clip_norm=0.5, noise_multiplier=1.0, population=12, clients_per_round=4)
    with pytest.raises(ConfigError, match=r"accounts for Poisson.*draws fixed-size.*sampling='poisson'"):
        _run(poisson, _cfg(sampling="fixed"))
    with pytest.raises(ConfigError, match="set min_survivors=1"):
        _run(poisson, _cfg(min_survivors=2))
    other_rate = dp_fedavg_steps(clip_norm=0.5, noise_multiplier=1.0, population=12, clients_per_round=3)
    with pytest.raises(ConfigError, match="q = 0.25.*q = 0.333"):
        _run(other_rate, _cfg())


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "scaffold"])
def test_protection_steps_compose_with_every_strategy(strategy):
    """clip -> validate -> compress runs with every strategy; central DP and secure aggregation
    with every strategy that has no extras (SCAFFOLD's control variates are refused, loudly)."""
    from interlearn.federated import ScaffoldClient
    from interlearn.federated.protections.compression import CompressUpdates
    from interlearn.federated.protections.secagg import SecureAggregation
    from interlearn.federated.protections.validation import ValidateUpdates

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
    dp = [
        clip,
        GaussianNoise(
            clip,
            0.5,
            sampling=CohortSampling.build("poisson", len(pop), clients_per_round=6),
            accountant=PrivacyAccountant(),
        ),
    ]
    for steps in (dp, [SecureAggregation()]):
        if strategy == "scaffold":
            with pytest.raises(ConfigError, match="extras"):
                run(steps)
        else:
            assert run(steps).final_accuracy > 0.3
