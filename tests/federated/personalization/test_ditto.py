"""Ditto (Li et al. 2021): the personal objective's solution, the client update, engine runs."""

import pytest
import torch
from fl_helpers import blobs, tiny_mlp

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.api import ClientData, ClientUpdate
from interlearn.federated.params import model_params
from interlearn.federated.personalization.ditto import DittoUpdate, ditto_trajectory
from interlearn.federated.personalization.local import personal_heads
from interlearn.federated.server.sampling import client_generator


def _dist(a, b):
    return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5


def test_lambda_interpolates_between_local_training_and_the_global_model():
    model = tiny_mlp()
    w = model_params(model)
    x, y = blobs(60)
    data = TensorData(x, y)
    far = {}
    for lam in (0.0, 1.0, 100.0):
        v = ditto_trajectory(
            model, w, data, lam, [40], lr=0.05, batch_size=10, generator=torch.Generator().manual_seed(0)
        )[40]
        far[lam] = _dist(v, w)
    assert far[0.0] > far[1.0] > far[100.0] and far[100.0] < 0.1 * far[0.0]
    assert set(w) == set(v) and all(
        torch.equal(t, model_params(model)[k]) for k, t in w.items()
    )  # pure: the model is untouched


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
    _res2, state2 = ditto(model, w, data, state, {}, client_generator(0, 2, 3))
    assert _dist(state2, state) > 0  # the personal model continues from its state
    with pytest.raises(ConfigError):
        DittoUpdate(lam=-1)


def test_ditto_runs_in_a_simulation_with_client_states(tmp_path):
    x, y = blobs(120)
    pop = Population(x, y, [list(range(i, 120, 4)) for i in range(4)])
    model = tiny_mlp()
    res = simulate(
        model,
        pop,
        DittoUpdate(lam=0.1, lr=0.1, personal_steps=3),
        get_strategy("fedavg"),
        SimulationConfig(rounds=2, clients_per_round=2, checkpoint_every=2, progress=False, client_eval=False),
        engine="sequential",
        run_dir=tmp_path,
    )
    states = personal_heads(res, run_dir=tmp_path)
    assert states and all(set(s) == set(res.params) for s in states.values())
