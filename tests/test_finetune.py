import copy
import importlib

import pytest
import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import ConfigError
from interlearn.finetune import FINETUNE_STRATEGIES, FinetuneSpec, blocks_of, finetune, register_finetune_strategy
from interlearn.lora import LoraSpec, is_lora
from interlearn.schema import build
from interlearn.tasks import classification

# the module, even if the package re-exports a function named ``finetune``
ft = importlib.import_module("interlearn.finetune")

CFG = FitConfig(epochs=1, batch_size=8, lr=1e-2, device="cpu", progress=False)
TASK = classification(3)


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def _data(n=32):
    g = torch.Generator().manual_seed(0)
    return TensorData(torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def _changed(before, after):
    return {
        n.rsplit(".", 1)[0]
        for n, p in after.named_parameters()
        if not torch.equal(p, dict(before.named_parameters())[n])
    }


@pytest.fixture
def captured(monkeypatch):
    """Record every fit() call a strategy makes (config, groups' lrs, requires_grad per epoch)."""
    calls = []
    real_fit = ft.fit

    def spy(model, train, task, config, **kw):
        call = {"config": config, "lrs": [g["lr"] for g in kw.get("param_groups") or []], "trainable": []}
        hook = kw.get("on_epoch_start")

        def record(epoch, m):
            if hook:
                hook(epoch, m)
            call["trainable"].append(sorted({n.rsplit(".", 1)[0] for n, p in m.named_parameters() if p.requires_grad}))

        calls.append(call)
        return real_fit(model, train, task, config, **{**kw, "on_epoch_start": record})

    monkeypatch.setattr(ft, "fit", spy)
    return calls


def test_registry_lists_known_names_on_error():
    assert set(FINETUNE_STRATEGIES) >= {"full", "last_n", "discriminative", "gradual", "freeze_then_unfreeze", "lora"}
    with pytest.raises(
        ConfigError, match=r"unknown fine-tuning strategy 'fulll'; known fine-tuning strategies: .*'full'"
    ):
        FinetuneSpec("fulll")
    with pytest.raises(ConfigError, match="already registered"):
        register_finetune_strategy("full")(lambda *a: None)


def test_blocks_default_to_layers_with_parameters():
    assert blocks_of(_model()) == ["0", "2", "4"]
    wrapped = nn.Sequential(_model())  # one child: fall back to the leaf layers
    assert blocks_of(wrapped) == ["0.0", "0.2", "0.4"]
    with pytest.raises(ConfigError, match="closest"):
        blocks_of(_model(), ("9",))


def test_full_trains_everything():
    m = _model()
    before = copy.deepcopy(m)
    r = finetune(m, _data(), TASK, CFG, "full")
    assert _changed(before, m) == {"0", "2", "4"} and r.trainable_params == sum(p.numel() for p in m.parameters())


def test_last_n_trains_only_the_last_blocks():
    m = _model()
    before = copy.deepcopy(m)
    r = finetune(m, _data(), TASK, CFG, FinetuneSpec("last_n", last_n=2))
    assert _changed(before, m) == {"2", "4"}
    assert r.trainable_params == 8 * 8 + 8 + 8 * 3 + 3
    with pytest.raises(ConfigError, match="last_n=5 but the model has 3 blocks"):
        finetune(_model(), _data(), TASK, CFG, FinetuneSpec("last_n", last_n=5))


def test_discriminative_learning_rates_decay_towards_the_input(captured):
    finetune(_model(), _data(), TASK, CFG, FinetuneSpec("discriminative", decay=0.5))
    assert captured[0]["lrs"] == pytest.approx([1e-2 * 0.25, 1e-2 * 0.5, 1e-2])


def test_gradual_unfreezes_one_more_block_per_epoch(captured):
    m = _model()
    before = copy.deepcopy(m)
    finetune(m, _data(), TASK, FitConfig(**{**CFG.__dict__, "epochs": 4}), "gradual")
    assert captured[0]["trainable"] == [["4"], ["2", "4"], ["0", "2", "4"], ["0", "2", "4"]]
    assert captured[0]["lrs"] == pytest.approx([1e-2 / 2.6**2, 1e-2 / 2.6, 1e-2])
    assert _changed(before, m) == {"0", "2", "4"}


def test_gradual_first_epoch_moves_only_the_head():
    m = _model()
    before = copy.deepcopy(m)
    finetune(m, _data(), TASK, CFG, "gradual")
    assert _changed(before, m) == {"4"}


def test_freeze_then_unfreeze_follows_fastai(captured):
    m = _model()
    r = finetune(
        m,
        _data(),
        TASK,
        FitConfig(**{**CFG.__dict__, "epochs": 2}),
        FinetuneSpec("freeze_then_unfreeze", freeze_epochs=1, lr_mult=100),
    )
    head, body = captured
    assert head["config"].epochs == 1 and head["trainable"] == [["4"]]
    assert body["config"].epochs == 2 and body["trainable"] == [["0", "2", "4"], ["0", "2", "4"]]
    assert body["lrs"] == pytest.approx([5e-3 / 100, 5e-3 / 10, 5e-3])  # lr/2, spread geometrically over 100x
    assert [h["phase"] for h in r.fit.history] == [0.0, 1.0, 1.0]
    assert [h["epoch"] for h in r.fit.history] == [0, 1, 2]


def test_lora_strategy_defaults_to_body_adapters_and_a_full_head():
    r = finetune(_model(), _data(), TASK, CFG, "lora")
    assert is_lora(r.model)
    r8 = 8  # default rank
    adapters = r8 * (6 + 8) + r8 * (8 + 8)
    assert r.trainable_params == adapters + 8 * 3 + 3
    r2 = finetune(_model(), _data(), TASK, CFG, FinetuneSpec("lora", lora=LoraSpec(targets=("4",), r=2)))
    assert r2.trainable_params == 2 * (8 + 3)


def test_spec_builds_from_a_recipe_mapping():
    spec = build(FinetuneSpec, {"strategy": "lora", "lora": {"targets": ["0"], "r": 4}}, "finetune.strategies[0]")
    assert spec.lora == LoraSpec(targets=("0",), r=4)
    with pytest.raises(ConfigError, match=r"finetune.strategies\[0\].*decay=2"):
        build(FinetuneSpec, {"strategy": "discriminative", "decay": 2}, "finetune.strategies[0]")


@pytest.mark.slow
def test_recipe_runs_end_to_end(tmp_path):
    from interlearn.recipes.finetune import Config, run

    cfg = Config(
        pretrain=FitConfig(epochs=3, batch_size=64, lr=3e-3, device="cpu"),
        finetune=FitConfig(epochs=3, batch_size=16, lr=3e-3, device="cpu"),
        strategies=(FinetuneSpec("last_n"), FinetuneSpec("lora")),
    )
    rows = run(cfg, tmp_path)
    assert set(rows) == {"pretrained", "finetune_last_n", "finetune_lora"}
    assert rows["finetune_last_n"]["forgetting"] == pytest.approx(0.0)  # the body never moved
    assert rows["finetune_lora"]["trainable_params"] < rows["pretrained"]["trainable_params"]
    assert (tmp_path / "forgetting.md").is_file() and (tmp_path / "finetune_lora.adapter.safetensors").is_file()
