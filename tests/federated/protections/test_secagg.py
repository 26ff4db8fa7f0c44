"""Secure aggregation (Bonawitz et al. 2017): Shamir, ring encoding, the protocol, the step."""

from __future__ import annotations

import math
import os

import pytest
import torch
from protection_helpers import ctx, result, run_steps

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.protections.privacy import AGGREGATE_ID
from interlearn.federated.protections.secagg import (
    Ring,
    SecureAggregation,
    combine_shares,
    expand_mask,
    secure_sum,
    split_secret,
)
from interlearn.federated.strategies.aggregate import weighted_mean

pytest.importorskip("cryptography")


def test_shamir_any_t_shares_recover_fewer_fail():
    secret = os.urandom(32)
    shares = split_secret(secret, 3, [1, 2, 3, 4, 5])
    assert combine_shares(shares[:3], 3) == secret
    assert combine_shares([shares[4], shares[1], shares[2]], 3) == secret
    with pytest.raises(RoundSkipped, match="3 are needed"):
        combine_shares(shares[:2], 3)
    # t-1 shares are consistent with ANY secret: a forged third share moves the result
    forged = shares[:2] + [(shares[2][0], (shares[2][1] + 1))]
    assert combine_shares(forged, 3) != secret


def test_shamir_bad_input():
    with pytest.raises(ConfigError, match="32 bytes"):
        split_secret(b"short", 2, [1, 2])
    with pytest.raises(ConfigError, match="threshold"):
        split_secret(os.urandom(32), 4, [1, 2, 3])


def test_ring_round_trip_and_wraparound_sum():
    ring = Ring(bits=32, frac_bits=16)
    x = torch.tensor([0.0, 1.5, -2.25, 1e-5, -3000.0])
    back = ring.decode(ring.encode(x))
    assert torch.allclose(back, x.double(), atol=2**-17)
    a, b = ring.encode(torch.tensor([-1.0])), ring.encode(torch.tensor([0.25]))
    assert float(ring.decode(ring.add(a, b))) == -0.75
    with pytest.raises(ConfigError, match="too large"):
        ring.encode(torch.tensor([40000.0]))
    with pytest.raises(ConfigError, match="NaN"):
        ring.encode(torch.tensor([float("nan")]))
    with pytest.raises(ConfigError, match="bits"):
        Ring(bits=64)


def test_mask_expansion_is_deterministic_and_uniform():
    ring = Ring(bits=16, frac_bits=8)
    seed = os.urandom(32)
    m = expand_mask(seed, 50000, ring)
    assert torch.equal(m, expand_mask(seed, 50000, ring))
    assert int(m.min()) >= 0 and int(m.max()) < 2**16
    # chi-square on 16 equal bins of the ring: uniform
    counts = torch.bincount(m >> 12, minlength=16).double()
    chi2 = float(((counts - 50000 / 16) ** 2 / (50000 / 16)).sum())
    assert chi2 < 37.7  # 99.9% quantile of chi2 with 15 dof


def _inputs(n: int, d: int, ring: Ring, scale: float = 1.0):
    g = torch.Generator().manual_seed(0)
    xs = {i: torch.randn(d, generator=g, dtype=torch.float64) * scale for i in range(n)}
    return xs, {i: ring.encode(x, n) for i, x in xs.items()}


def test_unmasked_sum_equals_plain_sum_within_quantization():
    ring = Ring()
    xs, enc = _inputs(8, 500, ring)
    total, tr = secure_sum(enc, ring, threshold=5)
    err = (ring.decode(total) - sum(xs.values())).abs().max()
    assert float(err) <= 8 * 2.0 ** -(ring.frac_bits + 1) + 1e-12
    assert tr.survivors == list(range(8)) and tr.dropped == []
    assert all(b > 500 * ring.bytes_per_element for b in tr.bytes_up.values())


def test_what_the_server_receives_is_unrelated_to_the_update():
    """A masked upload is uniform in the ring whatever the input: zeros and a huge constant give
    statistically indistinguishable uploads, uncorrelated with the input."""
    ring = Ring(bits=32, frac_bits=16)
    d = 20000
    zeros = ring.encode(torch.zeros(d), 4)
    const = ring.encode(torch.full((d,), 1000.0), 4)
    ramp = torch.linspace(-1000, 1000, d, dtype=torch.float64)
    inputs = {0: zeros, 1: const, 2: ring.encode(ramp, 4), 3: zeros.clone()}
    _, tr = secure_sum(inputs, ring, threshold=3)
    # The masks come from cryptographic randomness (X25519 keys, os.urandom), which cannot be
    # seeded, so each bound is set where a truly uniform upload fails it with probability about
    # 1e-8 or less (the p = 0.001 chi-square bound, 37.7, failed once in a CI run). An unmasked
    # upload misses every one of them by orders of magnitude.
    for cid in range(3):
        y = tr.masked[cid].double() / 2**32  # in [0, 1)
        assert abs(float(y.mean()) - 0.5) < 0.0125  # 6.1 standard errors
        assert abs(float(y.var()) - 1 / 12) < 0.003  # 5.7 standard errors
        counts = torch.bincount(tr.masked[cid] >> 28, minlength=16).double()
        chi2 = float(((counts - d / 16) ** 2 / (d / 16)).sum())
        assert chi2 < 73.6  # chi-square, 15 degrees of freedom, p = 1e-9
    # correlation between the client's input and what the server got
    y2 = tr.masked[2].double()
    corr = torch.corrcoef(torch.stack([y2, ramp]))[0, 1]
    assert abs(float(corr)) < 0.045  # 6.4 standard errors of a correlation over 20,000 pairs
    # the same input, masked twice, looks nothing alike
    assert float((tr.masked[0] == tr.masked[3]).double().mean()) < 0.01


