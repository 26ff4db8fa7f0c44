import copy

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import CheckpointError, ConfigError
from interlearn.lora import LoraSpec, apply_lora, is_lora, load_adapter, lora_targets, merge_lora, save_adapter
from interlearn.tasks import classification
from interlearn.training import fit


class Net(nn.Module):
    """A custom (non-Sequential, non-HF) module with a conv, nested blocks and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.body = nn.Sequential(nn.Linear(4 * 4 * 4, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 16), nn.ReLU()))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.act(self.conv(x)).flatten(1)))


def _net(seed=0):
    torch.manual_seed(seed)
    return Net()


def _data(n=48):
    g = torch.Generator().manual_seed(0)
    return TensorData(torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g))


def test_targets_resolve_globs_to_linear_and_conv_only():
    m = _net()
    assert lora_targets(m, ["conv"]) == ["conv"]
    assert lora_targets(m, ["body"]) == ["body.0", "body.2.0"]  # a container selects its layers
    assert lora_targets(m, ["body.*", "conv"]) == ["body.0", "body.2.0", "conv"]


def test_pattern_matching_nothing_is_an_error_with_closest_names():
    with pytest.raises(ConfigError, match=r"'bodyy'.*matches nothing; closest names: 'body'"):
        apply_lora(_net(), LoraSpec(targets=("bodyy",)))
    with pytest.raises(ConfigError, match=r"matches no nn.Linear/nn.Conv2d.*ReLU.*adaptable layers"):
        apply_lora(_net(), LoraSpec(targets=("act",)))


def test_modules_to_save_trains_exactly_the_named_modules():
    # Our promise: the modules named in modules_to_save, and no others, train in full. PEFT has
    # matched names by suffix in some releases ("2" also wrapped "12") and not in others; whatever
    # it does, apply_lora either keeps the promise or refuses with a ConfigError that says why.
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(13)])  # "2" is a suffix of "12"
    try:
        m = apply_lora(model, LoraSpec(targets=("0",), modules_to_save=("2",)))
    except ConfigError as exc:
        assert "not suffixes" in str(exc)
        return
    in_full = {
        n.split(".modules_to_save.")[0].removeprefix("base_model.model.")
        for n, p in m.named_parameters()
        if p.requires_grad and "lora_" not in n
    }
    assert in_full == {"2"}
    frozen = [n for n, p in m.named_parameters() if not p.requires_grad and n.startswith("base_model.model.12.")]
    assert frozen, "module 12 must stay frozen"


def test_only_adapters_and_saved_modules_train():
    m = apply_lora(_net(), LoraSpec(targets=("conv", "body.*"), r=2, modules_to_save=("head",)))
    assert is_lora(m) and isinstance(m, PeftModel)
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    # adapters, and the head trained in full (however PEFT names its copy of the head)
    assert trainable and all("lora_" in n or n.startswith("base_model.model.head.") for n in trainable)
    assert any(n.startswith("base_model.model.head.") and "lora_" not in n for n in trainable)
    assert any("conv.lora_A" in n for n in trainable)
    assert m(torch.randn(2, 1, 4, 4)).shape == (2, 3)


def test_exact_names_do_not_match_suffixes():
    # PEFT's list form would treat "0" as a suffix and also adapt "1.0"; our globs must not.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4)), nn.Linear(4, 2))
    m = apply_lora(model, LoraSpec(targets=("0",), r=2))
    adapted = [n for n, mod in m.named_modules() if hasattr(mod, "lora_A")]
    assert adapted == ["base_model.model.0"]


def test_training_moves_adapters_not_base_weights():
    net = _net()
    frozen_before = copy.deepcopy(net.state_dict())
    m = apply_lora(net, LoraSpec(targets=("conv", "body"), r=2, modules_to_save=("head",)))
    fit(m, _data(), classification(3), FitConfig(epochs=3, batch_size=16, lr=1e-2, device="cpu"))
    base = {
        n.replace("base_model.model.", "").replace(".base_layer", ""): p
        for n, p in m.named_parameters()
        if "lora_" not in n and "modules_to_save" not in n and "original_module" not in n
    }
    for name in ("conv.weight", "body.0.weight", "body.2.0.weight"):
        assert torch.equal(base[name], frozen_before[name])
    b = dict(m.named_parameters())["base_model.model.conv.lora_B.default.weight"]
    assert b.abs().sum() > 0  # B starts at zero and has learned


def test_adapter_save_load_roundtrip_is_adapter_only(tmp_path):
    net = _net()
    fresh = copy.deepcopy(net)
    spec = LoraSpec(targets=("body",), r=2, modules_to_save=("head",))
    m = apply_lora(net, spec)
    fit(m, _data(), classification(3), FitConfig(epochs=2, batch_size=16, lr=1e-2, device="cpu"))
    path = save_adapter(m, tmp_path / "a.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        keys = list(fh.keys())
    assert keys and all("lora_" in k or ".head." in k for k in keys)
    assert not any("conv" in k for k in keys)
    x = torch.randn(5, 1, 4, 4)
    m.eval()
    loaded = load_adapter(fresh, path)  # plain base model: adapters rebuilt from the stored spec
    loaded.eval()
    assert torch.allclose(m(x), loaded(x), atol=1e-6)


def test_load_adapter_errors(tmp_path):
    m = apply_lora(_net(), LoraSpec(targets=("body",), r=2))
    path = save_adapter(m, tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_adapter(_net(), tmp_path / "missing.safetensors")
    other = apply_lora(_net(), LoraSpec(targets=("body",), r=4))
    with pytest.raises(CheckpointError, match="shape"):
        load_adapter(other, path)
    elsewhere = apply_lora(_net(), LoraSpec(targets=("conv",), r=2))
    with pytest.raises(CheckpointError, match="keys do not match"):
        load_adapter(elsewhere, path)


def test_merge_gives_the_plain_model_with_the_same_outputs():
    m = apply_lora(_net(), LoraSpec(targets=("conv", "body"), r=2))
    with torch.no_grad():  # give the adapters a non-zero update
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    m.eval()
    x = torch.randn(3, 1, 4, 4)
    want = m(x)
    merged = merge_lora(m)
    assert isinstance(merged, Net) and not is_lora(merged)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert torch.allclose(merged(x), want, atol=1e-5)


def test_bad_specs_and_double_application():
    with pytest.raises(ConfigError, match="rank"):
        LoraSpec(r=0)
    with pytest.raises(ConfigError, match="non-empty list"):
        LoraSpec(targets="body")  # type: ignore[arg-type]
    m = apply_lora(_net(), LoraSpec(targets=("body",)))
    with pytest.raises(ConfigError, match="already has LoRA"):
        apply_lora(m, LoraSpec(targets=("conv",)))
    with pytest.raises(ConfigError, match="both LoRA targets and modules_to_save"):
        apply_lora(_net(), LoraSpec(targets=("head",), modules_to_save=("head",)))
    with pytest.raises(ConfigError, match="no adapters"):
        merge_lora(_net())
