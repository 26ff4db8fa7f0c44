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
  (:mod:`interlearn.federated.personalization.select`). This is how every user gets a Ditto model,
  including the many users of a large population who never took part in a round.

Both run the federated client's own step: the global part is :class:`LocalSGD` itself, the
personal part its :class:`~interlearn.federated.trajectory.ProximalSGD` variant (the proximal
step of ``lambda/2 ||v - w||^2`` after each SGD step, :mod:`interlearn.federated.trajectory`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData, ClientResult
from interlearn.federated.client import LocalSGD, run_client
from interlearn.federated.trajectory import sgd_trajectory
from interlearn.tasks import cross_entropy
from interlearn.types import LossFn, Params

__all__ = ["DittoUpdate", "ditto_trajectory"]


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
    checkpoint. See :func:`~interlearn.federated.trajectory.sgd_trajectory` for the arguments."""
    return sgd_trajectory(
        model,
        global_params,
        data,
        checkpoints,
        lr,
        batch_size,
        generator,
        loss_fn,
        anchor=global_params,
        lam=lam,
        optimizer=optimizer,
    )


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
            raise ConfigError(
                f"DittoUpdate: lam={self.lam} (>= 0), batch_size={self.batch_size} (>= 1), lr={self.lr} (> 0), "
                f"personal_steps={self.personal_steps} (>= 0)"
            )
        if (self.steps is None and self.epochs < 1) or (self.steps is not None and self.steps < 1):
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
        global_update = LocalSGD(
            epochs=self.epochs, steps=self.steps, batch_size=self.batch_size, lr=self.lr, loss=self.loss_fn
        )
        result, _ = run_client(global_update, model, params, data, None, server_extras, generator)
        # personal part: v <- prox(v - lr grad f_k(v)), pulled toward w = the received global model
        names = [k for k, v in params.items() if v.is_floating_point()]
        if not self.personal_steps:
            return result, client_state
        start = dict(params) if not client_state else {**params, **client_state}
        personal = sgd_trajectory(
            model,
            start,
            TensorData(data.x, data.y),
            [self.personal_steps],
            self.personal_lr or self.lr,
            self.batch_size,
            generator,
            self.loss_fn,
            anchor=params,
            lam=self.lam,
        )[self.personal_steps]
        return result, {k: personal[k].detach() for k in names}
