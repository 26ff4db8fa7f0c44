import pytest
import torch
from fl_helpers import cohort, tiny_mlp
from torch import nn

from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData
from interlearn.federated.client import LocalSGD, ScaffoldClient, batch_schedule
from interlearn.federated.params import model_params


def test_batch_schedule_epochs_and_steps():
    g = torch.Generator().manual_seed(0)
    b = batch_schedule(10, 4, 2, None, g)
    assert [len(x) for x in b] == [4, 4, 2, 4, 4, 2]
    assert sorted(torch.cat(b[:3]).tolist()) == list(range(10))
    b = batch_schedule(10, 4, 1, 5, torch.Generator().manual_seed(0))
    assert [len(x) for x in b] == [4, 4, 2, 4, 4]
    assert [len(x) for x in batch_schedule(10, None, 3, None, g)] == [10, 10, 10]


def test_local_sgd_equals_hand_written_loop():
    model = tiny_mlp()
    params = model_params(model)
    data = cohort([23])[0]
    cu = LocalSGD(epochs=2, batch_size=5, lr=0.1, momentum=0.9)
    res, state = cu(model, params, data, None, {}, torch.Generator().manual_seed(3))
    assert state is None and res.weight == 23.0 and res.metrics["steps"] == 10
    # reference: the same batches with torch.optim.SGD on a fresh copy
    ref = tiny_mlp()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for idx in batch_schedule(23, 5, 2, None, torch.Generator().manual_seed(3)):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(data.x[idx]), data.y[idx]).backward()
        opt.step()
    for k, v in model_params(ref).items():
        torch.testing.assert_close(params[k] + res.update[k], v)


def test_fedprox_pulls_towards_global():
    model = tiny_mlp()
    params = model_params(model)
    data = cohort([40])[0]
    norms = []
    for mu in (0.0, 10.0):
        res, _ = LocalSGD(epochs=3, batch_size=8, lr=0.1, prox_mu=mu)(
            model, params, data, None, {}, torch.Generator().manual_seed(0)
        )
        norms.append(sum(float(v.norm() ** 2) for v in res.update.values()))
    assert norms[1] < norms[0]


def test_scaffold_client_option_ii():
    model = tiny_mlp()
    params = model_params(model)
    data = cohort([12])[0]
    g = torch.Generator().manual_seed(0)
    c = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in params.items()}
    ci = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in params.items()}
    lr = 0.05
    cu = ScaffoldClient(epochs=1, batch_size=4, lr=lr)
    res, new_ci = cu(model, params, data, ci, c, torch.Generator().manual_seed(1))
    K = res.metrics["steps"]
    assert K == 3
    # reference: y <- y - lr (g(y) - c_i + c), then c_i+ = c_i - c + (x - y) / (K lr)
    ref = tiny_mlp()
    for idx in batch_schedule(12, 4, 1, None, torch.Generator().manual_seed(1)):
        ref.zero_grad()
        nn.functional.cross_entropy(ref(data.x[idx]), data.y[idx]).backward()
        with torch.no_grad():
            for k, p in ref.named_parameters():
                p -= lr * (p.grad - ci[k] + c[k])
    y = model_params(ref)
    for k in params:
        torch.testing.assert_close(res.update[k], y[k] - params[k])
        want = ci[k] - c[k] + (params[k] - y[k]) / (K * lr)
        torch.testing.assert_close(new_ci[k], want)
        torch.testing.assert_close(res.extras[k], want - ci[k])


def test_config_errors():
    with pytest.raises(ConfigError):
        LocalSGD(lr=0)
    with pytest.raises(ConfigError):
        LocalSGD(batch_size=0)
    with pytest.raises(ConfigError):
        LocalSGD(optimizer="rmsprop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="plain SGD"):
        ScaffoldClient(momentum=0.9)
    model = tiny_mlp()
    with pytest.raises(ConfigError, match="scaffold"):
        ScaffoldClient()(model, model_params(model), cohort([4])[0], None, {}, torch.Generator())
    with pytest.raises(DataError, match="no training examples"):
        LocalSGD()(
            model,
            model_params(model),
            ClientData(3, torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)),
            None,
            {},
            torch.Generator(),
        )
