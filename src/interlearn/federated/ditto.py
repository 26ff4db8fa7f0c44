"""Ditto: personal models regularized toward the global model.

Li, Hu, Beirami & Smith 2021, "Ditto: Fair and Robust Federated Learning Through
Personalization" (ICML). Every client ``k`` keeps a personal model ``v_k`` that minimizes

    f_k(v_k) + lambda / 2 * ||v_k - w*||^2

where ``w*`` is the global model trained by any federated method (FedAvg here). ``lambda``
interpolates between local training (0) and the global model (infinity); Li et al. choose it
per data set from a small grid, and note that it can be tuned locally by every client.

Two ways to use it:

* :class:`DittoUpdate` — Algorithm 1 of the paper as a ``ClientUpdate``: a participating client
  runs the usual local SGD on the global model (whose update it uploads) and then
  ``personal_steps`` steps on its personal objective against the global model it received; the
  personal model is the client's private state and never leaves the device.
* :func:`ditto_trajectory` — the personal objective solved on a device after global training
  (``w*`` fixed), returning the personal model after several step counts so that a user's
  validation split can choose ``lambda`` and the number of steps
  (:mod:`interlearn.federated.personal_select`). This is how every user gets a Ditto model,
  including the many users of a large population who never took part in a round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData, ClientResult
from interlearn.federated.client.local_sgd import batch_schedule, cross_entropy
from interlearn.types import Params

__all__ = ["DittoUpdate", "ditto_trajectory", "sgd_trajectory"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sgd_trajectory(
    model: nn.Module,
    start: Params,
    data: TensorData,
    checkpoints: Sequence[int],
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: LossFn = cross_entropy,
    anchor: Params | None = None,
    lam: float = 0.0,
    trainable: Sequence[str] | None = None,
    optimizer: str = "sgd",
) -> dict[int, Params]:
    """SGD (or Adam) from ``start`` on ``data``, with an optional pull ``lam/2 ||p - anchor||^2``;
    the parameters after each step count in ``checkpoints``. Pure: ``start`` is not changed.

    The pull is applied as a proximal step after the data gradient step,
    ``p <- (p + lr lam anchor) / (1 + lr lam)``: the exact minimizer of the quadratic term plus
    ``||p - p_half||^2 / (2 lr)``. It agrees with a gradient step to first order in ``lr lam``
    and, unlike it, cannot overshoot the anchor when ``lr * lam`` is large.

    Args:
        model: the architecture (only used through ``functional_call``).
        start: the parameters to start from (e.g. the global model's).
        data: the user's training data.
        checkpoints: step counts to return (0 returns ``start`` itself).
        lr: SGD learning rate.
        batch_size: minibatch size; batches are epochs of fresh permutations (as local SGD).
        generator: seeds the batch order.
        loss_fn: ``loss_fn(output, y)``.
        anchor: the parameters the proximal term pulls toward (Ditto's ``w*``); ``None``: no pull.
        lam: the proximal weight (Ditto's ``lambda``).
        trainable: names trained (default: every floating-point entry).
        optimizer: ``"sgd"`` (plain steps) or ``"adam"`` (``torch.optim.Adam``, fresh state;
            for models trained with Adam, whose parameters have very different gradient scales).

    Returns:
        ``{steps: params}`` for every requested step count.

    Raises:
        ConfigError: negative step counts, ``lr <= 0``, ``batch_size < 1`` or ``lam < 0``.
        DataError: no training data while a positive step count is requested.
    """
    wanted = sorted(set(int(c) for c in checkpoints))
    if not wanted or wanted[0] < 0 or lr <= 0 or batch_size < 1 or lam < 0 or optimizer not in ("sgd", "adam"):
        raise ConfigError(f"checkpoints={list(checkpoints)}, lr={lr}, batch_size={batch_size}, lam={lam}, optimizer={optimizer!r}: "
                          "need step counts >= 0, lr > 0, batch_size >= 1, lam >= 0, optimizer 'sgd' or 'adam'")
    out: dict[int, Params] = {}
    if wanted[0] == 0:
        out[0] = dict(start)
    if wanted[-1] == 0:
        return out
    if len(data) == 0:
        raise DataError("sgd_trajectory: the user has no training examples; skip users without data")
    names = list(trainable) if trainable is not None else [k for k, v in start.items() if v.is_floating_point()]
    current = {k: (v.detach().clone().requires_grad_(True) if k in names else v) for k, v in start.items()}
    train = [current[k] for k in names]
    pull = [(current[k], anchor[k]) for k in names] if anchor is not None and lam > 0 else []
    batches = batch_schedule(len(data), batch_size, 1, wanted[-1], generator)
    adam = torch.optim.Adam(train, lr=lr) if optimizer == "adam" else None
    for step, idx in enumerate(batches, start=1):
        loss = loss_fn(functional_call(model, current, (data.x[idx],)), data.y[idx])
        grads = torch.autograd.grad(loss, train)
        with torch.no_grad():
            if adam is not None:
                for p, g in zip(train, grads):
                    p.grad = g
                adam.step()
            else:
                for p, g in zip(train, grads):
                    p.sub_(lr * g)
            for p, a in pull:  # the proximal step of lam/2 ||p - a||^2 (stable for any lr * lam)
                p.add_(lr * lam * a).div_(1.0 + lr * lam)
        if step in wanted:
            out[step] = {k: v.detach().clone() if k in names else v for k, v in current.items()}
    return out


def ditto_trajectory(
    model: nn.Module,
    global_params: Params,
    data: TensorData,
    lam: float,
    checkpoints: Sequence[int],
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: LossFn = cross_entropy,
    optimizer: str = "sgd",
) -> dict[int, Params]:
    """Ditto's personal objective on one device with the global model ``w*`` fixed: SGD (or
    Adam) on ``f_k(v) + lam/2 ||v - w*||^2`` from ``v = w*``; the personal model after each
    checkpoint. See :func:`sgd_trajectory` for the arguments."""
    return sgd_trajectory(model, global_params, data, checkpoints, lr, batch_size, generator, loss_fn, anchor=global_params, lam=lam,
                          optimizer=optimizer)


@dataclass(frozen=True)
class DittoUpdate:
    """Ditto's client update (Li et al. 2021, Algorithm 1).

    The global part is FedAvg's local SGD (``epochs`` or ``steps`` of batch ``batch_size`` at
    ``lr``); its update is uploaded. The personal part takes ``personal_steps`` SGD steps on
    ``f_k(v) + lam/2 ||v - w||^2`` (``w``: the global model received this round) at
    ``personal_lr``; ``v`` is the client's private state (initialized to ``w`` on first
    participation) and is never uploaded.

    Attributes:
        lam: Ditto's ``lambda`` (>= 0).
        epochs: local epochs of the global update (ignored when ``steps`` is set).
        steps: exact local steps of the global update instead of epochs.
        batch_size: minibatch size of both updates.
        lr: learning rate of the global update.
        personal_steps: steps on the personal objective per participation.
        personal_lr: learning rate of the personal update (``None``: ``lr``).
        loss_fn: ``loss_fn(output, y)``.
    """

    lam: float = 0.1
    epochs: int = 1
    steps: int | None = None
    batch_size: int = 10
    lr: float = 0.1
    personal_steps: int = 10
    personal_lr: float | None = None
    loss_fn: LossFn = field(default=cross_entropy, compare=False)

    def __post_init__(self) -> None:
        if self.lam < 0 or self.batch_size < 1 or self.lr <= 0 or self.personal_steps < 0:
            raise ConfigError(f"DittoUpdate: lam={self.lam} (>= 0), batch_size={self.batch_size} (>= 1), lr={self.lr} (> 0), "
                              f"personal_steps={self.personal_steps} (>= 0)")
        if self.steps is None and self.epochs < 1 or self.steps is not None and self.steps < 1:
            raise ConfigError(f"DittoUpdate: epochs={self.epochs}, steps={self.steps}; give epochs >= 1 or steps >= 1")
        if self.personal_lr is not None and self.personal_lr <= 0:
            raise ConfigError(f"DittoUpdate.personal_lr={self.personal_lr}: must be > 0 (or None for lr)")

    def __call__(
        self,
        model: nn.Module,
        params: Params,
        data: ClientData,
        client_state: Params | None,
        server_extras: Params,
        generator: torch.Generator,
    ) -> tuple[ClientResult, Params | None]:
        """One participation: the global update (uploaded) and the personal update (kept).

        Raises:
            DataError: the client has no examples.
        """
        n = len(data)
        if n == 0:
            raise DataError(f"client {data.client_id} has no training examples; drop empty clients from the partition")
        local = TensorData(data.x, data.y)
        names = [k for k, v in params.items() if v.is_floating_point()]
        # global part: FedAvg's local SGD, the same batch schedule as LocalSGD
        current = {k: (v.detach().clone().requires_grad_(True) if k in names else v) for k, v in params.items()}
        train = [current[k] for k in names]
        losses = []
        for idx in batch_schedule(n, self.batch_size, self.epochs, self.steps, generator):
            loss = self.loss_fn(functional_call(model, current, (local.x[idx],)), local.y[idx])
            grads = torch.autograd.grad(loss, train)
            with torch.no_grad():
                for p, g in zip(train, grads):
                    p.sub_(self.lr * g)
            losses.append(float(loss.detach()))
        update = {k: current[k].detach() - params[k] for k in params}
        # personal part: v <- v - lr (grad f_k(v) + lam (v - w)), w = the received global model
        start = dict(params) if not client_state else {**params, **client_state}
        personal = params
        if self.personal_steps:
            personal = sgd_trajectory(model, start, local, [self.personal_steps], self.personal_lr or self.lr, self.batch_size,
                                      generator, self.loss_fn, anchor=params, lam=self.lam)[self.personal_steps]
        metrics = {"loss": sum(losses) / max(len(losses), 1), "steps": float(len(losses)), "examples": float(n)}
        state = {k: personal[k].detach() for k in names} if self.personal_steps else client_state
        return ClientResult(data.client_id, update, float(n), metrics), state
