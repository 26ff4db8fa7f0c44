"""The character LSTM of federated next-character prediction, and its on-device variant.

The model of McMahan et al. 2017 and LEAF (Caldas et al. 2018): an 8-dimensional character
embedding, two LSTM layers of 256 units, and a linear layer on the last step's output that
predicts the character following an 80-character window. Reddi et al. 2021 ("Adaptive
Federated Optimization") use the same architecture.

Each LSTM layer keeps its weights as two ``nn.Linear`` (input and recurrent gate matmuls, gate
order PyTorch's (i, f, g, o)) and runs PyTorch's fused LSTM kernel on them (``torch.lstm``, what
``nn.LSTM`` calls: about 2x faster per step on a CPU than gates written out in Python). Under
``torch.func.vmap`` (the vectorized federated engine batching a cohort) that kernel has no
batching rule, so the layer switches to the same gates written with explicit matmuls; both forms
compute the same function with the same weights (tested within 1e-6).

The on-device variant is the same architecture, smaller (default one-quarter the parameters);
it is distilled from the global model on the clients (:class:`interlearn.federated.client.distill_update.FedDistillUpdate`)
and stored with int8 weights (:func:`interlearn.ondevice.quantize.model_bytes`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from interlearn.errors import ConfigError, ShapeError
from interlearn.tasks import accuracy_sums, cross_entropy

__all__ = [
    "CharLSTMConfig",
    "CharLSTM",
    "LSTMLayer",
    "char_lstm",
    "ondevice_char_lstm",
    "next_char_loss",
    "next_char_accuracy",
]


@dataclass(frozen=True)
class CharLSTMConfig:
    """Shape of a :class:`CharLSTM`.

    Attributes:
        vocab_size: number of characters (output classes), including the unknown index 0.
        embed_dim: character embedding size (8 in the literature).
        hidden: LSTM units per layer (256 in the literature).
        layers: number of stacked LSTM layers (2 in the literature).
        output: ``"last"`` (LEAF: logits for the character after the window, (batch, vocab))
            or ``"all"`` (TFF / Reddi et al.: logits at every position, (batch, vocab, time),
            the layout ``F.cross_entropy`` takes with (batch, time) targets).
    """

    vocab_size: int
    embed_dim: int = 8
    hidden: int = 256
    layers: int = 2
    output: str = "last"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embed_dim", "hidden", "layers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"CharLSTMConfig.{name}={getattr(self, name)} must be >= 1")
        if self.output not in ("last", "all"):
            raise ConfigError(f"CharLSTMConfig.output={self.output!r}; use 'last' (LEAF) or 'all' (every position)")

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)


def _under_vmap(x: torch.Tensor) -> bool:
    """True inside a ``torch.func`` transform (``vmap``, or ``grad`` under ``vmap``), where
    ``torch.lstm`` has no batching rule. ``torch._C._functorch`` is private, hence the guard."""
    peek = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None)
    return peek is not None and peek() is not None


class LSTMLayer(nn.Module):
    """One LSTM layer with explicit gates: ``[i f g o] = W_ih x_t + b + W_hh h_{t-1}``."""

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.ih = nn.Linear(input_size, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden, bias=False)
        with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015): faster start
            self.ih.bias.zero_()
            self.ih.bias[hidden : 2 * hidden] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, time, input) -> hidden states (batch, time, hidden)."""
        if not _under_vmap(x):
            h0 = x.new_zeros(1, x.shape[0], self.hidden)
            weights = [self.ih.weight, self.hh.weight, self.ih.bias, torch.zeros_like(self.ih.bias)]
            return torch.lstm(x, (h0, h0), weights, True, 1, 0.0, self.training, False, True)[0]
        return self.explicit(x)

    def explicit(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer with its gates written out (runs under ``vmap``)."""
        xw = self.ih(x)  # (B, T, 4H): the input projection of every step at once
        h = xw.new_zeros(xw.shape[0], self.hidden)
        c = h
        outs = []
        for xt in xw.unbind(1):  # unbind: one stacked gradient, not T zero-filled ones
            i, f, g, o = (xt + self.hh(h)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1)


class CharLSTM(nn.Module):
    """Embedding -> stacked LSTM layers -> linear on the last step: next-character logits.

    Input: (batch, seq_len) character indices (any integer dtype). Output: (batch, vocab_size)
    with ``output="last"``, (batch, vocab_size, seq_len) with ``output="all"``.

    Example:
        >>> m = CharLSTM(CharLSTMConfig(vocab_size=10, hidden=8))
        >>> m(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 10])
    """

    def __init__(self, config: CharLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        sizes = [config.embed_dim] + [config.hidden] * config.layers
        self.lstm = nn.ModuleList(LSTMLayer(sizes[k], sizes[k + 1]) for k in range(config.layers))
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's output: top-layer hidden states, (batch, hidden) for ``output="last"``
        (the last step) or (batch, seq_len, hidden) for ``output="all"``."""
        if x.dim() != 2:
            raise ShapeError(f"CharLSTM expects (batch, seq_len) character indices, got shape {tuple(x.shape)}")
        h = self.embed(x.long())
        for layer in self.lstm:
            h = layer(h)
        return h[:, -1] if self.config.output == "last" else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(x))
        return out if self.config.output == "last" else out.transpose(1, 2)

    @torch.no_grad()
    def next_char_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of the character after each sequence, (batch, vocab), in either mode."""
        h = self.features(x)
        return self.head(h if h.dim() == 2 else h[:, -1]).softmax(-1)


def char_lstm(
    vocab_size: int, embed_dim: int = 8, hidden: int = 256, layers: int = 2, output: str = "last"
) -> CharLSTM:
    """The literature's character LSTM (8-dim embedding, 2 x 256 LSTM) for ``vocab_size`` characters."""
    return CharLSTM(CharLSTMConfig(vocab_size, embed_dim, hidden, layers, output))


def ondevice_char_lstm(
    vocab_size: int, hidden: int = 128, layers: int = 2, embed_dim: int = 8, output: str = "last"
) -> CharLSTM:
    """The lightweight on-device student: the same architecture with fewer units (default 2 x 128,
    about a quarter of the parameters); distill it from the global model and store it in int8."""
    return CharLSTM(CharLSTMConfig(vocab_size, embed_dim, hidden, layers, output))


next_char_loss = cross_entropy
"""Mean cross-entropy over every predicted character, in either output mode."""


def next_char_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of predicted characters that are right, in either output mode."""
    correct, total = accuracy_sums(logits, y)
    return correct / total if total else 0.0
