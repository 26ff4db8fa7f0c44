"""Local training on one client: FedAvg's ClientUpdate, with FedProx's proximal term.

* FedAvg client — McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
  Decentralized Data" (AISTATS), Algorithm 1: ``E`` local epochs of minibatch SGD with batch
  size ``B`` (or a fixed number of local steps), starting from the global model.
* FedProx — Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith 2020, "Federated Optimization in
  Heterogeneous Networks" (MLSys): the local loss gets ``mu/2 * ||w - w_global||^2``.

The minibatch order comes from :func:`batch_schedule` and the client's own generator, so the
sequential and vectorized engines visit exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData, ClientResult
from interlearn.federated.params import load_params, model_params
from interlearn.types import Params

__all__ = ["LocalSGD", "batch_schedule", "cross_entropy"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy; (B, C) logits with (B,) labels or (B, C, T) with (B, T)."""
    return F.cross_entropy(logits, y.long())


def batch_schedule(
    n: int, batch_size: int | None, epochs: int, steps: int | None, generator: torch.Generator
) -> list[torch.Tensor]:
    """The minibatches (example indices) of one client's local training.

    Each epoch is a fresh permutation of ``range(n)`` drawn from ``generator``, cut into batches
    of ``batch_size`` (the last one may be smaller; ``None`` = the whole local set). With
    ``steps`` set, epochs are drawn until exactly ``steps`` batches exist.
    """
    b = n if batch_size is None else min(batch_size, n)
    out: list[torch.Tensor] = []
    target = steps if steps is not None else None
    e = 0
    while True:
        if target is None and e >= epochs:
            break
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, b):
            if target is not None and len(out) >= target:
                return out
            out.append(perm[start : start + b])
        e += 1
    return out


@dataclass(frozen=True)
class LocalSGD:
    """The standard client update (FedAvg; FedProx with ``prox_mu > 0``).

    Attributes:
        epochs: local epochs ``E`` (ignored when ``steps`` is set).
        steps: exact number of local minibatch steps instead of epochs.
        batch_size: local batch size ``B``; ``None`` = full batch (McMahan's ``B = inf``).
        lr: local learning rate.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``; a fresh optimizer per round.
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

    epochs: int = 1
    steps: int | None = None
    batch_size: int | None = 10
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    prox_mu: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    loss: LossFn = field(default=cross_entropy, compare=False)

    def __post_init__(self) -> None:
        if self.steps is None and int(self.epochs) < 1:
            raise ConfigError(f"epochs={self.epochs}: must be >= 1 (or set steps)")
        if self.steps is not None and int(self.steps) < 1:
            raise ConfigError(f"steps={self.steps}: must be >= 1 (or None to train for epochs)")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise ConfigError(f"batch_size={self.batch_size}: must be >= 1 (or None for full batch)")
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr}: must be > 0")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"optimizer={self.optimizer!r}: choose 'sgd' or 'adam'")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum={self.momentum}: must be in [0, 1)")
        if self.weight_decay < 0 or self.prox_mu < 0:
            raise ConfigError(f"weight_decay={self.weight_decay}, prox_mu={self.prox_mu}: must be >= 0")

    def schedule(self, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        """This client's minibatches (see :func:`batch_schedule`)."""
        return batch_schedule(n, self.batch_size, self.epochs, self.steps, generator)

    def _optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def _correct_grads(self, named: list[tuple[str, nn.Parameter]], correction: Params) -> None:
        """Hook for subclasses that change the gradient (SCAFFOLD); identity here."""

    def _finish(
        self, params: Params, local: Params, steps: int, client_state: Params | None, correction: Params, trainable: set[str]
    ) -> tuple[Params, Params | None]:
        """Hook: extras to upload and the new client state (none for plain local SGD)."""
        return {}, client_state

    def _correction(self, params: Params, client_state: Params | None, server_extras: Params) -> Params:
        return {}

    def __call__(
        self,
        model: nn.Module,
        params: Params,
        data: ClientData,
        client_state: Params | None,
        server_extras: Params,
        generator: torch.Generator,
    ) -> tuple[ClientResult, Params | None]:
        """Train ``model`` from ``params`` on ``data``; return the update and the client state.

        Raises:
            DataError: the client has no examples.
        """
        n = len(data)
        if n == 0:
            raise DataError(f"client {data.client_id} has no training examples; drop empty clients from the partition")
        load_params(model, params)
        model.train()
        named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
        opt = self._optimizer([p for _, p in named])
        correction = self._correction(params, client_state, server_extras)
        prox = [(p, params[k]) for k, p in named if k in params] if self.prox_mu > 0 else []
        batches = self.schedule(n, generator)
        loss_sum = torch.zeros((), device=data.x.device)
        for idx in batches:
            out = model(data.x[idx])
            loss = self.loss(out, data.y[idx])
            total = loss
            if prox:
                total = loss + 0.5 * self.prox_mu * sum(((p - g) ** 2).sum() for p, g in prox)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if correction:
                self._correct_grads(named, correction)
            opt.step()
            loss_sum += loss.detach()
        local = model_params(model)
        update = {k: local[k] - v for k, v in params.items()}
        extras, new_state = self._finish(params, local, len(batches), client_state, correction, {k for k, _ in named})
        metrics = {"loss": float(loss_sum) / len(batches), "steps": float(len(batches)), "examples": float(n)}
        return ClientResult(data.client_id, update, float(n), metrics, extras), new_state
