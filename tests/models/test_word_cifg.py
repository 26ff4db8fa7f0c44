"""The CIFG word model: shapes, tied embeddings, the coupled gate, a learning sanity check."""

import pytest
import torch

from interlearn.data.shakespeare_words import masked_cross_entropy
from interlearn.errors import ConfigError, ShapeError
from interlearn.models.word_cifg import CIFGLayer, WordLMConfig, word_cifg


def test_shapes_and_tied_output():
    m = word_cifg(30, embed_dim=8, hidden=12)
    x = torch.randint(0, 30, (4, 7))
    out = m(x)
    assert out.shape == (4, 30, 7)
    names = dict(m.named_parameters())
    assert "embed.weight" in names and not any("head" in n or "decoder" in n for n in names)  # one matrix in and out
    feats, _ = m.features(x)
    assert torch.allclose(out[:, :, -1], m.next_word_logits(x), atol=1e-6)
    assert torch.allclose(out.transpose(1, 2), feats @ m.embed.weight.t() + m.out_bias, atol=1e-6)
    with pytest.raises(ShapeError):
        m(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError):
        WordLMConfig(vocab_size=0)


def test_cifg_cell_couples_input_and_forget_gates():
    layer = CIFGLayer(3, 2)
    assert layer.ih.out_features == 3 * 2  # three gates, not four
    x = torch.randn(1, 1, 3)
    _h, (h1, c1) = layer(x)
    f, g, o = (layer.ih(x[:, 0]) + layer.hh(torch.zeros(1, 2))).chunk(3, -1)
    c = (1 - torch.sigmoid(f)) * torch.tanh(g)  # c0 = 0
    assert torch.allclose(c1, c, atol=1e-6) and torch.allclose(h1, torch.sigmoid(o) * torch.tanh(c), atol=1e-6)


def test_learns_a_deterministic_sequence():
    torch.manual_seed(0)
    m = word_cifg(10, embed_dim=8, hidden=16)
    seq = torch.tensor([[3, 4, 5, 6, 7, 8, 9, 3, 4, 5]])
    x, y = seq[:, :-1], seq[:, 1:]
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(60):
        loss = masked_cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (m(x).argmax(1) == y).float().mean() == 1.0
