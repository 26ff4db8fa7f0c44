"""Local training on one client: FedAvg's ClientUpdate, with FedProx's proximal term.

* FedAvg client — McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
  Decentralized Data" (AISTATS), Algorithm 1: ``E`` local epochs of minibatch SGD with batch
  size ``B`` (or a fixed number of local steps), starting from the global model.
* FedProx — Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith 2020, "Federated Optimization in
  Heterogeneous Networks" (MLSys): the local loss gets ``mu/2 * ||w - w_global||^2``.

:meth:`LocalSGD.apply` is the client optimizer's math — SGD with heavy-ball momentum and
Adam, as ``torch.optim.SGD``/``torch.optim.Adam`` define them, with L2 weight decay and the
proximal term added to the gradient — and the only place it is written: every engine runs it
(see :mod:`interlearn.federated.client.step`). The minibatch order comes from
:func:`~interlearn.federated.client.step.batch_schedule` and the client's own generator, so
every engine visits exactly the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.federated.client.step import StepContext, StepUpdate, batch_schedule, functional_objective
from interlearn.federated.schedule import Schedule, at
from interlearn.tasks import cross_entropy
from interlearn.types import LossFn, Params

__all__ = ["LocalSGD", "batch_schedule", "cross_entropy"]


@dataclass(frozen=True)
class LocalSGD(StepUpdate):
    """The standard client update (FedAvg; FedProx with ``prox_mu > 0``).

    Attributes:
        epochs: local epochs ``E`` (ignored when ``steps`` is set); a
            :class:`~interlearn.federated.schedule.Schedule` changes it with the round.
        steps: exact number of local minibatch steps instead of epochs.
        batch_size: local batch size ``B``; ``None`` = full batch (McMahan's ``B = inf``).
        lr: local learning rate, or a :class:`~interlearn.federated.schedule.Schedule` of the
            round (the round loop resolves it every round: :meth:`at_round`).
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``; fresh optimizer state per round.
        momentum: SGD heavy-ball momentum in [0, 1).
        weight_decay: L2 penalty added to the gradient (as ``torch.optim`` does).
        prox_mu: FedProx ``mu`` >= 0 (0 = FedAvg).
        betas, eps: Adam's hyper-parameters.
        loss: ``loss(outputs, targets) -> scalar`` (mean over the batch); cross-entropy by default.

    Raises:
        ConfigError: a value out of range.

    Example:
        >>> update = LocalSGD(epochs=1, batch_size=10, lr=0.1)
    """

    epochs: int | Schedule = 1
    steps: int | None = None
    batch_size: int | None = 10
    lr: float | Schedule = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    prox_mu: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    loss: LossFn = field(default=cross_entropy, compare=False)

    elementwise: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if isinstance(self.lr, Schedule) or isinstance(self.epochs, Schedule):
            return  # checked, resolved, in every round (at_round)
        if self.steps is None and int(self.epochs) < 1:
            raise ConfigError(f"epochs={self.epochs}: must be >= 1 (or set steps)")
        if self.steps is not None and int(self.steps) < 1:
            raise ConfigError(f"steps={self.steps}: must be >= 1 (or None to train for epochs)")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ConfigError(f"batch_size={self.batch_size}: must be >= 1 (or None for full batch)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr={self.lr}: must be a finite number > 0")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"optimizer={self.optimizer!r}: choose 'sgd' or 'adam'")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum={self.momentum}: must be in [0, 1)")
        if self.weight_decay < 0 or self.prox_mu < 0:
            raise ConfigError(f"weight_decay={self.weight_decay}, prox_mu={self.prox_mu}: must be >= 0")
        if not (0.0 <= self.betas[0] < 1.0 and 0.0 <= self.betas[1] < 1.0) or not self.eps > 0:
            raise ConfigError(f"betas={self.betas}, eps={self.eps}: need 0 <= beta < 1 and eps > 0")

    def at_round(self, round_: int) -> LocalSGD:
        """A copy with the scheduled ``lr``/``epochs`` of round ``round_`` (``self`` when none is).

        Raises:
            ConfigError: a scheduled value out of range in this round.
        """
        if not (isinstance(self.lr, Schedule) or isinstance(self.epochs, Schedule)):
            return self
        return replace(self, lr=float(at(self.lr, round_)), epochs=int(at(self.epochs, round_)))

    @property
    def round_lr(self) -> float:
        """The learning rate this copy trains with: a copy from :meth:`at_round` holds its round's;
        an unresolved scheduled one (called outside the round loop) uses round 1's."""
        return float(at(self.lr, 1))

    def schedule(self, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        """This client's minibatches (see :func:`batch_schedule`)."""
        return batch_schedule(n, self.batch_size, int(at(self.epochs, 1)), self.steps, generator)

    def init_state(self, params: Params, client_state: Params | None, ctx: StepContext) -> Params:
        """Zero momentum buffers (SGD with momentum) or Adam moments, per trainable entry."""
        if self.optimizer == "adam":
            return {f"{s}/{k}": torch.zeros_like(params[k]) for k in ctx.trainable for s in ("m", "v")}
        if self.momentum:
            return {f"m/{k}": torch.zeros_like(params[k]) for k in ctx.trainable}
        return {}

    def objective(self, model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``loss(model(x), y)`` with ``params`` swapped into ``model``."""
        return self.loss(functional_objective(model, params, x), y)

    def apply(self, params: Params, grads: Params, state: Params, ctx: StepContext, t: int) -> tuple[Params, Params]:
        """SGD (heavy-ball momentum, ``torch.optim.SGD``) or Adam (``torch.optim.Adam``, bias-corrected),
        with ``weight_decay * w`` and FedProx's ``mu * (w - w_global)`` added to the gradient.
        Updates ``params`` and ``state`` in place; entry by entry, so it runs unchanged on a
        stack of clients."""
        lr, wd, mu = self.round_lr, self.weight_decay, self.prox_mu
        b1, b2 = self.betas
        for k, g in grads.items():
            p = params[k]
            if wd:
                g = g.add(p, alpha=wd)
            if mu:
                g = g.add(p - ctx.global_params[k], alpha=mu)
            if self.optimizer == "adam":
                m, v = state[f"m/{k}"], state[f"v/{k}"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(self.eps)
                p.addcdiv_(m, denom, value=-lr / (1 - b1**t))
                continue
            if self.momentum:
                g = state[f"m/{k}"].mul_(self.momentum).add_(g)
            p.add_(g, alpha=-lr)
        return params, state
