"""Ditto (Li et al. 2021): the personal objective's solution, the client update, engine runs."""

import pytest
import torch
from torch.func import functional_call

from fl_helpers import blobs, tiny_mlp
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.api import ClientData, ClientUpdate
from interlearn.federated.ditto import DittoUpdate, ditto_trajectory, sgd_trajectory
from interlearn.federated.params import model_params
from interlearn.federated.sampling import client_generator


def _dist(a, b):
    return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5


def test_lambda_interpolates_between_local_training_and_the_global_model():
    model = tiny_mlp()
    w = model_params(model)
    x, y = blobs(60)
    data = TensorData(x, y)
    far = {}
    for lam in (0.0, 1.0, 100.0):
        v = ditto_trajectory(model, w, data, lam, [40], lr=0.05, batch_size=10, generator=torch.Generator().manual_seed(0))[40]
        far[lam] = _dist(v, w)
    assert far[0.0] > far[1.0] > far[100.0] and far[100.0] < 0.1 * far[0.0]
    assert set(w) == set(v) and all(torch.equal(t, model_params(model)[k]) for k, t in w.items())  # pure: the model is untouched


def test_trajectory_checkpoints_lie_on_one_run_and_zero_is_the_start():
    model = tiny_mlp()
    w = model_params(model)
    data = TensorData(*blobs(40))
    traj = sgd_trajectory(model, w, data, [0, 3, 6], 0.1, 8, torch.Generator().manual_seed(1))
    again = sgd_trajectory(model, w, data, [6], 0.1, 8, torch.Generator().manual_seed(1))
    assert traj[0] is not w and all(torch.equal(traj[0][k], w[k]) for k in w)
    assert all(torch.equal(traj[6][k], again[6][k]) for k in w) and not torch.equal(traj[3]["0.weight"], traj[6]["0.weight"])
    with pytest.raises(ConfigError):
        sgd_trajectory(model, w, data, [-1], 0.1, 8, torch.Generator())
    with pytest.raises(DataError):
        sgd_trajectory(model, w, TensorData(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)), [2], 0.1, 8, torch.Generator())


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


def test_ditto_update_uploads_the_fedavg_update_and_keeps_the_personal_model():
    model = tiny_mlp()
    w = model_params(model)
    x, y = blobs(30)
    data = ClientData(3, x, y)
    ditto = DittoUpdate(lam=0.5, epochs=1, batch_size=10, lr=0.1, personal_steps=5)
    assert isinstance(ditto, ClientUpdate)
    res, state = ditto(model, w, data, None, {}, client_generator(0, 1, 3))
    plain, _ = LocalSGD(epochs=1, batch_size=10, lr=0.1)(model, w, data, None, {}, client_generator(0, 1, 3))
    assert all(torch.allclose(res.update[k], plain.update[k], atol=1e-6) for k in w)  # same batches as FedAvg's client
    assert res.weight == 30 and set(state) == set(w) and _dist(state, w) > 0
    res2, state2 = ditto(model, w, data, state, {}, client_generator(0, 2, 3))
    assert _dist(state2, state) > 0  # the personal model continues from its state
    with pytest.raises(ConfigError):
        DittoUpdate(lam=-1)


def test_ditto_runs_in_a_simulation_with_client_states(tmp_path):
    x, y = blobs(120)
    pop = Population(x, y, [list(range(i, 120, 4)) for i in range(4)])
    model = tiny_mlp()
    res = simulate(model, pop, DittoUpdate(lam=0.1, lr=0.1, personal_steps=3), get_strategy("fedavg"),
                   SimulationConfig(rounds=2, clients_per_round=2, checkpoint_every=2, progress=False, client_eval=False),
                   engine="sequential", run_dir=tmp_path)
    from interlearn.federated.personalization import personal_heads

    states = personal_heads(res, run_dir=tmp_path)
    assert states and all(set(s) == set(res.params) for s in states.values())


def test_adam_trajectory_matches_torch_adam():
    model = tiny_mlp()
    w = model_params(model)
    x, y = blobs(20)
    got = sgd_trajectory(model, w, TensorData(x, y), [2], 0.01, 20, torch.Generator().manual_seed(0), optimizer="adam")[2]
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
