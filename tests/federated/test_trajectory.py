"""Personal trajectories: LocalSGD's own step from a start point, checkpoints, Ditto's prox."""

import pytest
import torch
from fl_helpers import blobs, tiny_mlp
from torch.func import functional_call

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData
from interlearn.federated.client import LocalSGD, run_client
from interlearn.federated.params import model_params
from interlearn.federated.trajectory import ProximalSGD, run_trajectory, sgd_trajectory


def test_the_trajectory_is_the_federated_clients_step():
    """k steps of the trajectory = the client update LocalSGD(steps=k) computes from the same start."""
    model = tiny_mlp()
    w = model_params(model)
    x, y = blobs(30)
    for optimizer in ("sgd", "adam"):
        got = sgd_trajectory(
            model, w, TensorData(x, y), [7], 0.05, 8, torch.Generator().manual_seed(4), optimizer=optimizer
        )[7]
        res, _ = run_client(
            LocalSGD(steps=7, batch_size=8, lr=0.05, optimizer=optimizer),
            model,
            w,
            ClientData(0, x, y),
            None,
            {},
            torch.Generator().manual_seed(4),
        )
        for k in w:
            torch.testing.assert_close(got[k], w[k] + res.update[k], atol=1e-6, rtol=0)


def test_run_trajectory_trains_only_the_named_entries_and_is_pure():
    model = tiny_mlp()
    w = model_params(model)
    head = [k for k in w if k.startswith("2.")]
    out = run_trajectory(
        LocalSGD(steps=3, batch_size=5, lr=0.1),
        model,
        w,
        TensorData(*blobs(20)),
        [3],
        torch.Generator().manual_seed(0),
        trainable=head,
    )[3]
    assert all(out[k] is w[k] for k in w if k not in head) and not torch.equal(out[head[0]], w[head[0]])
    assert all(torch.equal(v, model_params(model)[k]) for k, v in w.items())
    with pytest.raises(ConfigError, match="lam"):
        ProximalSGD(steps=1, lam=-0.5)


def test_trajectory_checkpoints_lie_on_one_run_and_zero_is_the_start():
    model = tiny_mlp()
    w = model_params(model)
    data = TensorData(*blobs(40))
    traj = sgd_trajectory(model, w, data, [0, 3, 6], 0.1, 8, torch.Generator().manual_seed(1))
    again = sgd_trajectory(model, w, data, [6], 0.1, 8, torch.Generator().manual_seed(1))
    assert traj[0] is not w and all(torch.equal(traj[0][k], w[k]) for k in w)
    assert all(torch.equal(traj[6][k], again[6][k]) for k in w) and not torch.equal(
        traj[3]["0.weight"], traj[6]["0.weight"]
    )
    with pytest.raises(ConfigError):
        sgd_trajectory(model, w, data, [-1], 0.1, 8, torch.Generator())
    with pytest.raises(DataError):
        sgd_trajectory(
            model, w, TensorData(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)), [2], 0.1, 8, torch.Generator()
        )


def test_prox_step_is_a_gradient_step_then_the_proximal_operator():
    """One step = an SGD step on f(v), then the exact prox of lam/2 ||v - w||^2 (v starts off w)."""
    model = tiny_mlp()
    w = model_params(model)
    start = {k: v + 0.1 for k, v in w.items()}
    x, y = blobs(10)
    data = TensorData(x, y)
    lam, lr = 2.0, 0.1
    got = sgd_trajectory(model, start, data, [1], lr, 10, torch.Generator().manual_seed(0), anchor=w, lam=lam)[1]
    p = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    loss = torch.nn.functional.cross_entropy(functional_call(model, p, (x,)), y)
    grads = torch.autograd.grad(loss, list(p.values()))
    for (k, v), g in zip(p.items(), grads):
        v_half = v.detach() - lr * g
        assert torch.allclose(got[k], (v_half + lr * lam * w[k]) / (1 + lr * lam), atol=1e-6)


def test_adam_trajectory_matches_torch_adam():
    model = tiny_mlp()
    w = model_params(model)
    x, y = blobs(20)
    got = sgd_trajectory(model, w, TensorData(x, y), [2], 0.01, 20, torch.Generator().manual_seed(0), optimizer="adam")[
        2
    ]
    ref = tiny_mlp()
    opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    for _ in range(2):  # batch = all 20 examples: the order does not matter
        loss = torch.nn.functional.cross_entropy(ref(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.allclose(got[k], v, atol=1e-6) for k, v in ref.state_dict().items())
    with pytest.raises(ConfigError, match="optimizer"):
        sgd_trajectory(model, w, TensorData(x, y), [2], 0.01, 20, torch.Generator(), optimizer="lion")
