"""Closed-form MLP gradients equal autograd's on stacked clients, for every architecture variant
they accept; everything else is refused with the reason."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from interlearn.errors import DataError, ShapeError
from interlearn.federated.client import LocalSGD, ScaffoldClient
from interlearn.federated.engines.closed_form import MLPGradients, closed_form_reason
from interlearn.federated.params import model_params
from interlearn.models.cnn import mnist_cnn
from interlearn.models.mlp import mlp


def _variants():
    torch.manual_seed(0)
    return {
        "two_hidden": (mlp(8, [16, 12], 3), (8,)),
        "logistic": (nn.Sequential(nn.Linear(8, 3)), (8,)),
        "no_bias": (nn.Sequential(nn.Linear(8, 6, bias=False), nn.ReLU(), nn.Linear(6, 3)), (8,)),
        "nested_identity_dropout0": (
            nn.Sequential(nn.Sequential(nn.Linear(8, 6), nn.ReLU()), nn.Identity(), nn.Dropout(0.0), nn.Linear(6, 3)),
            (8,),
        ),
        "relu_on_logits": (nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3), nn.ReLU()), (8,)),
        "flatten_images": (nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 3)), (1, 4, 4)),
    }


@pytest.mark.parametrize("name", sorted(_variants()))
def test_gradients_equal_autograd(name):
    model, shape = _variants()[name]
    assert closed_form_reason(model, LocalSGD()) is None
    c, b = 4, 5
    g = torch.Generator().manual_seed(1)
    params = {
        k: v.unsqueeze(0).repeat(c, *[1] * v.dim()) + 0.01 * torch.randn(c, *v.shape, generator=g)
        for k, v in model_params(model).items()
    }
    x = torch.randn(c, b, *shape, generator=g)
    y = torch.randint(0, 3, (c, b), generator=g)
    losses, grads = MLPGradients(model)(params, x, y)

    def loss(p, xb, yb):
        return F.cross_entropy(functional_call(model, p, (xb,)), yb)

    ref_grads = vmap(grad(loss))(params, x, y)
    torch.testing.assert_close(losses, vmap(loss)(params, x, y), atol=1e-6, rtol=1e-6)
    assert grads.keys() == ref_grads.keys()
    for k in grads:
        torch.testing.assert_close(grads[k], ref_grads[k], atol=1e-6, rtol=1e-5)


REFUSED_MODELS = {
    "conv": lambda: mnist_cnn(),
    "dropout": lambda: nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)),
    "batchnorm": lambda: nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)),
    "tanh": lambda: nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3)),
    "not_sequential": lambda: nn.ModuleList([nn.Linear(8, 3)]),
    "frozen": lambda: nn.Sequential(nn.Linear(8, 6).requires_grad_(False), nn.ReLU(), nn.Linear(6, 3)),
    "flatten_dims": lambda: nn.Sequential(nn.Flatten(0), nn.Linear(8, 3)),
}


@pytest.mark.parametrize("name", sorted(REFUSED_MODELS))
def test_refuses_models_with_a_reason(name):
    reason = closed_form_reason(REFUSED_MODELS[name](), LocalSGD())
    assert isinstance(reason, str) and reason
    if name != "not_sequential":
        with pytest.raises(ShapeError, match="closed-form"):
            MLPGradients(REFUSED_MODELS[name]())


def test_refuses_models_with_hooks():
    model = mlp(8, [6], 3)
    model[1].register_forward_hook(lambda m, i, o: o * 2)
    assert "hooks" in closed_form_reason(model, LocalSGD())


def test_which_client_updates_qualify():
    model = mlp(8, [6], 3)
    assert closed_form_reason(model, LocalSGD(optimizer="adam", momentum=0.0)) is None  # any apply
    assert closed_form_reason(model, ScaffoldClient()) is None
    assert "custom loss" in closed_form_reason(
        model, LocalSGD(loss=lambda o, t: F.mse_loss(o, F.one_hot(t, 3).float()))
    )
    assert "not LocalSGD" in closed_form_reason(model, lambda *a: None)


def test_bad_inputs_are_named():
    model = mlp(8, [6], 3)
    params = {k: v.unsqueeze(0) for k, v in model_params(model).items()}
    grads = MLPGradients(model)
    with pytest.raises(DataError, match="labels range"):
        grads(params, torch.randn(1, 4, 8), torch.tensor([[0, 1, 2, 7]]))
    with pytest.raises(ShapeError, match="8 features"):
        grads(params, torch.randn(1, 4, 9), torch.tensor([[0, 1, 2, 1]]))
