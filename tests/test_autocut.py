from collections import OrderedDict

import pytest
import torch
from torch import nn

from interlearn.autocut import auto_cut, stratified_folds
from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import ConfigError
from interlearn.tasks import classification

CFG = FitConfig(epochs=40, batch_size=16, lr=1e-2, device="cpu")


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(fc1=nn.Linear(6, 16), act1=nn.ReLU(), fc2=nn.Linear(16, 8), act2=nn.ReLU(), out=nn.Linear(8, 3))
    )


def _blobs(per_class=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(3 * per_class) % 3
    centers = torch.tensor([[4.0, 0, 0, 0, 0, 0], [0, 4.0, 0, 0, 0, 0], [0, 0, 4.0, 0, 0, 0]])
    return TensorData(centers[y] + torch.randn(len(y), 6, generator=g), y)


def test_stratified_folds_partition_and_balance():
    y = torch.tensor([0] * 10 + [1] * 5 + [2] * 7)
    folds = stratified_folds(y, 5, seed=1)
    allidx = torch.cat(folds).sort().values
    assert torch.equal(allidx, torch.arange(len(y)))
    for f in folds:
        assert (y[f] == 1).sum() == 1 and (y[f] == 0).sum() == 2
    assert max(len(f) for f in folds) - min(len(f) for f in folds) <= 1
    with pytest.raises(ConfigError, match="folds=1"):
        stratified_folds(y, 1)


def test_auto_cut_scores_every_candidate_and_picks_the_best():
    base, data = _mlp(), _blobs()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    report = auto_cut(base, data, classification(3), config=CFG, folds=4)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())
    assert report.method == "cv" and report.folds == 4
    assert [s.cut for s in report.scores] == [2, 4] and report.scratch is not None and report.scratch.cut == 0
    assert all(len(s.folds) == 4 and 0 <= s.mean <= 1 for s in report.scores)
    best = max(report.scores, key=lambda s: (s.mean, s.cut))
    assert report.chosen == best.cut and report.chosen_name == best.name
    text = report.table()
    assert "chose cut" in text and "(scratch)" in text
    d = report.to_dict()
    assert d["chosen"] == report.chosen and len(d["scores"]) == 2


def test_too_few_labels_falls_back_to_a_stated_rule():
    report = auto_cut(_mlp(), _blobs(per_class=1), classification(3), config=CFG)
    assert report.method == "rule" and report.scores == () and report.scratch is None
    assert report.chosen == 2  # the earlier of the two middle candidates [2, 4]
    assert "cross-validation impossible" in report.note and not report.negative_transfer


def test_negative_transfer_is_reported():
    # A base whose first layer outputs zeros carries no information: every cut that keeps it
    # scores at chance, while training from scratch separates the blobs.
    base = _mlp()
    with torch.no_grad():
        base.fc1.weight.zero_()
        base.fc1.bias.fill_(-1.0)
    report = auto_cut(base, _blobs(), classification(3), config=CFG, folds=4)
    assert report.negative_transfer
    assert report.scratch.mean > max(s.mean for s in report.scores)
    assert "NEGATIVE TRANSFER" in report.note and "NEGATIVE TRANSFER" in report.table()


def test_bad_candidates():
    with pytest.raises(ConfigError, match="no candidate cuts"):
        auto_cut(_mlp(), _blobs(), classification(3), candidates=[0], config=CFG)
    with pytest.raises(ConfigError, match="cut=9"):
        auto_cut(_mlp(), _blobs(), classification(3), candidates=[9], config=CFG)
