"""Validation-selected personalization: choices use validation only, global is always allowed."""

import pytest
import torch
from fl_helpers import tiny_mlp

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.params import model_params
from interlearn.federated.personalization.select import (
    SelectConfig,
    interpolate_params,
    personalize_validated,
    plot_gains,
)
from interlearn.federated.server.evaluate import params_accuracy


def _user(shift, n, seed):
    """Class = argmax of the first 3 features, relabelled by a per-user cyclic shift."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return TensorData(x, (x[:, :3].argmax(1) + shift) % 3)


def _global(seed=0):
    model = tiny_mlp(seed)
    data = _user(0, 400, 99)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(model(data.x), data.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, model_params(model)


def _score(model, params, data):
    return params_accuracy(model, params, data)


CFG = SelectConfig(steps=(0, 10, 40), alphas=(0.0, 0.5, 1.0), lams=(0.1,), lr=0.3, batch_size=16)


def test_users_unlike_the_global_model_adapt_and_like_it_keep_it():
    model, w = _global()
    users = [
        ("shifted", _user(1, 120, 1), _user(1, 60, 2), _user(1, 60, 3)),
        ("same", _user(0, 120, 4), _user(0, 60, 5), _user(0, 60, 6)),
    ]
    report, kept = personalize_validated(model, w, users, _score, CFG, keep=("shifted",))
    shifted, _same = report.users
    for m in ("finetune", "interpolate", "ditto", "best"):
        assert shifted.chosen[m]["test"] > shifted.global_test + 0.3, m  # a relabelled user gains a lot
    assert shifted.chosen["finetune"]["setting"]["steps"] > 0
    s = report.summary("finetune")
    assert s["users"] == 2 and s["median_gain"] > 0 and 0.5 <= s["improved_fraction"] <= 1
    assert set(kept["shifted"]) == {"finetune", "interpolate", "ditto", "best"}
    assert _score(model, kept["shifted"]["best"], users[0][3]) == shifted.chosen["best"]["test"]
    assert "worse" in s and report.to_dict()["users"][0]["user"] == "shifted"


def test_selection_never_reads_the_test_split():
    """Swapping a user's test split for another changes reported scores, not the choices."""
    model, w = _global()
    a = ("u", _user(1, 120, 1), _user(1, 60, 2), _user(1, 60, 3))
    b = ("u", _user(1, 120, 1), _user(1, 60, 2), _user(2, 60, 7))
    ra, _ = personalize_validated(model, w, [a], _score, CFG)
    rb, _ = personalize_validated(model, w, [b], _score, CFG)
    for m in ra.methods():
        assert ra.users[0].chosen[m]["setting"] == rb.users[0].chosen[m]["setting"]
        assert ra.users[0].chosen[m]["val"] == rb.users[0].chosen[m]["val"]
    assert ra.users[0].chosen["finetune"]["test"] != rb.users[0].chosen["finetune"]["test"]


def test_interpolation_and_errors(tmp_path):
    g = {"w": torch.zeros(2), "n": torch.tensor([3])}
    mix = interpolate_params(g, {"w": torch.ones(2), "n": torch.tensor([5])}, 0.25)
    assert torch.allclose(mix["w"], torch.full((2,), 0.25)) and mix["n"].item() == 3
    model, w = _global()
    with pytest.raises(DataError, match="validation"):
        personalize_validated(
            model,
            w,
            [("x", _user(0, 10, 0), TensorData(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)), _user(0, 10, 1))],
            _score,
            CFG,
        )
    with pytest.raises(ConfigError, match="methods"):
        SelectConfig(methods=("nope",))
    with pytest.raises(ConfigError, match="trainable"):
        personalize_validated(
            model,
            w,
            [("x", _user(0, 10, 0), _user(0, 10, 1), _user(0, 10, 2))],
            _score,
            SelectConfig(trainable=("head.*",)),
        )
    report, _ = personalize_validated(model, w, [("x", _user(1, 40, 0), _user(1, 20, 1), _user(1, 20, 2))], _score, CFG)
    assert plot_gains(report, tmp_path / "g.png", extra={"fedper": [0.1]}).stat().st_size > 1000


def test_a_separate_selection_criterion_ranks_candidates():
    """``select`` decides on validation; ``score`` only reports (here: select prefers the global model)."""
    model, w = _global()
    users = [("shifted", _user(1, 120, 1), _user(1, 60, 2), _user(1, 60, 3))]
    prefer_global = lambda m, p, d: -sum(float((p[k] - w[k]).abs().sum()) for k in w)
    report, _ = personalize_validated(model, w, users, _score, CFG, select=prefer_global)
    u = report.users[0]
    assert all(u.chosen[m]["test"] == u.global_test for m in report.methods())
    assert u.chosen["finetune"]["setting"] == {"steps": 0}


def test_the_validated_method_is_chosen_on_validation_only():
    model, w = _global()
    users = [
        ("a", _user(1, 120, 1), _user(1, 60, 2), _user(1, 60, 3)),
        ("b", _user(2, 120, 4), _user(2, 60, 5), _user(2, 60, 6)),
    ]
    report, _ = personalize_validated(model, w, users, _score, CFG)
    m = report.validated_method()
    means = {k: report.summary(k)["val_metric_mean"] for k in report.methods()}
    assert m in report.methods() and means[m] == max(means.values())
    assert report.to_dict()["validated_method"] == m
