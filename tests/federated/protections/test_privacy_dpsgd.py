"""Sample-level DP-SGD for local training, through Opacus."""

from __future__ import annotations

import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData
from interlearn.federated.protections.privacy import DPSGDClientUpdate

pytest.importorskip("opacus")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _data(cid: int = 0, n: int = 40) -> ClientData:
    g = torch.Generator().manual_seed(cid)
    x = torch.randn(n, 6, generator=g)
    return ClientData(cid, x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long())


def test_dpsgd_update_shapes_metrics_and_epsilon_accumulates_per_client():
    model = _model()
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    cu = DPSGDClientUpdate(epochs=1, batch_size=8, lr=0.1, noise_multiplier=1.0, max_grad_norm=1.0)
    g = torch.Generator().manual_seed(0)
    r1, _ = cu(model, params, _data(0), None, {}, g)
    assert r1.update.keys() == params.keys()
    assert all(r1.update[k].shape == v.shape for k, v in params.items())
    assert r1.weight == 40.0
    e1 = r1.metrics["dpsgd/epsilon"]
    assert e1 > 0
    r2, _ = cu(model, params, _data(0), None, {}, g)
    assert r2.metrics["dpsgd/epsilon"] > e1  # the same client's budget accumulates
    r3, _ = cu(model, params, _data(1), None, {}, g)
    assert r3.metrics["dpsgd/epsilon"] == pytest.approx(e1)  # another client starts fresh
    assert cu.epsilon(0) == pytest.approx(r2.metrics["dpsgd/epsilon"])
    # the global model object is not touched
    assert all(torch.equal(p, params[k]) for k, p in model.named_parameters())


def test_dpsgd_noise_makes_updates_differ_and_per_example_clipping_bounds_them():
    model = _model()
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    data = _data(0, n=32)
    # no noise to speak of, clip tiny: each step moves params by at most lr * max_grad_norm
    quiet = DPSGDClientUpdate(batch_size=32, lr=1.0, noise_multiplier=1e-6, max_grad_norm=1e-3)
    r, _ = quiet(model, params, data, None, {}, torch.Generator().manual_seed(0))
    steps = 1  # len(data) / batch_size
    total = sum(float(v.pow(2).sum()) for v in r.update.values()) ** 0.5
    assert total <= steps * 1.0 * 1e-3 * 1.01 + 1e-6
    a = DPSGDClientUpdate(batch_size=8, noise_multiplier=2.0)(
        model, params, data, None, {}, torch.Generator().manual_seed(1)
    )[0]
    b = DPSGDClientUpdate(batch_size=8, noise_multiplier=2.0)(
        model, params, data, None, {}, torch.Generator().manual_seed(2)
    )[0]
    assert not torch.allclose(a.update["0.weight"], b.update["0.weight"])


def test_dpsgd_rejects_batchnorm_and_bad_config():
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    with pytest.raises(ConfigError, match="ModuleValidator.fix"):
        DPSGDClientUpdate()(model, params, _data(), None, {}, torch.Generator())
    with pytest.raises(ConfigError, match="accountant"):
        DPSGDClientUpdate(accountant="moments")
    with pytest.raises(ConfigError):
        DPSGDClientUpdate(noise_multiplier=0)


@pytest.mark.slow
def test_dpsgd_in_the_round_loop_sequential_engine_and_vectorized_refuses():
    from protection_helpers import toy_problem

    from interlearn.federated import SimulationConfig, get_strategy, simulate

    model, pop, test = toy_problem(num_clients=4)
    cu = DPSGDClientUpdate(batch_size=10, lr=0.3, noise_multiplier=0.8, max_grad_norm=1.0)
    cfg = SimulationConfig(rounds=3, fraction=1.0, seed=0, progress=False)
    res = simulate(model, pop, cu, get_strategy("fedavg"), cfg, engine="sequential", test=test)
    assert res.final_accuracy > 0.5
    assert all(cu.epsilon(c) > 0 for c in range(4))
    with pytest.raises(ConfigError, match="sequential"):
        simulate(model, pop, cu, get_strategy("fedavg"), cfg, engine="vectorized", test=test)