def test_dropouts_up_to_threshold_are_recovered():
    ring = Ring()
    xs, enc = _inputs(10, 300, ring)
    drop = [1, 4, 7, 9]  # 6 survivors, threshold 6
    total, tr = secure_sum(enc, ring, threshold=6, drop_before_masking=drop)
    plain = sum(x for i, x in xs.items() if i not in drop)
    assert float((ring.decode(total) - plain).abs().max()) < 1e-5
    assert tr.dropped == drop
    # a survivor that goes quiet during unmasking is fine while t others answer
    total2, _ = secure_sum(enc, ring, threshold=5, drop_before_masking=[0, 2], drop_before_unmasking=[3])
    plain2 = sum(x for i, x in xs.items() if i not in (0, 2))
    assert float((ring.decode(total2) - plain2).abs().max()) < 1e-5


def test_below_threshold_fails_loudly_and_returns_nothing():
    ring = Ring()
    _, enc = _inputs(10, 50, ring)
    with pytest.raises(RoundSkipped, match="masked input collection.*threshold is 6.*nothing was aggregated"):
        secure_sum(enc, ring, threshold=6, drop_before_masking=[0, 1, 2, 3, 4])
    with pytest.raises(RoundSkipped, match="unmasking"):
        secure_sum(enc, ring, threshold=6, drop_before_masking=[0, 1, 2], drop_before_unmasking=[3, 4])


def test_step_gives_the_strategy_the_weighted_mean_only():
    res = [result(i, weight=float(3 + i)) for i in range(6)]
    step = SecureAggregation()
    c = ctx()
    out = run_steps([step], res, c)
    assert len(out) == 1 and out[0].client_id == AGGREGATE_ID
    expect = weighted_mean([r.update for r in res], [r.weight for r in res])
    for k in expect:
        assert torch.allclose(out[0].update[k], expect[k], atol=1e-5)
    assert out[0].weight == sum(r.weight for r in res)
    assert out[0].metrics["num_clients"] == 6 and out[0].metrics["loss"] == 6.0
    assert c.notes["secagg/bytes_up"] > 0 and c.notes["secagg/survivors"] == 6


def test_step_unweighted_with_simulated_dropouts_and_failure():
    res = [result(i, weight=float(1 + i)) for i in range(10)]
    step = SecureAggregation(weighted=False, dropout=0.3, threshold=0.5)
    c = ctx(seed=1)
    out = run_steps([step], res, c)
    dropped = c.notes["secagg/dropped"]
    assert dropped and c.notes["secagg/survivors"] == 10 - len(dropped)
    kept = [r for r in res if r.client_id not in dropped]
    expect = weighted_mean([r.update for r in kept], [1.0] * len(kept))
    assert torch.allclose(out[0].update["w"], expect["w"], atol=1e-5)
    assert any("dropped" in line for line in c.log)
    # a dropout rate that leaves too few: the round fails loudly and the step holds nothing
    harsh = SecureAggregation(dropout=0.9, threshold=8)
    with pytest.raises(RoundSkipped, match="nothing was aggregated"):
        run_steps([harsh], res, ctx(seed=2))
    assert harsh._devices == {}


def test_step_refuses_extras_and_bad_config():
    r = result(0)
    r = type(r)(0, r.update, 1.0, {}, {"c": torch.zeros(2)})
    with pytest.raises(ConfigError, match="extras"):
        SecureAggregation().client(r, ctx())
    with pytest.raises(ConfigError, match="threshold"):
        SecureAggregation(threshold=1)
    with pytest.raises(ConfigError, match="dropout"):
        SecureAggregation(dropout=1.0)
    assert SecureAggregation().threshold_for(10) == 6
    assert SecureAggregation(threshold=0.7).threshold_for(10) == math.ceil(7.0)


def test_composes_with_central_dp_clip_noise_secagg():
    from interlearn.federated.protections.privacy import ClipUpdates, CohortSampling, GaussianNoise

    clip = ClipUpdates(1.0)
    # a fixed cohort of 5 of 20: the noised sum is divided by 5 (replace-one, fixed denominator)
    noise = GaussianNoise(clip, noise_multiplier=1e-9, sampling=CohortSampling.build("fixed", 20, clients_per_round=5))
    res = [result(i, weight=float(1 + i)) for i in range(5)]
    out = run_steps([clip, noise, SecureAggregation(weighted=False)], res, ctx())
    assert len(out) == 1 and out[0].metrics["num_clients"] == 5
    clipped = [clip.client(r, ctx()).update for r in res]
    expect = weighted_mean(clipped, [1.0] * 5)
    assert torch.allclose(out[0].update["w"], expect["w"], atol=1e-5)
    with pytest.raises(ConfigError, match="weighted=False"):
        run_steps([clip, noise, SecureAggregation()], res, ctx())
