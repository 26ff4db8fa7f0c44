"""Robust aggregation: median, trimmed mean, Krum / Multi-Krum, norm bounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from protection_helpers import result

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult
from interlearn.federated.protections.privacy import mean_result
from interlearn.federated.protections.robust import (
    Krum,
    Median,
    NormBound,
    TrimmedMean,
    coordinate_median,
    krum,
    krum_scores,
    norm_bounded_mean,
    trimmed_mean,
)
from interlearn.federated.strategies import get_aggregator, get_strategy


def _updates(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [{"a": torch.randn(3, 4, generator=g), "b": torch.randn(5, generator=g)} for _ in range(n)]


@pytest.mark.parametrize("n", [5, 6])
def test_median_matches_numpy(n):
    ups = _updates(n)
    med = coordinate_median(ups)
    for k in ("a", "b"):
        ref = np.median(np.stack([u[k].numpy() for u in ups]), axis=0)
        np.testing.assert_allclose(med[k].numpy(), ref, rtol=1e-6, atol=1e-6)


def test_trimmed_mean_matches_scipy_definition():
    ups = _updates(10)
    tm = trimmed_mean(ups, trim=0.2)
    stacked = np.sort(np.stack([u["a"].numpy() for u in ups]), axis=0)[2:8]
    np.testing.assert_allclose(tm["a"].numpy(), stacked.mean(axis=0), rtol=1e-6, atol=1e-6)
    assert torch.allclose(trimmed_mean(ups, trim=0.0)["b"], torch.stack([u["b"] for u in ups]).mean(0), atol=1e-6)
    with pytest.raises(ConfigError, match="trim"):
        trimmed_mean(ups, trim=0.5)


def _attacked(n_honest=7, n_bad=3):
    g = torch.Generator().manual_seed(1)
    true = torch.ones(20)
    honest = [{"w": true + 0.1 * torch.randn(20, generator=g)} for _ in range(n_honest)]
    bad = [{"w": -10.0 * true} for _ in range(n_bad)]  # colluding sign-flip/scaled attackers
    return honest, bad, true


@pytest.mark.parametrize(
    "agg",
    [
        coordinate_median,
        lambda u: trimmed_mean(u, trim=0.3),
        lambda u: krum(u, num_byzantine=3),
        lambda u: krum(u, num_byzantine=3, num_selected=4),
    ],
)
def test_robust_rules_resist_30_percent_attackers_where_mean_fails(agg):
    honest, bad, true = _attacked()
    mean = torch.stack([u["w"] for u in honest + bad]).mean(0)
    assert float((mean - true).norm()) > 10  # the plain mean is ruined
    out = agg(honest + bad)["w"]
    assert float((out - true).norm()) < 0.5 * float(true.norm())


def test_krum_selects_honest_updates_and_checks_n():
    honest, bad, _ = _attacked()
    scores = krum_scores(torch.stack([u["w"] for u in honest + bad]), 3)
    assert set(scores.argsort()[:7].tolist()) == set(range(7))
    with pytest.raises(ConfigError, match=r"needs n > 2f \+ 2 = 8 updates, got n=8"):
        krum(honest[:5] + bad, num_byzantine=3)


def test_norm_bound_clips_then_weighted_mean():
    ups = [{"w": torch.tensor([3.0, 4.0])}, {"w": torch.tensor([0.3, 0.4])}]
    out = norm_bounded_mean(ups, [1.0, 3.0], max_norm=1.0)
    assert torch.allclose(out["w"], (torch.tensor([0.6, 0.8]) + 3 * torch.tensor([0.3, 0.4])) / 4)


def test_aggregator_classes_plug_into_strategies_by_name():
    results = [result(i) for i in range(7)]
    for name, cls in [("median", Median), ("trimmed_mean", TrimmedMean), ("krum", Krum), ("norm_bound", NormBound)]:
        agg = get_aggregator(name)
        assert isinstance(agg, cls)
        delta = agg(results)
        assert delta.keys() == results[0].update.keys()
    strat = get_strategy("fedavg", aggregator="median")
    params = {k: torch.zeros_like(v) for k, v in results[0].update.items()}
    new, _ = strat.aggregate(params, results, strat.init(params))
    expect = coordinate_median([r.update for r in results])
    assert all(torch.allclose(new[k], expect[k]) for k in new)
    mk = get_aggregator("multi_krum", num_byzantine=0.3, num_selected=3)
    assert mk.num_selected == 3 and mk(results).keys() == results[0].update.keys()
    assert get_aggregator("multi_krum").num_selected is None  # n - f by default
    with pytest.raises(ConfigError, match="known aggregators"):
        get_aggregator("medain")


def test_robust_aggregators_refuse_a_collapsed_cohort():
    agg = mean_result([result(i) for i in range(3)], uniform=True)
    with pytest.raises(ConfigError, match="individual client updates"):
        Median()([agg])


def test_krum_refuses_instead_of_silently_lowering_f_or_m():
    """Asking for 3 of 4 used to give f=0; num_selected=10 of 4 used to become a plain mean
    (an outlier passing straight through). Both now raise, naming n and f."""
    res = [ClientResult(i, {"w": torch.full((2,), float(i))}, 1.0) for i in range(3)]
    res.append(ClientResult(3, {"w": torch.full((2,), 1e6)}, 1.0))
    with pytest.raises(ConfigError, match=r"f=3 .*got n=4"):
        Krum(num_byzantine=3)(res)
    with pytest.raises(ConfigError, match=r"num_selected=10 .*n=4"):
        Krum(num_selected=10)(res)
    with pytest.raises(ConfigError, match="num_selected"):
        Krum(num_selected=0)
    out = Krum()(res)  # the default f is the most n=4 allows (0): still the honest median point
    assert float(out["w"].abs().max()) < 10


@pytest.mark.parametrize("n", [6, 9])
def test_float64_median_and_trimmed_mean_are_exact(n):
    """Even-n median and trimmed mean in float64 equal numpy's float64 results bit for bit
    (the old code computed them in float32 and labelled the result float64)."""
    g = torch.Generator().manual_seed(n)
    ups = [{"w": 1.0 + 1e-9 * torch.randn(50, generator=g, dtype=torch.float64)} for _ in range(n)]
    stacked = np.stack([u["w"].numpy() for u in ups])
    med = coordinate_median(ups)["w"]
    assert med.dtype == torch.float64
    np.testing.assert_allclose(med.numpy(), np.median(stacked, axis=0), rtol=0, atol=2e-16)
    tm = trimmed_mean(ups, trim=0.2)["w"]
    k = int(0.2 * n)
    np.testing.assert_allclose(tm.numpy(), np.sort(stacked, axis=0)[k : n - k].mean(axis=0), rtol=0, atol=2e-16)


@pytest.mark.slow
def test_median_survives_sign_flip_attackers_in_the_round_loop():
    from protection_helpers import toy_problem

    from interlearn.federated import LocalSGD, SimulationConfig, simulate
    from interlearn.federated.protections.attacks import AttackStep, choose_attackers

    def run(aggregator, fraction):
        model, pop, test = toy_problem()
        steps = [AttackStep("sign_flip", choose_attackers(len(pop), fraction, seed=0), scale=4.0)]
        cfg = SimulationConfig(rounds=6, fraction=1.0, seed=0, progress=False)
        return simulate(
            model,
            pop,
            LocalSGD(epochs=1, batch_size=10, lr=0.2),
            get_strategy("fedavg", aggregator=aggregator),
            cfg,
            steps=steps,
            test=test,
        ).final_accuracy

    clean = run("mean", 0.0)
    assert run("mean", 0.3) < clean - 0.2  # the attack works on FedAvg
    assert run("median", 0.3) > clean - 0.05  # and the median shrugs it off
