"""Bulyan (El Mhamdi et al. 2018) and Krum, checked against Flower 1.42's own functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult
from interlearn.federated.protections.bulyan import Bulyan, bulyan, bulyan_selection
from interlearn.federated.protections.robust import Krum, flat_float64, krum

flower_aggregate = pytest.importorskip(
    "flwr.server.strategy.aggregate", reason="the Flower reference needs the federated extra (flwr)"
)


def _lex_sorted_updates(n: int, seed: int, attackers: int = 0) -> list[dict[str, torch.Tensor]]:
    """float64 updates in lexicographic order: Flower breaks Krum ties by position, we by
    content; in this order both pick the same update."""
    g = torch.Generator().manual_seed(seed)
    ups = [
        {
            "w": torch.randn(4, 3, generator=g, dtype=torch.float64),
            "b": torch.randn(3, generator=g, dtype=torch.float64),
        }
        for _ in range(n - attackers)
    ]
    ups += [
        {
            "w": torch.full((4, 3), 50.0 * (i + 1), dtype=torch.float64),
            "b": torch.full((3,), -50.0, dtype=torch.float64),
        }
        for i in range(attackers)
    ]
    flat = flat_float64(ups).numpy()
    order = np.lexsort(flat.T[::-1])
    return [ups[i] for i in order]


def _to_flower(ups):
    return [([u["w"].numpy().copy(), u["b"].numpy().copy()], 10) for u in ups]


@pytest.mark.parametrize(
    "n,f,attackers,seed", [(7, 1, 0, 0), (7, 1, 1, 1), (11, 2, 2, 2), (12, 2, 0, 3), (15, 3, 3, 4), (10, 1, 1, 5)]
)
def test_bulyan_equals_flower(n, f, attackers, seed):
    ups = _lex_sorted_updates(n, seed, attackers)
    ours = bulyan(ups, num_byzantine=f)
    ref = flower_aggregate.aggregate_bulyan(_to_flower(ups), f, flower_aggregate.aggregate_krum, to_keep=0)
    np.testing.assert_allclose(ours["w"].numpy(), ref[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours["b"].numpy(), ref[1], rtol=0, atol=1e-15)
    assert ours["w"].dtype == torch.float64


@pytest.mark.parametrize("n,f,seed", [(5, 1, 0), (9, 3, 1), (12, 2, 2)])
def test_krum_equals_flower(n, f, seed):
    ups = _lex_sorted_updates(n, seed, attackers=f)
    ours = krum(ups, num_byzantine=f)
    ref = flower_aggregate.aggregate_krum(_to_flower(ups), f, to_keep=0)
    np.testing.assert_array_equal(ours["w"].numpy(), ref[0])
    np.testing.assert_array_equal(ours["b"].numpy(), ref[1])


def test_bulyan_selection_skips_the_attackers_and_the_result_stays_near_honest():
    ups = _lex_sorted_updates(11, seed=7, attackers=2)
    flat = flat_float64(ups)
    chosen = bulyan_selection(flat, 2)
    assert len(chosen) == 11 - 4
    assert all(float(flat[i].abs().max()) < 40 for i in chosen)  # no attacker (|value| >= 50) selected
    honest = torch.stack([u["w"] for u in ups if float(u["w"].abs().max()) < 40])
    out = bulyan(ups, num_byzantine=2)["w"]
    assert bool(((out >= honest.min(0).values) & (out <= honest.max(0).values)).all())


def test_bulyan_and_krum_refuse_too_small_cohorts_naming_n_and_f():
    res = [ClientResult(i, {"w": torch.full((2,), float(i))}, 1.0) for i in range(6)]
    with pytest.raises(ConfigError, match=r"f=1 .*n >= 4f \+ 3 = 7.*got n=6.*at most 0"):
        Bulyan(num_byzantine=1)(res)
    with pytest.raises(ConfigError, match=r"f=2 .*n > 2f \+ 2 = 6.*got n=6.*at most 1"):
        Krum(num_byzantine=2)(res)
    with pytest.raises(ConfigError, match=r"num_selected=10 must lie in 1..n=6"):
        Krum(num_byzantine=1, num_selected=10)(res)
    with pytest.raises(ConfigError, match=r"\[0, 0.25\)"):
        Bulyan(num_byzantine=0.3)
    # the default f is the most the cohort allows, stated, never a silent cut of a given f
    assert Bulyan().byzantine_tolerance(6) == 0 and Bulyan().byzantine_tolerance(11) == 2
    assert Krum().byzantine_tolerance(6) == 1
