import json
from collections import OrderedDict

import pytest
import torch
from torch import nn

from interlearn.budgets import BudgetConfig, finetune_at, label_budgets, sample_per_class
from interlearn.config import FitConfig, step_config
from interlearn.data import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.tasks import classification


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(fc1=nn.Linear(6, 16), act1=nn.ReLU(), fc2=nn.Linear(16, 8), act2=nn.ReLU(), out=nn.Linear(8, 3))
    )


def _blobs(per_class, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3 * per_class) % 3
    centers = torch.eye(3, 6) * 4 + shift
    return TensorData(centers[y] + torch.randn(len(y), 6, generator=g), y)


def test_step_config_gives_the_fixed_budget():
    cfg = step_config(5, 300, 32, 1e-3)
    assert cfg.batch_size == 5 and cfg.epochs == 300
    cfg = step_config(250, 300, 32, 1e-3)
    assert cfg.batch_size == 32 and cfg.epochs * 8 == pytest.approx(300, abs=4)


def test_sample_per_class():
    data = _blobs(10, 0)
    sub = sample_per_class(data, 4, seed=3)
    assert torch.bincount(sub.y).tolist() == [4, 4, 4]
    assert torch.equal(sub.x, sample_per_class(data, 4, seed=3).x)
    with pytest.raises(DataError, match="fewer than labels_per_class=11"):
        sample_per_class(data, 11)


def test_finetune_trains_every_layer_with_a_smaller_body_lr():
    base, data = _mlp(), _blobs(6, 1)
    model = finetune_at(
        base, 2, data, classification(3), FitConfig(epochs=5, batch_size=6, lr=1e-2, device="cpu"), lr_scale=0.1
    )
    assert not torch.equal(model[0].weight, base.fc1.weight)  # the pretrained layer moved ...
    assert (model[0].weight - base.fc1.weight).abs().max() < 0.1  # ... but only a little
    assert all(p.requires_grad for p in model.parameters())


def test_label_budgets_report(tmp_path):
    cfg = BudgetConfig(labels_per_class=(1, 3), seeds=(0, 1), steps=20, folds=3)
    report = label_budgets(
        _mlp,
        _blobs(40, 0),
        classification(3),
        _blobs(20, 1, 0.2),
        _blobs(20, 2, 0.2),
        classification(3),
        cfg,
        pretrain_config=FitConfig(epochs=3, device="cpu"),
    )
    assert len(report.runs) == 2 * 2 * 3
    curve = report.curve()
    assert [r["labels_per_class"] for r in curve] == [1, 3]
    for r in curve:
        for m in ("scratch", "transfer", "finetune"):
            assert len(r[f"{m}_runs"]) == 2 and r[f"{m}_std"] >= 0
            assert r[f"{m}_mean"] == pytest.approx(sum(r[f"{m}_runs"]) / 2)
    assert {a["method"] for a in report.autocuts} == {"rule", "cv"}
    table = report.table()
    assert table.count("\n") == 3 and "±" in table
    png = report.plot(tmp_path / "b.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    json.dumps(report.to_dict())


def test_budget_config_validation():
    with pytest.raises(ConfigError, match="choose from"):
        BudgetConfig(methods=("scratch", "qlora"))  # lora is a method since advise; qlora is not
    with pytest.raises(ConfigError, match="labels_per_class"):
        BudgetConfig(labels_per_class=(0,))
