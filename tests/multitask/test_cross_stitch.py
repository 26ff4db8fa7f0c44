import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.errors import ConfigError
from interlearn.multitask import CrossStitch, evaluate_multitask, heads_for, lenet_stages, lenet_trunk, train_multitask
from interlearn.multitask.cross_stitch import stitch_init
from interlearn.multitask.data import DIGITS_TASKS, MULTIMNIST_TASKS, load_digits_multitask


def _stages():
    return [nn.Sequential(nn.Linear(64, 32), nn.ReLU()), nn.Sequential(nn.Linear(32, 16), nn.ReLU())]


def _model(self_weight=0.9):
    torch.manual_seed(0)
    return CrossStitch(_stages, heads_for(DIGITS_TASKS.tasks, 16), self_weight=self_weight)


def test_stitch_init_follows_the_paper():
    assert torch.equal(stitch_init(2), torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    a = stitch_init(3, 0.8)
    assert torch.allclose(a.sum(1), torch.ones(3)) and a[0, 1].item() == pytest.approx(0.1)
    assert torch.equal(stitch_init(1), torch.ones(1, 1))
    with pytest.raises(ConfigError, match="self_weight=1.5"):
        stitch_init(2, 1.5)


def test_one_column_per_task_and_shared_features():
    model = _model()
    x = torch.randn(5, 64)
    feats = model.shared(x)
    assert feats.shape == (5, 3, 16)
    out = model(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"digit": (5, 10), "parity": (5, 2), "ge5": (5, 2)}
    assert len(model.trunk.columns) == 3 and len(model.trunk.stitches) == 2
    shared = {id(p) for p in model.shared_parameters()}
    assert all(id(p) in shared for p in model.trunk.stitches)
    assert not shared & {id(p) for p in model.task_parameters("digit")}


def test_identity_stitches_keep_the_columns_independent():
    """alpha = I: a task's loss reaches only its own column; 0.9/0.1 stitches share gradient."""
    for self_weight, shared_grad in ((1.0, False), (0.9, True)):
        model = _model(self_weight)
        model(torch.randn(8, 64))["digit"].sum().backward()
        other = model.trunk.columns[1][0][0].weight.grad
        assert (other is not None and other.abs().sum() > 0) == shared_grad
        assert model.trunk.columns[0][0][0].weight.grad.abs().sum() > 0


def test_bad_stages_are_refused():
    with pytest.raises(ConfigError, match="no stages"):
        CrossStitch(list, heads_for(DIGITS_TASKS.tasks, 16))
    calls = iter([[nn.Linear(64, 16)], [nn.Linear(64, 16), nn.ReLU()], [nn.Linear(64, 16)]])
    with pytest.raises(ConfigError, match="same stack"):
        CrossStitch(lambda: next(calls), heads_for(DIGITS_TASKS.tasks, 16))
    with pytest.raises(ConfigError, match="at least one head"):
        CrossStitch(_stages, {})


@pytest.mark.parametrize("method", ["equal", "mgda_ub", "gradnorm"])
def test_cross_stitch_trains_and_learns_its_stitches(method):
    train, test = load_digits_multitask()
    model = _model()
    before = [a.clone() for a in model.stitch_matrices()]
    train_multitask(
        model, train, DIGITS_TASKS, method, FitConfig(epochs=12, batch_size=64, lr=3e-3, device="cpu", amp=False)
    )
    metrics = evaluate_multitask(model, test, DIGITS_TASKS)
    assert min(m["accuracy"] for m in metrics.values()) > 0.88
    assert any(not torch.equal(a, b) for a, b in zip(before, model.stitch_matrices(), strict=True))


def test_lenet_stages_match_the_trunk():
    torch.manual_seed(0)
    stages = lenet_stages(28, 50, dropout=0.5)
    torch.manual_seed(0)
    trunk = lenet_trunk(28, 50, dropout=0.5)
    x = torch.randn(2, 1, 28, 28)
    seq = nn.Sequential(*stages).eval()
    assert torch.equal(seq(x), trunk.eval()(x))
    model = CrossStitch(lambda: lenet_stages(28, 50), heads_for(MULTIMNIST_TASKS.tasks, 50, hidden=50))
    assert model.shared(x).shape == (2, 2, 50)
    with pytest.raises(ConfigError, match="in_size=8"):
        lenet_stages(8)
