"""GradNorm: Chen et al. 2018, "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
Deep Multitask Networks".

Task weights w_t scale the losses; after each step they move so that each task's gradient norm
on the last shared weight, G_t = ||∇_W w_t L_t||, approaches mean(G) · r_t^α, where r_t is the
task's loss ratio L_t / L_t(0) relative to the mean ratio. The weights have their own Adam
(``lr``) and are renormalised to sum to the number of tasks. torchjd has no GradNorm, hence this
file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.multitask.base import MTLContext, MTLMethod, register_method

__all__ = ["GradNorm"]


@register_method("gradnorm")
class GradNorm(MTLMethod):
    """GradNorm with asymmetry ``alpha`` (1.5 in the paper) and weight learning rate ``lr``."""

    initial: torch.Tensor  # each task's first loss (a buffer; NaN until the task is seen)

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(tasks)
        if alpha < 0 or lr <= 0:
            raise ConfigError(f"gradnorm alpha={alpha} must be >= 0 and lr={lr} > 0")
        self.alpha = alpha
        self.weights = nn.Parameter(torch.ones(len(self.tasks)))
        self._opt = torch.optim.Adam([self.weights], lr=lr)
        self.register_buffer("initial", torch.full((len(self.tasks),), float("nan")))

    def get_extra_state(self) -> dict[str, Any]:
        """The weights' own Adam state (in :func:`interlearn.fit`'s checkpoints)."""
        return {"opt": self._opt.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._opt.load_state_dict(state["opt"])

    def backward(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> None:
        if not losses:
            return
        names = list(losses)
        idx = torch.tensor([self.index[t] for t in names], device=self.weights.device)
        values = torch.stack([losses[t] for t in names])
        with torch.no_grad():
            fresh = torch.isnan(self.initial[idx])
            self.initial[idx[fresh]] = values.detach()[fresh].to(self.initial.dtype)
        w = self.weights.detach()[idx].to(values.device)
        self.last_weights = {t: float(w[i]) for i, t in enumerate(names)}
        if len(names) > 1:
            # per-task gradient norms on the last shared weight; only the small graph between
            # that layer and the losses is traversed, with retain_graph for the main backward
            W = ctx.model.last_shared_parameter()
            norms = torch.stack([torch.autograd.grad(losses[t], W, retain_graph=True)[0].norm() for t in names])
        (w * values).sum().backward()
        if len(names) > 1:
            with torch.enable_grad():
                wt = self.weights[idx]
                g = wt * norms.detach().to(wt.device)  # G_t
                ratio = values.detach().to(wt.device) / self.initial[idx].clamp(min=1e-12)
                target = (g.mean() * (ratio / ratio.mean()) ** self.alpha).detach()
                grad_loss = (g - target).abs().sum()
                self._opt.zero_grad(set_to_none=True)
                grad_loss.backward()
            self._opt.step()
            with torch.no_grad():
                self.weights.clamp_(min=1e-4)
                self.weights.mul_(len(self.tasks) / self.weights.sum())
            self.weights.grad = None
