"""The next-word keyboard model: a CIFG LSTM with tied input and output embeddings.

Hard et al. 2018 ("Federated Learning for Mobile Keyboard Prediction", Google's Gboard) use a
single-layer CIFG (coupled input and forget gate, Greff et al. 2017: the input gate is
``1 - f``, so a cell has three gates instead of four) with 670 units, a projection to the
96-dimensional word embedding, and the same embedding matrix for the input and the output
(Press & Wolf 2017), over a 10,000-word vocabulary: 1.4 M parameters.

Sizes here are chosen for a CPU (the library's benchmarks run on 1-2 shared cores): the
defaults (5,000 words, 96-dimensional embedding, 256 units) keep the tied embedding as the
largest matrix (480 k of ~800 k parameters) as in Hard et al., and one local epoch of a typical
Shakespeare role takes milliseconds. The output layer (``vocab x embed`` per predicted word)
dominates the compute, which is why the vocabulary, not the LSTM, is the size to watch.

The cell is written with explicit gate matmuls (as :class:`interlearn.models.char_lstm.LSTMLayer`):
``torch.nn.LSTM`` has no CIFG variant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from interlearn.errors import ConfigError, ShapeError

__all__ = ["WordLMConfig", "CIFGLayer", "WordCIFG", "word_cifg"]


@dataclass(frozen=True)
class WordLMConfig:
    """Shape of a :class:`WordCIFG`.

    Attributes:
        vocab_size: words including the special tokens (pad, oov, bos).
        embed_dim: word embedding size, shared by input and output (96 in Hard et al.).
        hidden: CIFG units (670 in Hard et al.; 256 by default here, for a CPU).
    """

    vocab_size: int
    embed_dim: int = 96
    hidden: int = 256

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"WordLMConfig.{name}={getattr(self, name)} must be >= 1")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class CIFGLayer(nn.Module):
    """One CIFG layer: ``[f g o] = W_ih x_t + b + W_hh h_{t-1}``, ``c = f c + (1 - f) tanh(g)``."""

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = nn.Linear(input_size, 3 * hidden)
        self.hh = nn.Linear(hidden, 3 * hidden, bias=False)
        with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015)
            self.ih.bias.zero_()
            self.ih.bias[:hidden] = 1.0

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(batch, time, input) -> hidden states (batch, time, hidden) and the final ``(h, c)``."""
        xw = self.ih(x)  # (B, T, 3H): every step's input projection at once
        if state is None:
            h = xw.new_zeros(xw.shape[0], self.hidden)
            c = h
        else:
            h, c = state
        outs = []
        for xt in xw.unbind(1):
            f, g, o = (xt + self.hh(h)).chunk(3, dim=-1)
            f = torch.sigmoid(f)
            c = f * c + (1.0 - f) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1), (h, c)


class WordCIFG(nn.Module):
    """Embedding -> CIFG -> projection to the embedding size -> tied output layer.

    Input: (batch, time) word indices. Output: logits (batch, vocab, time), the layout
    ``F.cross_entropy`` takes with (batch, time) targets.

    Example:
        >>> m = WordCIFG(WordLMConfig(vocab_size=50, embed_dim=8, hidden=16))
        >>> m(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 50, 5])
    """

    def __init__(self, config: WordLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        nn.init.normal_(self.embed.weight, std=config.embed_dim**-0.5)  # logits of O(1) at the start
        self.cifg = CIFGLayer(config.embed_dim, config.hidden)
        self.proj = nn.Linear(config.hidden, config.embed_dim)
        self.out_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def features(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Projected hidden states (batch, time, embed) and the CIFG's final state."""
        if x.dim() != 2:
            raise ShapeError(f"WordCIFG expects (batch, time) word indices, got shape {tuple(x.shape)}")
        h, state = self.cifg(self.embed(x.long()), state)
        return self.proj(h), state

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Tied output layer: (..., embed) -> (..., vocab)."""
        return feats @ self.embed.weight.t() + self.out_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x)[0]).transpose(1, 2)

    @torch.no_grad()
    def next_word_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the word after each sequence, (batch, vocab)."""
        feats, _ = self.features(x)
        return self.logits(feats[:, -1])


def word_cifg(vocab_size: int, embed_dim: int = 96, hidden: int = 256) -> WordCIFG:
    """The keyboard's word model (see the module docstring for the sizes)."""
    return WordCIFG(WordLMConfig(vocab_size, embed_dim, hidden))
