"""Local training on one device from a given start: the personalization trajectories.

After federated training each user adapts the global model on their own data: a few steps of
fine-tuning (Wang et al. 2019, "Federated Evaluation of On-device Personalization"), or Ditto's
personal objective ``f_k(v) + lam/2 ||v - w*||^2`` (Li et al. 2021). Both are the federated
client's own step, run from a start point on a subset of the entries: the batches come from
:meth:`LocalSGD.schedule <interlearn.federated.client.LocalSGD.schedule>` and every update from
:meth:`LocalSGD.apply <interlearn.federated.client.LocalSGD.apply>` (SGD or Adam, written once in
:mod:`interlearn.federated.client`), driven by :func:`run_trajectory`, which records the
parameters after chosen step counts so that a user's validation split can pick how long to
train (:mod:`interlearn.federated.personalization.select`).

Ditto's pull toward the global model is :class:`ProximalSGD`: after each step the exact
proximal operator of ``lam/2 ||p - anchor||^2``, ``p <- (p + lr lam anchor) / (1 + lr lam)``.
It agrees with a gradient step on the penalty to first order in ``lr lam`` and, unlike it,
cannot overshoot the anchor when ``lr * lam`` is large.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.client import LocalSGD, StepContext, StepUpdate
from interlearn.tasks import cross_entropy
from interlearn.types import LossFn, Params

__all__ = ["ProximalSGD", "run_trajectory", "sgd_trajectory"]


@dataclass(frozen=True)
class ProximalSGD(LocalSGD):
    """:class:`LocalSGD` whose every step ends with the proximal step of ``lam/2 ||p - a||^2``
    toward the anchor ``a`` (the step context's ``global_params``): Ditto's personal update.

    Attributes:
        lam: the proximal weight (Ditto's ``lambda``, >= 0; 0 is plain local training).
        (and every :class:`LocalSGD` field: steps, batch_size, lr, optimizer, loss, ...)

    Raises:
        ConfigError: ``lam < 0`` or a bad :class:`LocalSGD` field.
    """

    lam: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lam >= 0:
            raise ConfigError(f"lam={self.lam}: the proximal weight must be >= 0")

    def apply(self, params: Params, grads: Params, state: Params, ctx: StepContext, t: int) -> tuple[Params, Params]:
        """:meth:`LocalSGD.apply`, then ``p <- (p + lr lam a) / (1 + lr lam)`` on the stepped entries."""
        params, state = super().apply(params, grads, state, ctx, t)
        if self.lam:
            for k in grads:  # the proximal step of lam/2 ||p - a||^2 (stable for any lr * lam)
                lr = self.round_lr
                params[k].add_(lr * self.lam * ctx.global_params[k]).div_(1.0 + lr * self.lam)
        return params, state


def run_trajectory(
    update: StepUpdate,
    model: nn.Module,
    start: Params,
    data: TensorData,
    checkpoints: Sequence[int],
    generator: torch.Generator,
    anchor: Params | None = None,
    trainable: Sequence[str] | None = None,
) -> dict[int, Params]:
    """``update``'s steps from ``start`` on ``data`` (its ``schedule``, ``init_state`` and
    ``step``); the parameters after each step count in ``checkpoints``. Pure: ``start`` and
    ``model``'s own tensors are not changed.

    Args:
        update: the client step (e.g. :class:`LocalSGD` with ``steps`` set, or :class:`ProximalSGD`).
        model: the architecture (only used through ``functional_call``).
        start: the parameters to start from.
        data: the user's training data.
        checkpoints: step counts to return (positive; the schedule must reach the largest).
        generator: seeds the batch order.
        anchor: the step context's ``global_params`` (FedProx's and Ditto's anchor; default ``start``).
        trainable: names trained (default: every floating-point entry); the others are shared
            with ``start``.

    Returns:
        ``{steps: params}`` for every requested step count the schedule reaches.

    Raises:
        DataError: no training data.
    """
    if len(data) == 0:
        raise DataError("the user has no training examples; skip users without data")
    names = tuple(trainable) if trainable is not None else tuple(k for k, v in start.items() if v.is_floating_point())
    ctx = StepContext(global_params=anchor if anchor is not None else start, server_extras={}, trainable=names)
    params = {k: v.detach().clone() if k in names else v for k, v in start.items()}
    state = update.init_state(params, None, ctx)
    wanted = set(checkpoints)
    out: dict[int, Params] = {}
    for t, idx in enumerate(update.schedule(len(data), generator), start=1):
        params, state, _ = update.step(model, params, state, data.x[idx], data.y[idx], ctx, t)
        if t in wanted:
            out[t] = {k: v.detach().clone() if k in names else v for k, v in params.items()}
    return out


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
    """Local SGD (or Adam) from ``start`` on ``data``, with an optional proximal pull
    ``lam/2 ||p - anchor||^2``; the parameters after each step count in ``checkpoints``. Pure.

    Batches are epochs of fresh permutations, as in local training (:meth:`LocalSGD.schedule`).

    Args:
        model: the architecture (only used through ``functional_call``).
        start: the parameters to start from (e.g. the global model's).
        data: the user's training data.
        checkpoints: step counts to return (0 returns ``start`` itself).
        lr: learning rate.
        batch_size: minibatch size.
        generator: seeds the batch order.
        loss_fn: ``loss_fn(output, y)``.
        anchor: the parameters the proximal term pulls toward (Ditto's ``w*``); ``None``: no pull.
        lam: the proximal weight (Ditto's ``lambda``).
        trainable: names trained (default: every floating-point entry).
        optimizer: ``"sgd"`` (plain steps) or ``"adam"`` (fresh state; for models trained with
            Adam, whose parameters have very different gradient scales).

    Returns:
        ``{steps: params}`` for every requested step count.

    Raises:
        ConfigError: negative step counts, ``lr <= 0``, ``batch_size < 1``, ``lam < 0`` or an
            unknown optimizer.
        DataError: no training data while a positive step count is requested.
    """
    wanted = _checked_steps(checkpoints, lr, batch_size, lam, optimizer)
    out: dict[int, Params] = {0: dict(start)} if wanted[0] == 0 else {}
    if wanted[-1] == 0:
        return out
    update = ProximalSGD(
        steps=wanted[-1],
        batch_size=batch_size,
        lr=lr,
        optimizer="adam" if optimizer == "adam" else "sgd",
        loss=loss_fn,
        lam=lam if anchor is not None else 0.0,
    )
    steps = [s for s in wanted if s > 0]
    return {**out, **run_trajectory(update, model, start, data, steps, generator, anchor=anchor, trainable=trainable)}


def _checked_steps(checkpoints: Sequence[int], lr: float, batch_size: int, lam: float, optimizer: str) -> list[int]:
    """The sorted distinct step counts, once :func:`sgd_trajectory`'s arguments are checked."""
    wanted = sorted({int(c) for c in checkpoints})
    if not wanted or wanted[0] < 0 or lr <= 0 or batch_size < 1 or lam < 0 or optimizer not in ("sgd", "adam"):
        raise ConfigError(
            f"checkpoints={list(checkpoints)}, lr={lr}, batch_size={batch_size}, lam={lam}, optimizer={optimizer!r}: "
            "need step counts >= 0, lr > 0, batch_size >= 1, lam >= 0, optimizer 'sgd' or 'adam'"
        )
    return wanted
