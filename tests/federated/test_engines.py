"""The vectorized engine equals the sequential reference (within 1e-5) on MLP, CNN and the
character LSTM, for every client optimizer; unsupported models get a clear error."""

import pytest
import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData
from interlearn.federated.client import LocalSGD, ScaffoldClient
from interlearn.federated.engines import get_engine
from interlearn.federated.engines.sequential import SequentialEngine
from interlearn.federated.engines.vectorized import VectorizedEngine
from interlearn.federated.params import model_params
from interlearn.federated.sampling import client_generator
from interlearn.models.cnn import mnist_cnn
from interlearn.models.mlp import mlp

from fl_helpers import cohort

SIZES = [13, 30, 7, 25]  # unequal: exercises the padding and the active-client masks


def _both(model, clients, cu, extras=None, states=None, chunk=None, fast=False):
    params = model_params(model)
    outs = []
    for eng in (SequentialEngine(), VectorizedEngine(chunk_size=chunk, fast_path=fast)):
        gens = [client_generator(0, 1, d.client_id) for d in clients]
        outs.append(eng.run_cohort(model, cu, params, clients, dict(states or {}), dict(extras or {}), gens))
    return params, outs


def _assert_equal(params, outs, atol=1e-5):
    seq, vec = outs
    assert [r.client_id for r, _ in seq] == [r.client_id for r, _ in vec]
    for (a, sa), (b, sb) in zip(seq, vec):
        assert a.weight == b.weight and a.metrics["steps"] == b.metrics["steps"]
        assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], abs=1e-5)
        for k in params:
            torch.testing.assert_close(a.update[k], b.update[k], atol=atol, rtol=0)
        for k in a.extras:
            torch.testing.assert_close(a.extras[k], b.extras[k], atol=atol, rtol=0)
        if sa is not None:
            for k in sa:
                torch.testing.assert_close(sa[k], sb[k], atol=atol, rtol=0)


CLIENT_UPDATES = {
    "sgd": LocalSGD(epochs=2, batch_size=8, lr=0.1),
    "momentum_wd": LocalSGD(epochs=2, batch_size=8, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "fedprox": LocalSGD(epochs=1, batch_size=8, lr=0.1, prox_mu=0.5),
    "adam_steps": LocalSGD(steps=6, batch_size=8, lr=0.01, optimizer="adam"),
    "full_batch": LocalSGD(epochs=3, batch_size=None, lr=0.1),
}


@pytest.mark.parametrize("fast", [False, True], ids=["vmap", "fused_fast_path"])
@pytest.mark.parametrize("name", sorted(CLIENT_UPDATES))
def test_mlp_equal(name, fast):
    _assert_equal(*_both(mlp(8, [16], 3, seed=0), cohort(SIZES), CLIENT_UPDATES[name], fast=fast))


def test_mlp_equal_in_chunks():
    _assert_equal(*_both(mlp(8, [16], 3, seed=0), cohort(SIZES), CLIENT_UPDATES["sgd"], chunk=3))


def test_cnn_equal():
    g = torch.Generator().manual_seed(0)
    clients = [ClientData(i, torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)) for i, n in enumerate(SIZES)]
    model = mnist_cnn(num_classes=4, channels=(3, 5), hidden=12, image_size=8, seed=0)
    _assert_equal(*_both(model, clients, LocalSGD(epochs=1, batch_size=8, lr=0.1, momentum=0.5)))


@pytest.mark.parametrize("output", ["last", "all"])
def test_char_lstm_equal(output):
    from interlearn.models.char_lstm import char_lstm

    g = torch.Generator().manual_seed(0)
    ys = (lambda n: (n,)) if output == "last" else (lambda n: (n, 6))
    clients = [ClientData(i, torch.randint(0, 12, (n, 6), generator=g), torch.randint(0, 12, ys(n), generator=g)) for i, n in enumerate(SIZES)]
    torch.manual_seed(0)
    model = char_lstm(12, embed_dim=4, hidden=16, layers=2, output=output)
    _assert_equal(*_both(model, clients, LocalSGD(epochs=1, batch_size=8, lr=0.5)))


def test_scaffold_equal():
    model = mlp(8, [16], 3, seed=0)
    params = model_params(model)
    g = torch.Generator().manual_seed(1)
    c = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in params.items()}
    states = {1: {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in params.items()}}
    _assert_equal(*_both(model, cohort(SIZES), ScaffoldClient(epochs=2, batch_size=8, lr=0.1), c, states))


def test_frozen_params_stay_put():
    model = mlp(8, [16], 3, seed=0)
    model[1].weight.requires_grad_(False)
    params, outs = _both(model, cohort(SIZES), CLIENT_UPDATES["sgd"])
    _assert_equal(params, outs)
    assert float(outs[1][0][0].update["1.weight"].abs().max()) == 0.0


@pytest.mark.parametrize(
    "model, match",
    [
        (nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)), "BatchNorm1d"),
        (nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.5), nn.Linear(4, 3)), "Dropout"),
    ],
)
def test_unvectorizable_model_suggests_sequential(model, match):
    with pytest.raises(ConfigError, match=f"(?s){match}.*sequential"):
        VectorizedEngine().run_cohort(model, CLIENT_UPDATES["sgd"], model_params(model), cohort([4]), {}, {}, [torch.Generator()])


def test_nn_lstm_suggests_sequential():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 4, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0][:, -1]

    with pytest.raises(ConfigError, match="sequential"):
        VectorizedEngine().run_cohort(M(), CLIENT_UPDATES["sgd"], model_params(M()), cohort([4]), {}, {}, [torch.Generator()])


def test_sequential_runs_batchnorm_and_lstm():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(8)
            self.lstm = nn.LSTM(8, 4, batch_first=True)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(self.lstm(self.bn(x).unsqueeze(1))[0][:, -1])

    m = M()
    params = model_params(m)
    assert "bn.running_mean" in params and "bn.num_batches_tracked" not in params
    outs = SequentialEngine().run_cohort(m, CLIENT_UPDATES["sgd"], params, cohort([10, 12]), {}, {}, [torch.Generator(), torch.Generator()])
    assert float(outs[0][0].update["bn.running_mean"].abs().sum()) > 0  # BN statistics are averaged too


def test_unsupported_client_update_suggests_sequential():
    def my_update(model, params, data, state, extras, gen):  # a custom ClientUpdate
        raise AssertionError("not called")

    with pytest.raises(ConfigError, match="sequential"):
        VectorizedEngine().run_cohort(mlp(8, [4], 3), my_update, {}, cohort([4]), {}, {}, [torch.Generator()])


def test_engine_registry():
    assert get_engine("sequential").name == "sequential"
    assert get_engine("vectorized", chunk_size=4).name == "vectorized"
    with pytest.raises(ConfigError, match="vectorized"):
        get_engine("vectorised")
