"""The fused MLP engine equals the sequential reference (within 1e-5) for plain SGD, momentum,
weight decay and FedProx on cohorts of unequal sizes; it refuses what it cannot run."""

import pytest
import torch
from torch import nn

from interlearn.errors import ConfigError, DataError, ShapeError
from interlearn.federated.client import LocalSGD, ScaffoldClient
from interlearn.federated.engines import get_engine
from interlearn.federated.engines.fused_mlp import FusedMLPEngine, supports, unsupported_reason, vectorized_fast_path
from interlearn.federated.engines.sequential import SequentialEngine
from interlearn.federated.params import model_params
from interlearn.federated.sampling import client_generator
from interlearn.models.cnn import mnist_cnn
from interlearn.models.mlp import mlp

from fl_helpers import cohort

UPDATES = {
    "sgd": LocalSGD(epochs=2, batch_size=8, lr=0.1),
    "sgd_steps": LocalSGD(steps=7, batch_size=5, lr=0.2),
    "full_batch": LocalSGD(epochs=3, batch_size=None, lr=0.1),
    "momentum": LocalSGD(epochs=2, batch_size=8, lr=0.05, momentum=0.9),
    "weight_decay": LocalSGD(epochs=2, batch_size=8, lr=0.1, weight_decay=1e-2),
    "fedprox": LocalSGD(epochs=2, batch_size=8, lr=0.1, prox_mu=0.5),
    "all": LocalSGD(epochs=2, batch_size=6, lr=0.05, momentum=0.5, weight_decay=1e-2, prox_mu=0.3),
}
COHORTS = {"unequal": [13, 30, 7, 25], "one": [11], "equal": [16, 16, 16]}


def _compare(model, clients, cu, chunk=None, atol=1e-5):
    params = model_params(model)
    outs = []
    for eng in (SequentialEngine(), FusedMLPEngine(chunk_size=chunk)):
        gens = [client_generator(0, 1, d.client_id) for d in clients]
        outs.append(eng.run_cohort(model, cu, params, clients, {}, {}, gens))
    seq, fused = outs
    assert [r.client_id for r, _ in seq] == [r.client_id for r, _ in fused]
    for (a, _), (b, _) in zip(seq, fused):
        assert a.weight == b.weight and a.metrics["steps"] == b.metrics["steps"] and a.metrics["examples"] == b.metrics["examples"]
        assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], abs=1e-5)
        assert list(a.update) == list(b.update)
        for k in params:
            torch.testing.assert_close(b.update[k], a.update[k], atol=atol, rtol=0)
    return seq, fused


@pytest.mark.parametrize("name", sorted(UPDATES))
@pytest.mark.parametrize("sizes", sorted(COHORTS))
def test_equals_sequential(name, sizes):
    seq, _ = _compare(mlp(8, [16, 12], 3, seed=0), cohort(COHORTS[sizes]), UPDATES[name])
    assert any(float(r.update["1.weight"].abs().max()) > 1e-3 for r, _ in seq)  # it did train


def test_variants_of_the_architecture():
    # no hidden layer (logistic regression), a Linear without bias, nested Sequential,
    # Identity / Dropout(p=0), ReLU on the logits, and image inputs behind a Flatten
    torch.manual_seed(0)
    models = [
        mlp(8, [], 3, seed=0),
        nn.Sequential(nn.Linear(8, 10, bias=False), nn.ReLU(), nn.Linear(10, 3)),
        nn.Sequential(nn.Sequential(nn.Linear(8, 10), nn.ReLU()), nn.Identity(), nn.Dropout(0.0), nn.Linear(10, 3), nn.ReLU()),
    ]
    for model in models:
        _compare(model, cohort([9, 20, 4]), UPDATES["all"])
        _compare(model, cohort([9, 20, 4]), UPDATES["sgd"])
    g = torch.Generator().manual_seed(0)
    from interlearn.federated.api import ClientData

    images = [ClientData(i, torch.rand(n, 1, 3, 4, generator=g), torch.randint(0, 5, (n,), generator=g)) for i, n in enumerate([6, 14])]
    _compare(mlp(12, [7], 5, seed=1), images, UPDATES["momentum"])


def test_chunks_and_registry():
    model = mlp(8, [16], 3, seed=0)
    _compare(model, cohort([13, 30, 7, 25, 3]), UPDATES["all"], chunk=2)
    assert isinstance(get_engine("fused_mlp", chunk_size=3), FusedMLPEngine)
    with pytest.raises(ConfigError, match="chunk_size"):
        FusedMLPEngine(chunk_size=0)


