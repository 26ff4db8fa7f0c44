"""q-FedAvg (Li et al. 2020): the update rule, the loss-reporting client wrapper, Flower's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.federated import LocalSGD, Population, SimulationConfig, simulate
from interlearn.federated.api import ClientData, ClientResult
from interlearn.federated.strategies import QFedAvg, QFFLClient, get_strategy
from interlearn.federated.strategies.qfedavg import START_LOSS


def _params():
    g = torch.Generator().manual_seed(0)
    return {
        "w": torch.randn(3, 2, generator=g, dtype=torch.float64),
        "b": torch.randn(2, generator=g, dtype=torch.float64),
    }


def _results(losses, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [
        ClientResult(
            i,
            {
                "w": 0.1 * torch.randn(3, 2, generator=g, dtype=torch.float64),
                "b": 0.1 * torch.randn(2, generator=g, dtype=torch.float64),
            },
            10.0,
            {START_LOSS: f},
        )
        for i, f in enumerate(losses)
    ]


def test_update_rule_matches_the_paper_by_hand():
    q, lr = 2.0, 0.05
    params, res = _params(), _results([0.3, 1.2, 2.5])
    new, _ = QFedAvg(q=q, local_lr=lr).aggregate(params, res, {})
    L = 1 / lr
    num = {k: torch.zeros_like(v) for k, v in params.items()}
    den = 0.0
    for r in res:
        F = r.metrics[START_LOSS] + 1e-10
        dw = {k: -L * u for k, u in r.update.items()}  # L * (w - w_k)
        for k in num:
            num[k] += F**q * dw[k]
        den += q * F ** (q - 1) * sum(float((v**2).sum()) for v in dw.values()) + L * F**q
    for k in params:
        torch.testing.assert_close(new[k], params[k] - num[k] / den, rtol=0, atol=1e-15)


def test_q_zero_is_uniform_fedavg_and_high_loss_clients_weigh_more():
    params, res = _params(), _results([0.1, 3.0])
    new0, _ = QFedAvg(q=0.0, local_lr=0.1).aggregate(params, res, {})
    mean = {k: (res[0].update[k] + res[1].update[k]) / 2 for k in params}
    for k in params:
        torch.testing.assert_close(new0[k], params[k] + mean[k], rtol=0, atol=1e-15)
    new5, _ = QFedAvg(q=5.0, local_lr=0.1).aggregate(params, res, {})
    step = torch.cat([(new5[k] - params[k]).reshape(-1) for k in params])
    u0, u1 = (torch.cat([r.update[k].reshape(-1) for k in params]) for r in res)
    cos = torch.nn.functional.cosine_similarity
    assert float(cos(step, u1, dim=0)) > 0.99 > float(cos(step, u0, dim=0))  # the high-loss client dominates


@pytest.mark.parametrize("q,lr,loss", [(0.0, 0.1, 0.7), (1.0, 0.1, 0.7), (3.0, 0.02, 1.9)])
def test_equals_flower_qfedavg_when_every_client_has_the_same_loss(q, lr, loss):
    """Flower 1.42 uses one server-side evaluation loss for every client; with equal client
    losses the paper's rule (ours) and Flower's coincide."""
    pytest.importorskip("flwr", reason="the Flower reference needs the federated extra (flwr)")
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import QFedAvg as FlowerQFedAvg

    params, res = _params(), _results([loss] * 4)
    before = [params["w"].numpy(), params["b"].numpy()]
    fl = FlowerQFedAvg(q_param=q, qffl_learning_rate=lr, evaluate_fn=lambda rnd, nds, cfg: (loss, {}))
    fl.pre_weights = before
    fit = [
        (
            None,
            FitRes(
                Status(Code.OK, ""),
                ndarrays_to_parameters([(params[k] + r.update[k]).numpy() for k in ("w", "b")]),
                10,
                {},
            ),
        )
        for r in res
    ]
    ref = parameters_to_ndarrays(fl.aggregate_fit(1, fit, [])[0])
    new, _ = QFedAvg(q=q, local_lr=lr).aggregate(params, res, {})
    np.testing.assert_allclose(new["w"].numpy(), ref[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(new["b"].numpy(), ref[1], rtol=0, atol=1e-12)


def test_client_wrapper_reports_the_loss_at_the_received_model_and_trains_like_the_inner():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    g = torch.Generator().manual_seed(1)
    data = ClientData(0, torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g))
    inner = LocalSGD(epochs=1, batch_size=5, lr=0.1)
    res, _ = QFFLClient(inner)(model, params, data, None, {}, torch.Generator().manual_seed(2))
    expect = float(
        torch.nn.functional.cross_entropy(torch.nn.functional.linear(data.x, params["weight"], params["bias"]), data.y)
    )
    assert res.metrics[START_LOSS] == pytest.approx(expect, rel=1e-6)
    plain, _ = inner(model, params, data, None, {}, torch.Generator().manual_seed(2))
    assert all(torch.equal(res.update[k], plain.update[k]) for k in plain.update)


def test_refuses_results_without_loss_or_collapsed_cohorts():
    s = get_strategy("qfedavg", q=1.0, local_lr=0.1)
    params = _params()
    bare = [ClientResult(0, {k: torch.zeros_like(v) for k, v in params.items()}, 1.0, {})]
    with pytest.raises(ConfigError, match="QFFLClient"):
        s.aggregate(params, bare, {})
    with pytest.raises(ConfigError, match="collapsed"):
        s.aggregate(params, [ClientResult(-1, bare[0].update, 1.0, {START_LOSS: 1.0})], {})
    with pytest.raises(ConfigError, match="q="):
        QFedAvg(q=-1.0)
    with pytest.raises(ConfigError, match="local_lr"):
        QFedAvg(local_lr=0.0)


@pytest.mark.slow
def test_qfedavg_narrows_the_spread_of_client_accuracies_in_the_round_loop():
    """8 clients label by ``x0 > 0``, 2 by ``x0 > 1.5``: FedAvg fits the majority's threshold;
    q-FedAvg (q=5) moves towards the minority, lifting the worst client and narrowing the
    spread (Li et al. 2020, Table 1's effect)."""
    g = torch.Generator().manual_seed(0)
    xs, ys, parts = [], [], []
    for c in range(10):
        x = torch.randn(40, 2, generator=g)
        xs.append(x)
        ys.append((x[:, 0] > (0.0 if c < 8 else 1.5)).long())
        parts.append(list(range(40 * c, 40 * (c + 1))))
    pop = Population(torch.cat(xs), torch.cat(ys), parts)

    def run(strategy, client):
        torch.manual_seed(0)
        cfg = SimulationConfig(rounds=80, fraction=1.0, seed=0, progress=False)
        return list(simulate(torch.nn.Linear(2, 2), pop, client, strategy, cfg).client_accuracy.values())

    fedavg = run(get_strategy("fedavg", aggregator="uniform_mean"), LocalSGD(epochs=1, batch_size=10, lr=0.1))
    fair = run(QFedAvg(q=5.0, local_lr=0.1), QFFLClient(LocalSGD(epochs=1, batch_size=10, lr=0.1)))
    assert min(fair) >= min(fedavg) + 0.05
    assert np.std(fair) < 0.7 * np.std(fedavg)
