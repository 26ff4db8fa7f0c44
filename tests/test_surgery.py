import pytest
import torch
from torch import nn

from interlearn import surgery as s
from interlearn.errors import ConfigError, ShapeError


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 16),
        nn.ReLU(),
        nn.Linear(16, 10),
    )


def test_select_by_glob_and_module_name():
    m = _cnn()
    assert s.select_params(m, "*.bias") == ["0.bias", "1.bias", "4.bias", "6.bias"]
    assert s.select_params(m, "4") == ["4.weight", "4.bias"]
    assert s.select_modules(m, "[46]") == ["4", "6"]


def test_unknown_name_lists_closest():
    with pytest.raises(ConfigError, match=r"'classifier' matches nothing; closest names"):
        s.freeze(_cnn(), "classifier")


def test_freeze_unfreeze_and_bn_stays_eval():
    m = _cnn()
    frozen = s.freeze(m, ["0", "1"])
    assert frozen == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert s.count_params(m, trainable_only=True) == s.count_params(m) - 48
    m.train()
    stats = m[1].running_mean.clone()
    m(torch.randn(8, 1, 8, 8))
    assert torch.equal(stats, m[1].running_mean)
    s.unfreeze(m, "1")
    m.train()
    m(torch.randn(8, 1, 8, 8))
    assert not torch.equal(stats, m[1].running_mean)


def test_replace_last_checks_shapes():
    m = _cnn()
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ShapeError, match=r"expects 20 input features but the features have shape \(2, 16\)"):
        s.replace_last(m, 1, nn.Linear(20, 3), example_input=x)
    new = s.replace_last(m, 1, nn.Linear(16, 3), example_input=x)
    assert new(x).shape == (2, 3) and new[0] is m[0]
    with pytest.raises(ConfigError, match="k=9"):
        s.replace_last(m, 9, nn.Linear(16, 3))


def test_replace_module_by_name():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(5, 7), nn.ReLU())
            self.head = nn.Linear(7, 2)

        def forward(self, x):
            return self.head(self.body(x))

    net = Net()
    with pytest.raises(ShapeError, match="expects 6 input features"):
        s.replace_module(net, "head", nn.Linear(6, 4), example_input=torch.randn(3, 5))
    old = s.replace_module(net, "head", nn.Linear(7, 4), example_input=torch.randn(3, 5))
    assert isinstance(old, nn.Linear) and net(torch.randn(3, 5)).shape == (3, 4)
    with pytest.raises(ConfigError, match="no module named 'haed'"):
        s.replace_module(net, "haed", nn.Linear(7, 4))


def test_param_groups_and_layerwise_decay():
    m = _cnn()
    groups = s.param_groups(m, {"6": 1e-2, "4": 1e-3}, default_lr=1e-4)
    assert [g["lr"] for g in groups] == [1e-2, 1e-3, 1e-4]
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    lw = s.layerwise_groups(m, 1.0, 0.5)
    assert [g["lr"] for g in lw] == [0.125, 0.25, 0.5, 1.0]
    with pytest.raises(ConfigError, match="decay=1.5"):
        s.layerwise_groups(m, 1.0, 1.5)


def test_trainable_table_counts():
    m = _cnn()
    s.freeze(m, "0")
    table = s.trainable_table(m)
    assert "Conv2d" in table and "total" in table
    assert f"{s.count_params(m):,}" in table.splitlines()[-1]
    assert s.leaf_layers(m) == ["0", "1", "4", "6"]


def test_replace_last_keeps_layer_names():
    from collections import OrderedDict

    m = nn.Sequential(OrderedDict(fc1=nn.Linear(3, 4), act=nn.ReLU(), fc2=nn.Linear(4, 2)))
    new = s.replace_last(m, 1, nn.Sequential(OrderedDict(head=nn.Linear(4, 5))))
    assert [n for n, _ in new.named_children()] == ["fc1", "act", "head"]
    with pytest.raises(ConfigError, match="clashes"):
        s.replace_last(m, 1, nn.Sequential(OrderedDict(fc1=nn.Linear(4, 5))))
