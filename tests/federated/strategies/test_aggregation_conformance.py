"""One conformance suite over every registered aggregator and strategy (STYLE.md #15).

Registering an aggregator (``register_aggregator``) or a strategy (``register_strategy``) is
enough to be tested here. Aggregators declare ``uses_weights`` and ``byzantine_tolerance(n)``;
strategies that need client extras or metrics declare ``requires_extras`` /
``required_metrics``; a strategy whose factory has required arguments adds them to
``STRATEGY_KWARGS`` below (the test says so when one is missing).
"""

from __future__ import annotations

import copy

import pytest
import torch

from interlearn.checkpoint import load_checkpoint, save_checkpoint
from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.api import ClientResult
from interlearn.federated.protections.privacy import mean_result
from interlearn.federated.strategies import get_aggregator, get_strategy, known_aggregators, known_strategies

AGGREGATORS = known_aggregators()
STRATEGIES = known_strategies()
STRATEGY_KWARGS = {"scaffold": {"num_clients": 40}}
N = 11  # enough for every robust rule's default f to be >= 1 (Bulyan: n >= 4f + 3)


def _updates(n: int, *, seed: int = 0, dtype=torch.float64, scale: float = 0.02, center: float = 0.0):
    """Small updates (norm well below any default clip / norm bound), keyed like a tiny model."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        u = {
            "w": center + scale * torch.randn(3, 4, generator=g, dtype=torch.float64),
            "b": center + scale * torch.randn(5, generator=g, dtype=torch.float64),
        }
        out.append({k: v.to(dtype) for k, v in u.items()})
    return out


def _results(updates, weights=None, metrics=None, extras=False):
    weights = weights or [float(i + 1) for i in range(len(updates))]
    return [
        ClientResult(i, u, w, dict(metrics or {"loss": 1.0}), {k: v.clone() for k, v in u.items()} if extras else {})
        for i, (u, w) in enumerate(zip(updates, weights))
    ]


def _close(a, b, atol=1e-12):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.allclose(a[k].to(torch.float64), b[k].to(torch.float64), atol=atol, rtol=0), (
            k,
            (a[k] - b[k]).abs().max(),
        )


def test_every_aggregator_and_strategy_of_the_issue_is_registered():
    assert {"mean", "uniform_mean", "median", "trimmed_mean", "krum", "multi_krum", "norm_bound", "bulyan"} <= set(
        AGGREGATORS
    )
    assert {"fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "scaffold", "qfedavg"} <= set(STRATEGIES)


# ---------------------------------------------------------------- aggregators


@pytest.mark.parametrize("name", AGGREGATORS)
def test_aggregator_declares_weights_and_tolerance(name):
    agg = get_aggregator(name)
    assert isinstance(agg.uses_weights, bool), f"{name}: declare uses_weights"
    tol = agg.byzantine_tolerance(N)
    assert isinstance(tol, int) and 0 <= tol <= N


@pytest.mark.parametrize("name", AGGREGATORS)
def test_aggregator_is_permutation_invariant(name):
    agg = get_aggregator(name)
    res = _results(_updates(N))
    perm = [res[i] for i in torch.randperm(N, generator=torch.Generator().manual_seed(3)).tolist()]
    _close(agg(res), agg(perm))


@pytest.mark.parametrize("name", AGGREGATORS)
def test_identical_updates_give_that_update(name):
    agg = get_aggregator(name)
    u = _updates(1, seed=5)[0]
    _close(agg(_results([u] * N)), u, atol=1e-15)


@pytest.mark.parametrize("name", AGGREGATORS)
def test_weights_are_respected_or_ignored_as_declared(name):
    agg = get_aggregator(name)
    ups = _updates(N)
    base = agg(_results(ups, weights=[1.0] * N))
    other = agg(_results(ups, weights=[float(1 + 3 * (i % 4)) for i in range(N)]))
    if agg.uses_weights:
        # weight 2 on a client == that client sent twice with weight 1
        doubled = agg(_results(ups, weights=[2.0] + [1.0] * (N - 1)))
        repeated = agg(_results([ups[0]] + ups, weights=[1.0] * (N + 1)))
        _close(doubled, repeated)
        assert any(not torch.allclose(base[k], other[k]) for k in base), f"{name} says it uses weights but ignores them"
    else:
        _close(base, other, atol=0.0)


@pytest.mark.parametrize("name", AGGREGATORS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_dtype_is_preserved(name, dtype):
    out = get_aggregator(name)(_results(_updates(N, dtype=dtype)))
    assert all(v.dtype == dtype for v in out.values())


@pytest.mark.parametrize("name", AGGREGATORS)
def test_float64_arithmetic_stays_float64(name):
    """A 1e-10 shift of every update moves the result by exactly that shift: float32
    arithmetic (eps 1.2e-7) would lose it."""
    agg = get_aggregator(name)
    ups = _updates(N, center=1.0)
    shifted = [{k: v + 1e-10 for k, v in u.items()} for u in ups]
    a, b = agg(_results(ups)), agg(_results(shifted))
    # norm_bound clips to 1.0: its updates must stay under the bound for this check
    if name == "norm_bound":
        a, b = (get_aggregator(name, max_norm=100.0)(_results(x)) for x in (ups, shifted))
    for k in a:
        assert a[k].dtype == torch.float64
        assert torch.allclose(b[k] - a[k], torch.full_like(a[k], 1e-10), rtol=0, atol=1e-14), name


@pytest.mark.parametrize("name", AGGREGATORS)
def test_robust_aggregators_bound_the_effect_of_huge_attackers(name):
    agg = get_aggregator(name)
    f = min(agg.byzantine_tolerance(N), N - 1)
    if f == 0:
        pytest.skip(f"{name} is not Byzantine-robust by design (byzantine_tolerance = 0)")
    honest = _updates(N - f, center=1.0, scale=0.1)
    bound = {k: torch.stack([h[k].abs() for h in honest]).max(0).values for k in honest[0]}
    limit = float(torch.sqrt(sum((v**2).sum() for v in bound.values())))
    for scale in (1e3, 1e9):
        bad = [{k: torch.full_like(v, (-1.0) ** i * scale) for k, v in honest[0].items()} for i in range(f)]
        res = _results(honest + bad, weights=[1.0] * (N - f) + [1e9] * f)  # attackers also lie about weights
        out = agg(res)
        norm = float(torch.sqrt(sum((v.to(torch.float64) ** 2).sum() for v in out.values())))
        assert norm <= limit * (1 + 1e-9), (name, scale, norm, limit)


@pytest.mark.parametrize("name", AGGREGATORS)
def test_empty_cohort_is_a_skipped_round(name):
    with pytest.raises(RoundSkipped):
        get_aggregator(name)([])


@pytest.mark.parametrize("name", AGGREGATORS)
def test_collapsed_cohort_is_accepted_only_by_mean_rules(name):
    agg = get_aggregator(name)
    collapsed = [mean_result(_results(_updates(4)), uniform=True)]
    if agg.byzantine_tolerance(N) > 0:
        with pytest.raises(ConfigError, match="individual client updates"):
            agg(collapsed)
    else:
        _close(agg(collapsed), collapsed[0].update)


# ---------------------------------------------------------------- strategies


def _strategy(name):
    try:
        return get_strategy(name, **STRATEGY_KWARGS.get(name, {}))
    except ConfigError as exc:
        pytest.fail(f"{name}: add its required arguments to STRATEGY_KWARGS in this file ({exc})")


def _strategy_results(strategy, updates, weights=None):
    metrics = {"loss": 1.0, **{m: 0.5 + 0.1 * i for i, m in enumerate(getattr(strategy, "required_metrics", ()))}}
    return _results(updates, weights, metrics, extras=getattr(strategy, "requires_extras", False))


def _params(dtype=torch.float64):
    return {k: v.clone() for k, v in _updates(1, seed=9, dtype=dtype, scale=1.0)[0].items()}


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_is_pure_deterministic_and_checkpointable(name, tmp_path):
    s = _strategy(name)
    params = _params()
    state = s.init(params)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    results = _strategy_results(s, _updates(5))
    before = copy.deepcopy((params, state, results))
    new, new_state = s.aggregate(params, results, state)
    # inputs untouched (pure)
    _close(params, before[0], atol=0.0)
    _close(state, before[1], atol=0.0)
    for a, b in zip(results, before[2]):
        _close(a.update, b.update, atol=0.0)
    # keyed and shaped like the params; the state keeps its keys
    assert new.keys() == params.keys() and new_state.keys() == state.keys()
    assert all(new[k].shape == params[k].shape and torch.isfinite(new[k]).all() for k in params)
    again, _ = s.aggregate(params, results, state)
    _close(again, new, atol=0.0)
    # the state is checkpointable (safetensors round trip is exact)
    save_checkpoint(tmp_path / "ck", {f"s/{k}": v for k, v in new_state.items()}, {})
    back, _ = load_checkpoint(tmp_path / "ck")
    assert all(torch.equal(back[f"s/{k}"], v) for k, v in new_state.items())


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_moves_along_a_shared_update_and_keeps_params_on_zero(name):
    s = _strategy(name)
    params = _params()
    up = {k: torch.full_like(v, 0.5) for k, v in params.items()}
    zero = {k: torch.zeros_like(v) for k, v in params.items()}
    new, _ = s.aggregate(params, _strategy_results(s, [up] * 4), s.init(params))
    assert all((new[k] > params[k]).all() for k in params), f"{name} did not move towards the clients' update"
    same, _ = s.aggregate(params, _strategy_results(s, [zero]), s.init(params))
    _close(same, params, atol=1e-15)


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_is_permutation_invariant(name):
    s = _strategy(name)
    params = _params()
    res = _strategy_results(s, _updates(6))
    a = s.aggregate(params, res, s.init(params))
    b = s.aggregate(params, res[::-1], s.init(params))
    _close(a[0], b[0])
    _close(a[1], b[1])


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_identical_updates_act_like_one_client(name):
    s = _strategy(name)
    params = _params()
    one = _strategy_results(s, _updates(1, seed=4))
    many = _strategy_results(s, _updates(1, seed=4) * 5)
    many = [ClientResult(r.client_id, r.update, one[0].weight, one[0].metrics, r.extras) for r in many]
    _close(s.aggregate(params, one, s.init(params))[0], s.aggregate(params, many, s.init(params))[0])


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_weights_respected_or_ignored_as_declared(name):
    s = _strategy(name)
    params = _params()
    ups = _updates(6)
    a = s.aggregate(params, _strategy_results(s, ups, [1.0] * 6), s.init(params))[0]
    b = s.aggregate(params, _strategy_results(s, ups, [1.0, 5.0, 2.0, 9.0, 1.0, 3.0]), s.init(params))[0]
    if getattr(s, "uses_weights", None) is None:
        pytest.fail(f"{name}: declare uses_weights")
    if s.uses_weights:
        assert any(not torch.allclose(a[k], b[k]) for k in a)
    else:
        _close(a, b, atol=0.0)


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_strategy_preserves_dtype(name, dtype):
    s = _strategy(name)
    params = _params(dtype)
    state = s.init(params)
    new, new_state = s.aggregate(params, _strategy_results(s, _updates(4, dtype=dtype)), state)
    assert all(v.dtype == dtype for v in new.values())
    assert all(v.dtype == dtype for v in new_state.values())


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_empty_cohort_is_a_skipped_round(name):
    s = _strategy(name)
    params = _params()
    with pytest.raises(RoundSkipped):
        s.aggregate(params, [], s.init(params))
