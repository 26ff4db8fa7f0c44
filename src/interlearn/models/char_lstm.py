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

The on-device variant is the same architecture, smaller (default one-quarter the parameters),
and can be stored with int8 weights (see :func:`quantize_int8`).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from torch.func import functional_call

from interlearn.data.tensors import TensorData
from interlearn.distill import kd_loss as hinton_kd_loss
from interlearn.errors import ConfigError, DataError, ShapeError
from interlearn.federated.client.local_sgd import LocalSGD
from interlearn.types import Params

__all__ = [
    "CharLSTMConfig",
    "CharLSTM",
    "LSTMLayer",
    "char_lstm",
    "ondevice_char_lstm",
    "next_char_loss",
    "next_char_accuracy",
    "kd_loss",
    "distill_char_lstm",
    "FedDistillUpdate",
    "quantize_int8",
    "dequantize_int8",
    "save_model",
    "model_bytes",
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


def char_lstm(vocab_size: int, embed_dim: int = 8, hidden: int = 256, layers: int = 2, output: str = "last") -> CharLSTM:
    """The literature's character LSTM (8-dim embedding, 2 x 256 LSTM) for ``vocab_size`` characters."""
    return CharLSTM(CharLSTMConfig(vocab_size, embed_dim, hidden, layers, output))


def ondevice_char_lstm(vocab_size: int, hidden: int = 128, layers: int = 2, embed_dim: int = 8, output: str = "last") -> CharLSTM:
    """The lightweight on-device student: the same architecture with fewer units (default 2 x 128,
    about a quarter of the parameters); distill it from the global model and store it in int8."""
    return CharLSTM(CharLSTMConfig(vocab_size, embed_dim, hidden, layers, output))


def _flat(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V) / (B, V, T) logits and (B,) / (B, T) targets -> (N, V), (N,)."""
    if logits.dim() == 3:
        return logits.transpose(1, 2).reshape(-1, logits.shape[1]), y.reshape(-1)
    return logits, y


def next_char_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every predicted character, in either output mode."""
    return F.cross_entropy(logits, y.long())


@torch.no_grad()
def next_char_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of predicted characters that are right, in either output mode."""
    lf, yf = _flat(logits, y)
    return float((lf.argmax(-1) == yf).float().mean()) if yf.numel() else 0.0


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """:func:`interlearn.distill.kd_loss` (Hinton et al. 2015) over every predicted character:
    (batch, vocab, time) logits and (batch, time) targets are flattened to one row per character."""
    s, y = _flat(student_logits, targets)
    t, _ = _flat(teacher_logits, targets)
    return hinton_kd_loss(s, t, y.long(), temperature=temperature, alpha=alpha)


def distill_char_lstm(
    teacher: nn.Module,
    student: nn.Module,
    data: TensorData,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 3e-3,
    temperature: float = 2.0,
    alpha: float = 0.7,
    seed: int = 0,
) -> list[float]:
    """Distil ``teacher`` into ``student`` on ``data`` with Adam for ``steps`` minibatches.

    Args:
        teacher: the global model (left unchanged, run in eval mode).
        student: the on-device model, trained in place.
        data: the distillation text windows (x, y); in the benchmark, public proxy text.
        steps, batch_size, lr: optimisation budget.
        temperature, alpha: see :func:`kd_loss`.
        seed: batch sampling seed.

    Returns:
        The loss of every step.

    Raises:
        DataError: empty ``data``.
        ConfigError: non-positive ``steps``/``batch_size``/``temperature``, ``alpha`` outside [0, 1].
    """
    if len(data) == 0:
        raise DataError("distill_char_lstm: the distillation data is empty")
    if steps < 1 or batch_size < 1 or temperature <= 0 or not 0 <= alpha <= 1:
        raise ConfigError(f"distill_char_lstm: steps={steps}, batch_size={batch_size}, temperature={temperature}, alpha={alpha}; need positive steps/batch/temperature and alpha in [0, 1]")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    teacher.eval()
    student.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(data), (min(batch_size, len(data)),), generator=gen)
        x, y = data.x[idx], data.y[idx]
        with torch.no_grad():
            t = teacher(x)
        loss = kd_loss(student(x), t, y, temperature, alpha)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 5.0)
        opt.step()
        losses.append(float(loss.detach()))
    student.eval()
    return losses


@dataclass(frozen=True)
class FedDistillUpdate(LocalSGD):
    """Federated distillation of the on-device model: :class:`LocalSGD` whose objective is
    :func:`kd_loss` of the *student* against the *teacher* (the trained global model, which every
    device already holds) on the client's own text. Raw text stays on the device; the server
    averages student updates as in FedAvg. The local steps are LocalSGD's own.

    Attributes:
        teacher: the global model with its trained weights loaded (evaluated, never trained).
        temperature, alpha: see :func:`kd_loss`.
        max_steps: cap on local steps per round (``None``: full epochs).
        (and every :class:`LocalSGD` field: epochs, batch_size, lr, ...)

    Raises:
        ConfigError: no teacher, or a value out of range.
    """

    teacher: nn.Module | None = field(default=None, repr=False, compare=False)
    temperature: float = 2.0
    alpha: float = 0.7
    max_steps: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.teacher is None:
            raise ConfigError("FedDistillUpdate needs teacher=<the trained global model>")
        if self.temperature <= 0 or not 0 <= self.alpha <= 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ConfigError(f"FedDistillUpdate: temperature={self.temperature}, alpha={self.alpha}, max_steps={self.max_steps}; "
                              "need temperature > 0, alpha in [0, 1], max_steps >= 1 or None")

    def schedule(self, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        """The epochs' minibatches, cut at ``max_steps``."""
        return super().schedule(n, generator)[: self.max_steps]

    def objective(self, model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:func:`kd_loss` of the student (``params``) against the teacher on this batch."""
        assert self.teacher is not None  # internal: checked in __post_init__
        self.teacher.eval()
        with torch.no_grad():
            t = self.teacher(x)
        return kd_loss(functional_call(model, params, (x,)), t, y, self.temperature, self.alpha)


# Weight-only int8: torch.ao.quantization's dynamic quantization is deprecated in torch 2.13
# (it warns and points to torchao, which is not a dependency here), and safetensors cannot
# store its packed tensors. Symmetric per-row int8 with a float32 scale per row is a few lines,
# loads back into the plain float model, and its bytes on disk are measured honestly.
def quantize_int8(params: Params) -> dict[str, torch.Tensor]:
    """Matrices -> int8 with one float32 scale per output row; vectors stay float32.

    Returns:
        A flat dict: ``name`` (float32 vectors), ``name.int8`` and ``name.scale`` (matrices).
    """
    out: dict[str, torch.Tensor] = {}
    for name, w in params.items():
        w = w.detach().float().cpu()
        if w.dim() < 2:
            out[name] = w.contiguous()
            continue
        rows = w.reshape(w.shape[0], -1)
        scale = rows.abs().amax(1).clamp_min(1e-12) / 127.0
        out[f"{name}.int8"] = (rows / scale[:, None]).round().clamp(-127, 127).to(torch.int8).reshape(w.shape).contiguous()
        out[f"{name}.scale"] = scale.contiguous()
    return out


def dequantize_int8(q: dict[str, torch.Tensor]) -> Params:
    """Inverse of :func:`quantize_int8` (up to rounding): float32 params to load into the model."""
    out: Params = {}
    for name, t in q.items():
        if name.endswith(".int8"):
            base = name[: -len(".int8")]
            out[base] = t.float() * q[f"{base}.scale"].reshape(-1, *([1] * (t.dim() - 1)))
        elif not name.endswith(".scale"):
            out[name] = t
    return out


def save_model(model: nn.Module, path: str | Path, int8: bool = False) -> int:
    """Write the model's parameters to a safetensors file (float32, or int8 via
    :func:`quantize_int8`) and return its size in bytes."""
    params = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(quantize_int8(params) if int8 else params, str(path))
    return Path(path).stat().st_size


def model_bytes(model: nn.Module, int8: bool = False) -> int:
    """Bytes on disk of the model saved with :func:`save_model`."""
    with tempfile.TemporaryDirectory() as d:
        return save_model(model, Path(d) / "model.safetensors", int8=int8)
