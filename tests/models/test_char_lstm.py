"""The character LSTM: shapes, equality with nn.LSTM, vmap == per-client, on-device variant."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from interlearn.errors import ConfigError, ShapeError
from interlearn.models.char_lstm import (
    CharLSTMConfig,
    LSTMLayer,
    char_lstm,
    next_char_accuracy,
    next_char_loss,
)
from interlearn.models.femnist_cnn import femnist_cnn

V = 12


def test_literature_shape_and_outputs():
    m = char_lstm(80)
    # 8-dim embedding, two LSTM layers of 256, dense to the vocabulary
    assert m.embed.weight.shape == (80, 8)
    assert [layer.hidden for layer in m.lstm] == [256, 256]
    assert (
        sum(p.numel() for p in m.parameters())
        == 80 * 8 + (8 * 1024 + 1024 + 256 * 1024) + (256 * 1024 + 1024 + 256 * 1024) + 256 * 80 + 80
    )
    small = char_lstm(V, hidden=16)
    x = torch.randint(0, V, (3, 7), dtype=torch.uint8)
    assert small(x).shape == (3, V)
    every = char_lstm(V, hidden=16, output="all")
    every.load_state_dict(small.state_dict())
    out = every(x)
    assert out.shape == (3, V, 7)
    torch.testing.assert_close(out[:, :, -1], small(x))
    with pytest.raises(ShapeError):
        small(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError):
        CharLSTMConfig(vocab_size=0)
    with pytest.raises(ConfigError):
        CharLSTMConfig(vocab_size=5, output="middle")


def test_gates_match_torch_lstm():
    """Explicit gates compute exactly what nn.LSTM computes with the same weights."""
    m = char_lstm(V, embed_dim=4, hidden=6, layers=2)
    ref = nn.LSTM(4, 6, num_layers=2, batch_first=True)
    with torch.no_grad():
        for k, layer in enumerate(m.lstm):
            getattr(ref, f"weight_ih_l{k}").copy_(layer.ih.weight)
            getattr(ref, f"bias_ih_l{k}").copy_(layer.ih.bias)
            getattr(ref, f"weight_hh_l{k}").copy_(layer.hh.weight)
            getattr(ref, f"bias_hh_l{k}").zero_()
    x = torch.randint(0, V, (2, 9))
    emb = m.embed(x)
    expected, _ = ref(emb)
    torch.testing.assert_close(m.features(x), expected[:, -1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("output", ["last", "all"])
def test_vmap_grad_equals_per_client(output):
    """The vectorized engine's building block: vmap over stacked client weights and data gives
    the gradients each client computes alone (within 1e-5)."""
    torch.manual_seed(0)
    m = char_lstm(V, hidden=16, output=output)
    params = {k: v.detach() for k, v in m.named_parameters()}
    clients = 3
    stacked = {k: torch.stack([v + 0.01 * torch.randn_like(v) for _ in range(clients)]) for k, v in params.items()}
    x = torch.randint(0, V, (clients, 5, 10), dtype=torch.uint8)
    y = torch.randint(0, V, (clients, 5) if output == "last" else (clients, 5, 10))

    def loss(p, xb, yb):
        return next_char_loss(functional_call(m, p, (xb,)), yb)

    batched = vmap(grad(loss))(stacked, x, y)
    for c in range(clients):
        single = grad(loss)({k: v[c] for k, v in stacked.items()}, x[c], y[c])
        for k in params:
            torch.testing.assert_close(batched[k][c], single[k], atol=1e-5, rtol=1e-5)


def test_accuracy_counts_every_predicted_character():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]).transpose(1, 2)  # (1, V=2, T=2)
    assert next_char_accuracy(logits, torch.tensor([[0, 0]])) == 0.5


def test_femnist_cnn_matches_leaf_layout():
    m = femnist_cnn()
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 62)
    assert m(torch.zeros(2, 784)).shape == (2, 62)
    assert m.fc.in_features == 7 * 7 * 64 and m.fc.out_features == 2048
    with pytest.raises(ShapeError):
        m(torch.zeros(2, 3, 28, 28))


@pytest.mark.parametrize("output", ["last", "all"])
def test_vectorized_engine_equals_sequential_on_char_lstm(output):
    """The federated core's vectorized engine (vmap over clients) trains the character LSTM
    exactly as the sequential reference does: same updates within 1e-5."""
    from interlearn.federated.api import ClientData
    from interlearn.federated.client import LocalSGD
    from interlearn.federated.engines import get_engine, run_cohort_on
    from interlearn.federated.params import model_params

    torch.manual_seed(0)
    m = char_lstm(V, hidden=12, output=output)
    params = model_params(m)
    cohort = []
    for cid, n in enumerate((7, 12, 4)):  # different sizes: ragged steps in the vectorized engine
        x = torch.randint(0, V, (n, 10), dtype=torch.uint8)
        y = torch.randint(0, V, (n,) if output == "last" else (n, 10))
        cohort.append(ClientData(cid, x, y))
    update = LocalSGD(epochs=2, batch_size=4, lr=0.5)

    def run(engine):
        gens = [torch.Generator().manual_seed(100 + c.client_id) for c in cohort]
        return run_cohort_on(get_engine(engine), m, update, params, cohort, generators=gens).results

    seq, vec = run("sequential"), run("vectorized")
    for (rs, _), (rv, _) in zip(seq, vec):
        assert rs.client_id == rv.client_id and rs.weight == rv.weight
        for k in params:
            torch.testing.assert_close(rv.update[k], rs.update[k], atol=1e-5, rtol=1e-5)
        assert abs(rs.metrics["loss"] - rv.metrics["loss"]) < 1e-5


def test_fused_kernel_equals_explicit_gates_forward_and_backward():
    """The layer runs torch.lstm outside vmap and its explicit gates inside: same function."""
    torch.manual_seed(0)
    layer = LSTMLayer(5, 7)
    x = torch.randn(3, 9, 5, requires_grad=True)
    fused, explicit = layer(x), layer.explicit(x)
    torch.testing.assert_close(fused, explicit, atol=1e-6, rtol=0)
    g_fused = torch.autograd.grad(fused.square().sum(), [x, *layer.parameters()])
    g_explicit = torch.autograd.grad(explicit.square().sum(), [x, *layer.parameters()])
    for a, b in zip(g_fused, g_explicit):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