def test_client_state_passes_through_and_params_are_untouched():
    model = mlp(8, [16], 3, seed=0)
    params = model_params(model)
    before = {k: v.clone() for k, v in params.items()}
    clients = cohort([5, 9])
    state = {"x": torch.ones(2)}
    out = FusedMLPEngine().run_cohort(model, UPDATES["sgd"], params, clients, {1: state}, {}, [torch.Generator().manual_seed(i) for i in range(2)])
    assert out[0][1] is None and out[1][1] is state
    for k in params:
        assert torch.equal(params[k], before[k])


UNSUPPORTED_MODELS = {
    "conv": lambda: mnist_cnn(),
    "dropout": lambda: nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)),
    "batchnorm": lambda: nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)),
    "tanh": lambda: nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3)),
    "not_sequential": lambda: nn.ModuleList([nn.Linear(8, 3)]),
    "frozen": lambda: nn.Sequential(nn.Linear(8, 6).requires_grad_(False), nn.ReLU(), nn.Linear(6, 3)),
    "flatten_dims": lambda: nn.Sequential(nn.Flatten(0), nn.Linear(8, 3)),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED_MODELS))
def test_refuses_models(name):
    model = UNSUPPORTED_MODELS[name]()
    cu = LocalSGD()
    assert not supports(model, cu)
    assert vectorized_fast_path(model, cu) is None
    with pytest.raises(ConfigError, match="fused_mlp engine cannot run this.*vectorized"):
        FusedMLPEngine().run_cohort(model, cu, model_params(model), cohort([5]), {}, {}, [torch.Generator()])


def test_refuses_models_with_hooks():
    model = mlp(8, [6], 3)
    model[1].register_forward_hook(lambda m, i, o: o * 2)
    assert "hooks" in unsupported_reason(model, LocalSGD())


UNSUPPORTED_UPDATES = {
    "adam": LocalSGD(optimizer="adam"),
    "scaffold": ScaffoldClient(),
    "custom_loss": LocalSGD(loss=lambda o, t: torch.nn.functional.mse_loss(o, torch.nn.functional.one_hot(t, 3).float())),
    "plain_callable": lambda *a: None,
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED_UPDATES))
def test_refuses_client_updates(name):
    model = mlp(8, [6], 3)
    assert not supports(model, UNSUPPORTED_UPDATES[name])
    assert vectorized_fast_path(model, UNSUPPORTED_UPDATES[name]) is None
    with pytest.raises(ConfigError, match="fused_mlp"):
        FusedMLPEngine().run_cohort(model, UNSUPPORTED_UPDATES[name], model_params(model), cohort([5]), {}, {}, [torch.Generator()])


def test_fast_path_for_supported():
    eng = vectorized_fast_path(mlp(8, [6], 3), LocalSGD(momentum=0.9, prox_mu=0.1), chunk_size=4)
    assert isinstance(eng, FusedMLPEngine) and eng.chunk_size == 4


def test_bad_inputs():
    model = mlp(8, [6], 3)
    params = model_params(model)
    gens = [torch.Generator()]
    eng = FusedMLPEngine()
    with pytest.raises(DataError, match="no training examples"):
        eng.run_cohort(model, LocalSGD(), params, cohort([0]), {}, {}, gens)
    with pytest.raises(DataError, match="labels range"):
        eng.run_cohort(model, LocalSGD(), params, cohort([5], classes=7), {}, {}, gens)
    with pytest.raises(ShapeError, match="8 features"):
        eng.run_cohort(model, LocalSGD(), params, cohort([5], d=9), {}, {}, gens)
    with pytest.raises(ShapeError, match="params keys"):
        eng.run_cohort(model, LocalSGD(), {k: v for k, v in params.items() if "bias" not in k}, cohort([5]), {}, {}, gens)
    with pytest.raises(ConfigError, match="generators"):
        eng.run_cohort(model, LocalSGD(), params, cohort([5, 6]), {}, {}, gens)


def test_step_by_step_gather_equals_sequential(monkeypatch):
    # past the pre-gather budget the batches are gathered at every step instead
    import interlearn.federated.engines.fused_mlp as fused

    monkeypatch.setattr(fused, "_PREGATHER_ELEMENTS", 0)
    _compare(mlp(8, [16], 3, seed=0), cohort(COHORTS["unequal"]), UPDATES["all"])
    _compare(mlp(8, [16], 3, seed=0), cohort(COHORTS["unequal"]), UPDATES["sgd"])
