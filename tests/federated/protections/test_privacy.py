"""Client-level DP: clipping (fixed, adaptive), Gaussian noise (central, local), accounting."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from protection_helpers import ctx, result, round_trip, run_steps, template

from interlearn.errors import ConfigError
from interlearn.federated.protections.privacy import (
    AGGREGATE_ID,
    ClipUpdates,
    CohortSampling,
    GaussianNoise,
    PrivacyAccountant,
    PrivacyBudgetExhausted,
    adaptive_clip_norm,
    clip_update,
    dp_fedavg_steps,
    global_norm,
    update_noise_multiplier,
)


def test_clip_bounds_norm_and_keeps_small_updates():
    big = {"a": torch.full((10,), 3.0), "b": torch.full((5,), 4.0)}
    clipped, norm = clip_update(big, 1.0)
    assert norm == pytest.approx(math.sqrt(10 * 9 + 5 * 16))
    assert global_norm(clipped) == pytest.approx(1.0, rel=1e-6)
    # direction kept
    assert torch.allclose(clipped["a"] / clipped["b"][0], big["a"] / big["b"][0])
    small = {"a": torch.full((4,), 0.1)}
    same, _ = clip_update(small, 1.0)
    assert torch.equal(same["a"], small["a"])


def test_clip_step_clips_every_client():
    clip = ClipUpdates(0.5)
    c = ctx()
    out = run_steps([clip], [result(i, scale=3.0) for i in range(4)], c)
    assert all(global_norm(r.update) <= 0.5 + 1e-6 for r in out)
    assert c.notes["clip/norm"] == 0.5


def test_adaptive_clip_geometric_step():
    assert adaptive_clip_norm(1.0, 0.5, 0.5, 0.2) == pytest.approx(1.0)
    assert adaptive_clip_norm(1.0, 1.0, 0.5, 0.2) == pytest.approx(math.exp(-0.1))  # all unclipped: shrink
    assert adaptive_clip_norm(1.0, 0.0, 0.5, 0.2) == pytest.approx(math.exp(0.1))  # all clipped: grow


def test_adaptive_clipping_tracks_the_median_norm():
    """Andrew et al. 2021: C converges to the target quantile of the update norms."""
    clip = ClipUpdates(0.05, adaptive=True, target_quantile=0.5, learning_rate=0.2)
    g = torch.Generator().manual_seed(3)
    for rnd in range(150):
        c = ctx(rnd, seed=rnd)
        # norms of these updates are ~ |N(0,1)| * 2 * sqrt(15)... use explicit norms instead
        scales = torch.rand(20, generator=g) * 2.0 + 1.0  # update norms uniform in [1, 3]
        results = [result(i, weight=1.0) for i in range(20)]
        results = [
            type(r)(r.client_id, {k: v / global_norm(r.update) * float(s) for k, v in r.update.items()}, 1.0)
            for r, s in zip(results, scales)
        ]
        round_trip([clip], template(), results, c)
    assert clip.clip_norm == pytest.approx(2.0, abs=0.25)  # median of U[1, 3]


POISSON = CohortSampling.build("poisson", population=100, clients_per_round=8)
FIXED = CohortSampling.build("fixed", population=100, clients_per_round=8)


@pytest.mark.parametrize("sampling,factor", [(POISSON, 1.0), (FIXED, 2.0)])
def test_central_noise_is_calibrated_to_the_adjacency_and_divides_by_a_fixed_denominator(sampling, factor):
    """Poisson (add/remove): std z*C on the sum; fixed cohorts (replace-one): z*2C. Both divide
    by the expected cohort (8), never by the 5 clients that reported (McMahan et al. 2018)."""
    clip = ClipUpdates(1.0)
    noise = GaussianNoise(clip, noise_multiplier=2.0, sampling=sampling)
    big = [type(r)(r.client_id, {"w": torch.zeros(20000)}, 5.0) for r in (result(i) for i in range(5))]
    c = ctx()
    out = run_steps([clip, noise], big, c)
    assert len(out) == 1 and out[0].client_id == AGGREGATE_ID
    assert out[0].metrics["num_clients"] == 5
    expected = 2.0 * factor * 1.0 / 8
    assert c.notes["dp/noise_std"] == pytest.approx(expected)
    assert float(out[0].update["w"].std()) == pytest.approx(expected, rel=0.03)
    assert float(out[0].update["w"].mean()) == pytest.approx(0.0, abs=4 * expected / math.sqrt(20000))
    assert c.notes["dp/adjacency"].startswith("add/remove" if sampling.kind == "poisson" else "replace one")


def test_central_noise_mean_is_the_sum_of_clipped_over_the_expected_cohort():
    clip = ClipUpdates(100.0)  # no clipping happens
    noise = GaussianNoise(clip, noise_multiplier=1e-9, sampling=POISSON)
    res = [result(i, weight=float(i + 1)) for i in range(5)]
    out = run_steps([clip, noise], res, ctx())
    expect = sum(r.update["w"] for r in res) / 8  # unweighted, fixed denominator q*N = 8
    assert torch.allclose(out[0].update["w"], expect, atol=1e-5)


def test_an_empty_round_releases_noise_only():
    clip = ClipUpdates(1.0)
    noise = GaussianNoise(clip, noise_multiplier=1.0, sampling=POISSON, accountant=PrivacyAccountant())
    c = ctx(1)
    c.global_params = {"w": torch.zeros(20000)}
    out = run_steps([clip, noise], [], c)
    assert len(out) == 1 and out[0].metrics["num_clients"] == 0 and out[0].weight > 0
    assert float(out[0].update["w"].std()) == pytest.approx(1.0 / 8, rel=0.03)
    assert noise.accountant.steps == 1 and c.notes["dp/epsilon"] > 0
    assert any("noise-only" in line for line in c.log)


def test_local_noise_noises_each_client_with_replace_one_sensitivity():
    clip = ClipUpdates(1.0)
    noise = GaussianNoise(clip, noise_multiplier=1.5, mode="local")
    res = [type(r)(r.client_id, {"w": torch.zeros(20000)}, 1.0) for r in (result(i) for i in range(3))]
    out = run_steps([clip, noise], res, ctx())
    assert [r.client_id for r in out] == [0, 1, 2]
    for r in out:
        assert float(r.update["w"].std()) == pytest.approx(1.5 * 2.0, rel=0.03)  # z * 2C
    assert not torch.allclose(out[0].update["w"], out[1].update["w"])


def test_rounds_skipped_before_the_release_are_accounted_and_named():
    clip = ClipUpdates(1.0)
    noise = GaussianNoise(clip, 1.0, sampling=POISSON, accountant=PrivacyAccountant())
    run_steps([clip, noise], [result(0)], ctx(1))
    c = ctx(4)
    run_steps([clip, noise], [result(0)], c)
    assert noise.accountant.steps == 4
    assert any("rounds [2, 3] were skipped" in line for line in c.log)
    assert "[2, 3]" in noise.summary()


def test_accountant_matches_an_independent_library():
    """Opacus' RDP epsilon agrees with Google's dp-accounting for the same mechanism."""
    dp_accounting = pytest.importorskip("dp_accounting")
    acc = PrivacyAccountant(delta=1e-5, kind="rdp")
    for _ in range(30):
        acc.step(noise_multiplier=1.1, sample_rate=0.05)
    ref = dp_accounting.rdp.RdpAccountant()
    ref.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.GaussianDpEvent(1.1)), 30
        )
    )
    assert acc.steps == 30
    assert acc.epsilon() == pytest.approx(ref.get_epsilon(1e-5), rel=0.05)


@pytest.mark.parametrize("kind", ["rdp", "prv", "gdp"])
def test_accountant_epsilon_grows_with_rounds_and_shrinks_with_noise(kind):
    a, b = PrivacyAccountant(1e-5, kind), PrivacyAccountant(1e-5, kind)
    assert a.epsilon() == 0.0
    eps = []
    for _ in range(3):
        a.step(noise_multiplier=1.0, sample_rate=0.1)
        b.step(noise_multiplier=3.0, sample_rate=0.1)
        eps.append(a.epsilon())
    assert eps[0] < eps[1] < eps[2]
    assert b.epsilon() < a.epsilon()
    assert a.epsilon_after(noise_multiplier=1.0, sample_rate=0.1) > eps[-1]
    assert a.steps == 3  # epsilon_after leaves the state alone


def test_accountant_rejects_bad_config():
    with pytest.raises(ConfigError, match="did you mean"):
        PrivacyAccountant(kind="rpd")
    with pytest.raises(ConfigError, match="delta"):
        PrivacyAccountant(delta=0.0)
    with pytest.raises(ConfigError, match="sample_rate"):
        PrivacyAccountant().step(noise_multiplier=1.0, sample_rate=1.5)


@pytest.mark.slow
def test_epsilon_reported_every_round_and_target_stops_training():
    steps = dp_fedavg_steps(clip_norm=1.0, noise_multiplier=1.0, population=20, clients_per_round=4, target_epsilon=5.0)
    params = template()
    eps, stopped_at = [], None
    for rnd in range(1, 100):
        c = ctx(rnd, seed=rnd)
        params = round_trip(steps, params, [result(i) for i in range(4)], c)
        eps.append(c.notes["dp/epsilon"])
        assert c.notes["dp/delta"] == 1e-5
        if c.stop is not None:
            stopped_at = rnd
            break
    assert stopped_at is not None and stopped_at > 1
    assert all(e2 > e1 for e1, e2 in itertools.pairwise(eps))
    assert eps[-1] <= 5.0 and len(eps) == 6  # eps after 6 rounds 4.82, after 7 5.08
    msg = c.stop
    assert "target_epsilon = 5" in msg and "privacy budget reached" in msg
    # one more round would exceed the target, so a loop that ignores the note is stopped
    with pytest.raises(PrivacyBudgetExhausted, match="privacy budget"):
        run_steps(steps, [result(0)], ctx(stopped_at + 1))


def test_target_smaller_than_one_round_is_a_config_error():
    with pytest.raises(ConfigError, match="single round"):
        dp_fedavg_steps(clip_norm=1.0, noise_multiplier=0.3, population=10, clients_per_round=10, target_epsilon=0.01)


def test_adaptive_clipping_budget_split():
    # Andrew et al. Theorem 1
    z, sb = 1.0, 5.0
    assert update_noise_multiplier(z, sb) == pytest.approx((1 - 1 / 100) ** -0.5)
    assert update_noise_multiplier(z, 0.0) == z
    with pytest.raises(ConfigError, match="count_noise_std"):
        update_noise_multiplier(1.0, 0.4)
    with pytest.raises(ConfigError, match="count_noise_std"):
        GaussianNoise(ClipUpdates(1.0, adaptive=True), 1.0, sampling=POISSON)
    clip = ClipUpdates(1.0, adaptive=True, count_noise_std=5.0)
    noise = GaussianNoise(clip, 1.0, sampling=POISSON)
    assert noise.update_multiplier > 1.0
    with pytest.raises(ConfigError, match="add/remove.*Poisson"):
        GaussianNoise(clip, 1.0, sampling=FIXED)


def test_noise_step_config_errors():
    clip = ClipUpdates(1.0)
    with pytest.raises(ConfigError, match="mode"):
        GaussianNoise(clip, 1.0, mode="global")
    with pytest.raises(ConfigError, match="sampling=CohortSampling"):
        GaussianNoise(clip, 1.0, accountant=PrivacyAccountant())
    with pytest.raises(ConfigError, match="denominator.*sampling=CohortSampling"):
        GaussianNoise(clip, 1.0, sample_rate=0.1)
    with pytest.raises(ConfigError, match="noise_multiplier"):
        GaussianNoise(clip, 0.0, sampling=POISSON)
    with pytest.raises(ConfigError, match="population=N"):
        dp_fedavg_steps(clip_norm=1.0, noise_multiplier=1.0, sample_rate=0.1)
    # fixed-size cohorts have no Opacus accountant: refused, naming the fix
    with pytest.raises(ConfigError, match="kind='dp_rdp'.*sampling='poisson'"):
        GaussianNoise(clip, 1.0, sampling=FIXED, accountant=PrivacyAccountant(kind="rdp"))
    with pytest.raises(ConfigError, match="kind='dp_rdp'"):
        dp_fedavg_steps(
            clip_norm=1.0,
            noise_multiplier=1.0,
            population=100,
            clients_per_round=8,
            sampling="fixed",
            accountant="dp_pld",
        )
    with pytest.raises(ConfigError, match="max_norm"):
        ClipUpdates(-1.0)
    with pytest.raises(ConfigError, match="target_quantile"):
        ClipUpdates(1.0, adaptive=True, target_quantile=1.5)


def test_accountant_history_round_trips_and_reads_the_earlier_checkpoint_format():
    a = PrivacyAccountant(delta=1e-5)
    for _ in range(4):
        a.step(noise_multiplier=1.2, sample_rate=0.1)
    b = PrivacyAccountant(delta=1e-5)
    b.history = a.history
    assert b.epsilon() == a.epsilon() and b.steps == 4
    old = PrivacyAccountant(delta=1e-5)
    old.history = [[1.2, 0.1, 4]]  # Opacus' (z, q, steps), as checkpoints before the event format
    assert old.epsilon() == a.epsilon()
    with pytest.raises(ConfigError, match="expected"):
        old.history = [[1.2, 0.1]]
