"""Reference checks of the strategies (the conformance suite is in test_aggregation_conformance.py)."""

import pytest
import torch
from fl_helpers import result

from interlearn.errors import ConfigError, UpdateRejected
from interlearn.federated.strategies import get_aggregator, get_strategy, server_extras


def _params():
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(3, 2, generator=g), "b": torch.randn(2, generator=g)}


def _results(params, n=3, scale=0.1, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        up = {k: torch.randn(v.shape, generator=g) * scale for k, v in params.items()}
        ex = {k: torch.randn(v.shape, generator=g) * scale for k, v in params.items()}
        out.append(result(i, up, float(i + 1), ex))
    return out


# The conformance suite over every registered strategy lives in test_aggregation_conformance.py.


def test_fedavg_equal_weights_is_plain_mean():
    params = _params()
    fedavg = get_strategy("fedavg")
    ups = _results(params, n=4)
    rs = [result(r.client_id, r.update, 5.0) for r in ups]
    new, _ = fedavg.aggregate(params, rs, fedavg.init(params))
    for k in params:
        client_models = torch.stack([params[k] + r.update[k] for r in rs])
        torch.testing.assert_close(new[k], client_models.mean(0))


def test_fedavg_weights_by_examples():
    params = {"w": torch.zeros(1)}
    fedavg = get_strategy("fedavg")
    rs = [result(0, {"w": torch.ones(1)}, 3.0), result(1, {"w": torch.zeros(1)}, 1.0)]
    new, _ = fedavg.aggregate(params, rs, fedavg.init(params))
    assert float(new["w"]) == pytest.approx(0.75)


def test_fedadam_matches_hand_computed_step():
    lr, b1, b2, tau = 0.1, 0.9, 0.99, 1e-3
    strat = get_strategy("fedadam", lr=lr, beta1=b1, beta2=b2, tau=tau)
    params = {"w": torch.tensor([1.0, -2.0])}
    state = strat.init(params)
    rs = [result(0, {"w": torch.tensor([0.2, 0.4])}, 1.0), result(1, {"w": torch.tensor([0.4, -0.4])}, 3.0)]
    new, st = strat.aggregate(params, rs, state)
    # by hand: delta = (0.2*1 + 0.4*3)/4, (0.4*1 - 0.4*3)/4 = 0.35, -0.2
    d = [0.35, -0.2]
    m = [(1 - b1) * x for x in d]
    v = [b2 * tau**2 + (1 - b2) * x * x for x in d]
    want = [p + lr * mi / (vi**0.5 + tau) for p, mi, vi in zip([1.0, -2.0], m, v)]
    torch.testing.assert_close(new["w"], torch.tensor(want))
    torch.testing.assert_close(st["m/w"], torch.tensor(m))
    torch.testing.assert_close(st["v/w"], torch.tensor(v))
    # second step uses the state
    new2, _ = strat.aggregate(new, rs, st)
    m2 = [b1 * mi + (1 - b1) * x for mi, x in zip(m, d)]
    v2 = [b2 * vi + (1 - b2) * x * x for vi, x in zip(v, d)]
    want2 = [p + lr * mi / (vi**0.5 + tau) for p, mi, vi in zip(want, m2, v2)]
    torch.testing.assert_close(new2["w"], torch.tensor(want2))


def test_fedyogi_and_fedadagrad_second_moment():
    d = torch.tensor([0.3])
    params = {"w": torch.zeros(1)}
    rs = [result(0, {"w": d}, 1.0)]
    yogi = get_strategy("fedyogi", tau=1e-3, beta2=0.99)
    _, st = yogi.aggregate(params, rs, yogi.init(params))
    v0 = 1e-6
    torch.testing.assert_close(st["v/w"], torch.tensor([v0 - 0.01 * 0.09 * (-1.0)]))
    ada = get_strategy("fedadagrad", tau=1e-3)
    _, st = ada.aggregate(params, rs, ada.init(params))
    torch.testing.assert_close(st["v/w"], torch.tensor([v0 + 0.09]))


def test_fedavgm_momentum():
    strat = get_strategy("fedavgm", lr=1.0, momentum=0.5)
    params = {"w": torch.zeros(1)}
    rs = [result(0, {"w": torch.ones(1)}, 1.0)]
    p1, s1 = strat.aggregate(params, rs, strat.init(params))
    p2, _ = strat.aggregate(p1, rs, s1)
    assert float(p1["w"]) == pytest.approx(1.0) and float(p2["w"]) == pytest.approx(1.0 + 1.5)


def test_scaffold_server_update_matches_paper():
    n_pop, lr_g = 20, 0.5
    strat = get_strategy("scaffold", num_clients=n_pop, lr=lr_g)
    params = _params()
    state = strat.init(params)
    state = {k: v + 0.3 for k, v in state.items()}
    rs = _results(params, n=4)
    new, st = strat.aggregate(params, rs, state)
    for k in params:
        dy = torch.stack([r.update[k] for r in rs]).mean(0)
        dc = torch.stack([r.extras[k] for r in rs]).mean(0)
        torch.testing.assert_close(new[k], params[k] + lr_g * dy)
        torch.testing.assert_close(st[f"c/{k}"], state[f"c/{k}"] + (len(rs) / n_pop) * dc)
    assert server_extras(strat, st).keys() == params.keys()
    with pytest.raises(UpdateRejected, match="ScaffoldClient"):
        strat.aggregate(params, [result(0, rs[0].update, 1.0)], state)


def test_registry_errors_and_aggregator_by_name():
    with pytest.raises(ConfigError, match="fedavg"):
        get_strategy("fedavgg")
    with pytest.raises(ConfigError, match="momentum"):
        get_strategy("fedavg", momentum=0.9)
    with pytest.raises(ConfigError):
        get_strategy("fedadam", tau=0.0)
    s = get_strategy("fedavg", aggregator="uniform_mean")
    params = {"w": torch.zeros(1)}
    rs = [result(0, {"w": torch.ones(1)}, 9.0), result(1, {"w": torch.zeros(1)}, 1.0)]
    new, _ = s.aggregate(params, rs, s.init(params))
    assert float(new["w"]) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="known"):
        get_aggregator("medain")
