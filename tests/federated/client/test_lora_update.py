"""Federated LoRA on a tiny randomly initialised BERT: only adapter tensors travel, the frozen
base never changes, and federated rounds fit a task the base cannot solve alone."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("peft", reason="federated LoRA needs the peft extra")
transformers = pytest.importorskip("transformers", reason="the text model needs the text extra")

import dataclasses  # noqa: E402

from interlearn.errors import ConfigError, ShapeError  # noqa: E402
from interlearn.federated.client import LocalSGD  # noqa: E402
from interlearn.federated.client.lora_update import ATTENTION_LORA, TextClassifier, adapter_params, peft_state_dict  # noqa: E402
from interlearn.federated.population import Population  # noqa: E402
from interlearn.federated.server.comm import params_bytes  # noqa: E402
from interlearn.federated.server.evaluate import evaluate_params  # noqa: E402
from interlearn.federated.server.simulation import SimulationConfig, simulate  # noqa: E402
from interlearn.federated.strategies import get_strategy  # noqa: E402
from interlearn.lora import apply_lora  # noqa: E402


def _tiny_classifier(num_labels: int = 2) -> TextClassifier:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return TextClassifier(transformers.BertModel(cfg), 32, num_labels)


def add_lora(model, **options):
    """The attention-query/value adapters with the head trained in full, at another rank/alpha."""
    return apply_lora(model, dataclasses.replace(ATTENTION_LORA, **options))


def _task(n: int = 160) -> tuple[torch.Tensor, torch.Tensor]:
    """Label 1 when token 7 occurs in the sequence (tokens 1..39, 0 is padding)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randint(8, 40, (n, 8), generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(0, 8, (n,), generator=g)
    x[y == 1, pos[y == 1]] = 7
    x[:, 6:][torch.rand(n, 2, generator=g) < 0.5] = 0  # some padding
    return x, y


def test_only_adapters_and_head_are_exchanged():
    base = _tiny_classifier()
    full = params_bytes(adapter_params(base))
    model = add_lora(base, r=2, alpha=4)
    params = adapter_params(model)
    assert params and all(("lora_" in k) or ("modules_to_save" in k) for k in params)
    assert params_bytes(params) < 0.2 * full
    exported = peft_state_dict(model, params)  # PEFT's own adapter format
    assert len(exported) == len(params) and params_bytes(exported) == params_bytes(params)
    assert all(".default." not in k for k in exported)


def test_federated_lora_learns_and_keeps_the_base_frozen():
    model = add_lora(_tiny_classifier(), r=4, alpha=8)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k and "modules_to_save" not in k}
    x, y = _task()
    pop = Population(x[:120], y[:120], [torch.arange(i * 30, (i + 1) * 30) for i in range(4)])
    start = adapter_params(model)
    before = evaluate_params(model, start, x[120:], y[120:])["accuracy"]
    result = simulate(
        model,
        pop,
        LocalSGD(epochs=3, batch_size=10, lr=3e-2, optimizer="adam"),
        get_strategy("fedavg"),
        SimulationConfig(rounds=4, clients_per_round=4, seed=0, progress=False),
        test=(x[120:], y[120:]),
        initial_params=start,
    )
    assert set(result.params) == set(start)
    assert result.final_accuracy >= max(before + 0.2, 0.75)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
    # Per-round traffic is the adapter's size, not the model's.
    per_client_up = result.history[0]["bytes_up"] / result.history[0]["reported"]
    assert per_client_up <= params_bytes(start) * 1.01


def test_bad_lora_config():
    with pytest.raises(ConfigError, match="r=0"):
        add_lora(_tiny_classifier(), r=0)
    with pytest.raises(ConfigError, match="'qkv_proj' matches nothing"):
        add_lora(_tiny_classifier(), targets=("qkv_proj",))
    with pytest.raises(ConfigError, match="'query' matches nothing"):  # a suffix is not a name: no silent suffix match
        add_lora(_tiny_classifier(), targets=("query",))
    with pytest.raises(ConfigError, match="num_labels"):
        TextClassifier(torch.nn.Identity(), 4, 1)


def test_unfrozen_base_is_refused():
    model = add_lora(_tiny_classifier(), r=2)
    next(p for n, p in model.named_parameters() if "word_embeddings" in n).requires_grad_(True)
    with pytest.raises(ShapeError, match="modules_to_save"):
        adapter_params(model)
