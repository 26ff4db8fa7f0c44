"""Loss-weighting methods: equal, static, uncertainty, DWA, RLW and FAMO.

* equal: the plain sum of the task losses.
* static: fixed user weights.
* uncertainty: Kendall, Gal & Cipolla 2018, "Multi-Task Learning Using Uncertainty to Weigh Losses
  for Scene Geometry and Semantics" — learned log-variances s_t, loss 0.5 e^{-s_t} L_t + 0.5 s_t.
* dwa: Liu, Johns & Davison 2019, "End-to-End Multi-Task Learning with Attention" — weights from
  the ratio of each task's mean loss over the two previous epochs.
* rlw: Lin et al. 2022, "Reasonable Effectiveness of Random Weighting" — softmax of Gaussian
  weights drawn every step.
* famo: Liu et al. 2023, "FAMO: Fast Adaptive Multitask Optimization" — log-loss weighting whose
  logits follow the loss decrease each task gets from a step.

Why not torchjd's scalarizers (``UW``, ``DWA``, ``Random``, ``FAMO``): they take a fixed-shape
loss vector, while partial labels need a task to drop out of a batch without touching its state
(a missing task in ``UW`` would still pull its log-variance down). The formulas follow torchjd's
exactly and tests/multitask/test_reference.py checks that they agree on fully labelled batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.multitask.base import MTLContext, MTLMethod, register_method
from interlearn.tasks import sum_tensors

__all__ = ["Equal", "Static", "Uncertainty", "DWA", "RLW", "FAMO"]


@register_method("equal")
class Equal(MTLMethod):
    """Sum of the task losses: exactly ``sum(losses).backward()``."""

    def combine(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> torch.Tensor:
        self.last_weights = dict.fromkeys(losses, 1.0)
        return sum_tensors(losses.values())


@register_method("static")
class Static(MTLMethod):
    """Fixed weights ``{task: w}`` (missing tasks get 1.0)."""

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None) -> None:
        super().__init__(tasks)
        weights = dict(weights or {})
        unknown = [k for k in weights if k not in self.index]
        if unknown:
            raise ConfigError(f"static weights for unknown tasks {unknown}; tasks are {self.tasks}")
        bad = {k: v for k, v in weights.items() if not (isinstance(v, (int, float)) and v >= 0)}
        if bad:
            raise ConfigError(f"static weights must be numbers >= 0, got {bad}")
        self.weights = {t: float(weights.get(t, 1.0)) for t in self.tasks}

    def combine(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> torch.Tensor:
        self.last_weights = {t: self.weights[t] for t in losses}
        return sum_tensors(self.weights[t] * v for t, v in losses.items())


@register_method("uncertainty")
class Uncertainty(MTLMethod):
    """Learned homoscedastic uncertainty per task; ``log_var`` trains with the model's optimizer."""

    optimizer_params = True

    def __init__(self, tasks: Sequence[str], init: float = 0.0) -> None:
        super().__init__(tasks)
        self.log_var = nn.Parameter(torch.full((len(self.tasks),), float(init)))

    def combine(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> torch.Tensor:
        idx = torch.tensor([self.index[t] for t in losses], device=self.log_var.device)
        s = self.log_var[idx]
        values = torch.stack(list(losses.values()))
        self.last_weights = {t: float(0.5 * torch.exp(-s[i].detach())) for i, t in enumerate(losses)}
        return (0.5 * torch.exp(-s) * values + 0.5 * s).sum()


@register_method("dwa")
class DWA(MTLMethod):
    """Dynamic weight average with ``temperature`` (2.0 in the paper)."""

    def __init__(self, tasks: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__(tasks)
        if temperature <= 0:
            raise ConfigError(f"dwa temperature={temperature}: must be > 0")
        self.temperature = temperature
        self._sums = torch.zeros(len(self.tasks), dtype=torch.float64)
        self._counts = torch.zeros(len(self.tasks), dtype=torch.float64)
        self._history: list[torch.Tensor] = []  # mean loss per task of the last two epochs

    def get_extra_state(self) -> dict[str, Any]:
        """This epoch's loss sums and the last two epochs' means (in fit's checkpoints)."""
        return {
            "sums": self._sums.clone(),
            "counts": self._counts.clone(),
            "history": [h.clone() for h in self._history],
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._sums, self._counts = state["sums"].clone(), state["counts"].clone()
        self._history = [h.clone() for h in state["history"]]

    def on_epoch_start(self, epoch: int) -> None:
        if self._counts.sum() == 0:
            return
        mean = self._sums / self._counts.clamp(min=1)
        if self._history:  # a task unseen this epoch keeps its previous mean (ratio 1)
            mean = torch.where(self._counts > 0, mean, self._history[-1])
        self._history = (self._history + [mean])[-2:]
        self._sums.zero_()
        self._counts.zero_()

    def _weights(self) -> torch.Tensor:
        if len(self._history) < 2:
            return torch.ones(len(self.tasks), dtype=torch.float64)
        rate = self._history[1] / self._history[0].clamp(min=1e-12)
        return len(self.tasks) * torch.softmax(rate / self.temperature, dim=0)

    def combine(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> torch.Tensor:
        w = self._weights()
        for t, v in losses.items():
            self._sums[self.index[t]] += float(v.detach())
            self._counts[self.index[t]] += 1
        self.last_weights = {t: float(w[self.index[t]]) for t in losses}
        return sum_tensors(self.last_weights[t] * v for t, v in losses.items())


@register_method("rlw")
class RLW(MTLMethod):
    """Random loss weighting: weights = softmax(N(0, 1)) over the tasks present, every step."""

    def __init__(self, tasks: Sequence[str], seed: int = 0) -> None:
        super().__init__(tasks)
        self._gen = torch.Generator().manual_seed(seed)

    def get_extra_state(self) -> dict[str, Any]:
        """The weight generator's state (in fit's checkpoints)."""
        return {"gen": self._gen.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._gen.set_state(state["gen"].to(torch.uint8).contiguous())

    def combine(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> torch.Tensor:
        w = torch.softmax(torch.randn(len(losses), generator=self._gen), dim=0)
        self.last_weights = {t: float(w[i]) for i, t in enumerate(losses)}
        w = w.to(self._device(losses))
        return sum_tensors(w[i] * v for i, v in enumerate(losses.values()))


@register_method("famo")
class FAMO(MTLMethod):
    """FAMO with its own Adam on the task logits (``lr`` 0.025, ``weight_decay`` 1e-3 as in the paper).

    The logit update needs each task's loss after the step on the same batch: at the next step,
    the previous batch is re-scored under the updated weights (one extra forward without
    gradients, like the official implementation's ``update(new_losses)``).
    """

    def __init__(self, tasks: Sequence[str], lr: float = 0.025, weight_decay: float = 1e-3, eps: float = 1e-8) -> None:
        super().__init__(tasks)
        if lr < 0 or weight_decay < 0:
            raise ConfigError(f"famo lr={lr}, weight_decay={weight_decay}: must be >= 0")
        self.logits = nn.Parameter(torch.zeros(len(self.tasks)))
        self._opt = torch.optim.Adam([self.logits], lr=lr, weight_decay=weight_decay)
        self.eps = eps
        self._prev: tuple[torch.Tensor, torch.Tensor, dict[str, float]] | None = None

    def get_extra_state(self) -> dict[str, Any]:
        """The logits' Adam state and the batch awaiting its post-step re-scoring (in fit's checkpoints)."""
        prev = None if self._prev is None else {"x": self._prev[0], "y": self._prev[1], "losses": self._prev[2]}
        return {"opt": self._opt.state_dict(), "prev": prev}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._opt.load_state_dict(state["opt"])
        p = state["prev"]
        self._prev = None if p is None else (p["x"], p["y"], {k: float(v) for k, v in p["losses"].items()})

    def _update(self, ctx: MTLContext) -> None:
        if self._prev is None:  # backward() calls this only once a previous batch is stored
            return
        x, y, before = self._prev
        after = ctx.recompute(x, y)
        common = [t for t in before if t in after]
        if not common:
            return
        delta = torch.zeros(len(self.tasks), device=self.logits.device)
        for t in common:
            delta[self.index[t]] = torch.log(torch.tensor(before[t] + self.eps)) - torch.log(
                after[t].detach().float().cpu() + self.eps
            )
        with torch.enable_grad():
            z = torch.softmax(self.logits, dim=0)
            (grad,) = torch.autograd.grad(z, self.logits, grad_outputs=delta)
        self.logits.grad = grad
        self._opt.step()
        self.logits.grad = None

    def backward(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> None:
        if self._prev is not None:
            self._update(ctx)
        super().backward(losses, ctx)
        self._prev = (ctx.x.detach(), ctx.y.detach(), {t: float(v.detach()) for t, v in losses.items()})

    def combine(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> torch.Tensor:
        idx = torch.tensor([self.index[t] for t in losses], device=self.logits.device)
        z = torch.softmax(self.logits.detach()[idx], dim=0).to(self._device(losses))
        values = torch.stack(list(losses.values()))
        shifted = values + self.eps
        c = (z / shifted).sum().detach()
        self.last_weights = {t: float(z[i] / c / shifted[i].detach()) for i, t in enumerate(losses)}
        return ((z / c) * torch.log(shifted)).sum()
