"""SecAgg+ (Bell et al. 2020): masking and sharing with O(log n) neighbours of a random graph."""

from __future__ import annotations

import pytest
import torch
from protection_helpers import ctx, result, run_steps

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.protections.secagg import (
    Ring,
    SecureAggregation,
    complete_graph,
    default_degree,
    harary_graph,
    secure_sum,
)
from interlearn.federated.strategies.aggregate import weighted_mean

pytest.importorskip("cryptography")


def _inputs(n: int, d: int, ring: Ring):
    g = torch.Generator().manual_seed(0)
    xs = {i: torch.randn(d, generator=g, dtype=torch.float64) for i in range(n)}
    return xs, {i: ring.encode(x, n) for i, x in xs.items()}


def test_harary_graph_is_regular_symmetric_random_and_seeded():
    ids = list(range(40))
    g1 = harary_graph(ids, 8, torch.Generator().manual_seed(1))
    assert all(len(g1[u]) == 8 and u not in g1[u] for u in ids)
    assert all(u in g1[v] for u in ids for v in g1[u])
    assert g1 == harary_graph(ids, 8, torch.Generator().manual_seed(1))
    assert g1 != harary_graph(ids, 8, torch.Generator().manual_seed(2))
    assert harary_graph(ids[:5], 8, torch.Generator()) == complete_graph(ids[:5])
    assert [default_degree(n) for n in (2, 4, 10, 100, 1000)] == [1, 2, 4, 8, 10]
    with pytest.raises(ConfigError, match="even"):
        harary_graph(ids, 7, torch.Generator())


def test_secagg_plus_sum_is_exact_and_each_client_only_talks_to_its_neighbours():
    ring = Ring()
    xs, enc = _inputs(30, 400, ring)
    graph = harary_graph(list(range(30)), 6, torch.Generator().manual_seed(0))
    total, tr = secure_sum(enc, ring, threshold=4, graph=graph)
    assert float((ring.decode(total) - sum(xs.values())).abs().max()) < 1e-5
    _, full = secure_sum(enc, ring, threshold=16)
    # keys, shares and unmasking shares for 6 neighbours instead of 29 peers: far fewer bytes
    # besides the masked vector itself (400 values x 6 bytes)
    extra_plus = sum(tr.bytes_up.values()) - 30 * 400 * ring.bytes_per_element
    extra_full = sum(full.bytes_up.values()) - 30 * 400 * ring.bytes_per_element
    assert extra_plus < 0.3 * extra_full


def test_secagg_plus_recovers_dropouts_per_neighbourhood_and_fails_loudly_below_threshold():
    ring = Ring()
    xs, enc = _inputs(30, 200, ring)
    graph = harary_graph(list(range(30)), 6, torch.Generator().manual_seed(3))
    drop = [2, 11, 25]
    total, tr = secure_sum(enc, ring, threshold=4, graph=graph, drop_before_masking=drop, drop_before_unmasking=[7])
    plain = sum(x for i, x in xs.items() if i not in drop)
    assert float((ring.decode(total) - plain).abs().max()) < 1e-5 and tr.dropped == drop
    # a whole neighbourhood gone: that client's secrets cannot be rebuilt; nothing is returned
    victim = 0
    gone = sorted(graph[victim])[:4]
    with pytest.raises(RoundSkipped):
        secure_sum(enc, ring, threshold=4, graph=graph, drop_before_masking=gone)


def test_step_with_log_neighbours_gives_the_weighted_mean_for_fewer_bytes():
    res = [result(i, weight=float(1 + i % 5)) for i in range(40)]
    expect = weighted_mean([r.update for r in res], [r.weight for r in res])
    notes = {}
    for neighbours in ("all", "log"):
        c = ctx(seed=4)
        out = run_steps([SecureAggregation(neighbours=neighbours)], res, c)
        for k in expect:
            assert torch.allclose(out[0].update[k], expect[k], atol=1e-5)
        notes[neighbours] = c.notes["secagg/bytes_up"]
    assert notes["log"] < 0.5 * notes["all"]
    step = SecureAggregation(neighbours="log")
    assert step.degree_for(40) == 6 and step.threshold_for(step.degree_for(40) + 1) == 4
    assert SecureAggregation(neighbours=4).degree_for(3) == 2
    with pytest.raises(ConfigError, match="even degree"):
        SecureAggregation(neighbours=5)


def test_step_with_log_neighbours_survives_simulated_dropouts():
    res = [result(i) for i in range(30)]
    c = ctx(seed=2)
    out = run_steps([SecureAggregation(neighbours="log", weighted=False, dropout=0.1)], res, c)
    dropped = c.notes["secagg/dropped"]
    kept = [r for r in res if r.client_id not in dropped]
    assert dropped and torch.allclose(
        out[0].update["w"], weighted_mean([r.update for r in kept], [1.0] * len(kept))["w"], atol=1e-5
    )
