import copy

import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import ConfigError
from interlearn.finetune import FinetuneSpec, finetune
from interlearn.forgetting import ForgettingReport, forgetting_table, measure_forgetting, with_head
from interlearn.lora import LoraSpec
from interlearn.tasks import classification
from interlearn.training import evaluate, fit

TASK = classification(2)
CPU = dict(device="cpu", progress=False)


def _blobs(shift, n=200, seed=0):
    """Two Gaussian blobs; ``shift`` moves them so source and target tasks differ."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 4, generator=g) * 0.5
    x[:, 0] += (y * 2 - 1).float() * 2 + shift
    x[:, 1] += (y * 2 - 1).float() * shift
    return TensorData(x, y)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    src, src_test = _blobs(0.0), _blobs(0.0, seed=1)
    fit(base, src, TASK, FitConfig(epochs=20, batch_size=32, lr=1e-2, **CPU))
    tgt, tgt_test = _blobs(3.0, seed=2), _blobs(3.0, seed=3)
    return base, src_test, tgt, tgt_test


def test_head_only_fine_tuning_forgets_nothing(setup):
    base, src_test, tgt, tgt_test = setup
    model = copy.deepcopy(base)
    model[2] = nn.Linear(16, 2)
    r = finetune(model, tgt, TASK, FitConfig(epochs=5, batch_size=32, lr=1e-2, **CPU), FinetuneSpec("last_n", last_n=1))
    rep = measure_forgetting("head", r.model, base, "2", tgt_test, TASK, src_test, TASK, r.trainable_params)
    assert rep.source_before == pytest.approx(evaluate(base, src_test, TASK)["accuracy"])
    assert rep.source_after == rep.source_before and rep.forgetting == 0.0
    assert rep.trainable_params == 16 * 2 + 2


def test_a_destroyed_body_shows_as_forgetting(setup):
    base, src_test, _, tgt_test = setup
    ruined = copy.deepcopy(base)
    with torch.no_grad():
        ruined[0].weight.zero_()
        ruined[0].bias.zero_()  # every input -> the same features -> chance on the source task
    rep = measure_forgetting("ruined", ruined, base, "2", tgt_test, TASK, src_test, TASK)
    assert rep.source_before > 0.9 and rep.source_after < 0.7
    assert rep.forgetting == pytest.approx(rep.source_before - rep.source_after)


def test_with_head_merges_lora_and_leaves_the_model_alone(setup):
    base, src_test, tgt, _ = setup
    model = copy.deepcopy(base)
    r = finetune(
        model,
        tgt,
        TASK,
        FitConfig(epochs=2, batch_size=32, lr=1e-2, **CPU),
        FinetuneSpec("lora", lora=LoraSpec(targets=("0",), r=2, modules_to_save=("2",))),
    )
    view = with_head(r.model, "2", base[2])
    assert isinstance(view, nn.Sequential) and torch.equal(view[2].weight, base[2].weight)
    assert hasattr(r.model, "base_model")  # the fine-tuned PEFT model itself is untouched
    with pytest.raises(ConfigError, match="closest names"):
        measure_forgetting("x", r.model, base, "head", src_test, TASK, src_test, TASK)


def test_table_and_row():
    rep = ForgettingReport("full", 0.9, 0.99, 0.95, 0.04, 100)
    table = forgetting_table([rep])
    assert "| full | 0.9000 | 0.9900 | 0.9500 | +0.0400 | 100 |" in table
    assert rep.as_row() == {
        "accuracy": 0.9,
        "source_before": 0.99,
        "source_after": 0.95,
        "forgetting": 0.04,
        "trainable_params": 100,
    }
