import copy
from collections import OrderedDict

import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import ConfigError, ShapeError
from interlearn.features import cache_status, extract_features, fit_head
from interlearn.surgery import freeze
from interlearn.tasks import classification


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + 2 * (x[:, 2] > 0).long()
    return TensorData(x, y)


def _body():
    # dropout and BatchNorm: both change behaviour between train and eval mode
    torch.manual_seed(0)
    body = nn.Sequential(OrderedDict(fc=nn.Linear(12, 16), bn=nn.BatchNorm1d(16), act=nn.ReLU(), drop=nn.Dropout(0.5)))
    body.bn.running_mean.uniform_(-0.1, 0.1)
    freeze(body)
    return body


class _Noisy(nn.Module):
    def forward(self, x):
        return x + torch.randn_like(x)  # random even in eval mode


def test_extract_features_is_eval_forward_and_restores_mode():
    body, data = _body(), _data()
    body.train()
    feats = extract_features(body, data, batch_size=7)
    assert body.training
    body.eval()
    torch.testing.assert_close(feats.x, body(data.x))
    assert torch.equal(feats.y, data.y)


def test_cached_equals_uncached():
    body, data, val = _body(), _data(), _data(40, seed=1)
    head = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    cfg = FitConfig(epochs=5, batch_size=16, lr=1e-2, device="cpu", seed=3)
    h1, h2 = copy.deepcopy(head), copy.deepcopy(head)
    stats = {k: v.clone() for k, v in body.state_dict().items()}
    cached = fit_head(body, h1, data, classification(4), cfg, val=val, cache=True)
    plain = fit_head(body, h2, data, classification(4), cfg, val=val, cache=False)
    assert cached.cached and not plain.cached and plain.reason == "caching turned off"
    for p, q in zip(h1.parameters(), h2.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for a, b in zip(cached.fit.history, plain.fit.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_accuracy"] == b["val_accuracy"]
    # the frozen body (incl. BatchNorm statistics) did not change on either path
    assert all(torch.equal(v, body.state_dict()[k]) for k, v in stats.items())
    assert not any(torch.equal(p, q) for p, q in zip(h1.parameters(), head.parameters()))


def test_cache_status_reasons():
    body = _body()
    assert cache_status(body, torch.randn(2, 12)) == (True, "")
    assert not cache_status(body, augment=lambda x, g: x)[0]
    assert not cache_status(nn.Linear(3, 3))[0]
    ok, reason = cache_status(_Noisy(), torch.randn(2, 3))
    assert not ok and "random" in reason


def test_fit_head_falls_back_when_augmented():
    body, data = _body(), _data()
    head = nn.Linear(16, 4)
    res = fit_head(
        body, head, data, classification(4), FitConfig(epochs=2, device="cpu"), augment=lambda x, g: x + 0.01
    )
    assert not res.cached and "augment" in res.reason


def test_fit_head_errors():
    data = _data()
    with pytest.raises(ConfigError, match="trainable parameters"):
        fit_head(nn.Linear(12, 16), nn.Linear(16, 4), data, classification(4))
    with pytest.raises(ShapeError, match="expects 5 input features"):
        fit_head(_body(), nn.Linear(5, 4), data, classification(4))
    with pytest.raises(ShapeError, match="expects 5 input features"):
        fit_head(_body(), nn.Linear(5, 4), data, classification(4), cache=False)
