"""q-FedAvg: fair federated learning by reweighting clients with their loss.

Li, Sanjabi, Beirami & Smith 2020, "Fair Resource Allocation in Federated Learning" (ICLR),
Algorithm 2 (q-FedAvg). q-FFL minimizes ``sum_k p_k / (q + 1) * F_k(w)^(q + 1)``: the larger
``q``, the more weight clients with a high loss get, and the more uniform the accuracy across
clients becomes (``q = 0`` is FedAvg with uniform weights). Each selected client ``k`` reports
its loss ``F_k(w^t)`` *at the model it received* and its locally trained ``w_k``; with
``L = 1 / local_lr`` (the paper's Lipschitz estimate)::

    dw_k    = L * (w^t - w_k)
    Delta_k = F_k^q * dw_k
    h_k     = q * F_k^(q - 1) * ||dw_k||^2 + L * F_k^q
    w^{t+1} = w^t - sum_k Delta_k / sum_k h_k

The start loss comes from :class:`QFFLClient`, which wraps any client update (``LocalSGD``,
...): it evaluates the received model on the client's own data, then delegates the training.
As in Flower's ``QFedAvg`` a ``1e-10`` is added to ``F_k`` before the powers (so ``q < 1``
survives a zero loss). Unlike Flower 1.42, which uses ONE server-side evaluation loss for every
client, each client's own loss is used, as the paper's algorithm states; with equal losses the
two agree (tested against Flower's ``QFedAvg.aggregate_fit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.api import ClientData, ClientResult, ClientUpdate, Strategy
from interlearn.federated.client.local_sgd import LocalSGD
from interlearn.federated.params import load_params
from interlearn.federated.strategies.aggregate import arithmetic_dtype, cast_back
from interlearn.tasks import cross_entropy
from interlearn.types import LossFn, Params

__all__ = ["START_LOSS", "QFFLClient", "QFedAvg", "qfedavg"]

START_LOSS = "qffl/start_loss"
"""Metric key of a client's loss at the received global model."""

_EPS = 1e-10  # as Flower's QFedAvg: F + 1e-10 before the powers


class QFFLClient:
    """Wraps a client update: reports the loss at the received model, then trains as ``inner``.

    Args:
        inner: the client update that trains (e.g. ``LocalSGD``); its ``loss`` (mean
            reduction) scores the received model when it has one, else cross-entropy.
        batch_size: examples per forward pass when scoring.

    Example:
        >>> from interlearn.federated import LocalSGD
        >>> client = QFFLClient(LocalSGD(epochs=1, batch_size=10, lr=0.1))
    """

    def __init__(self, inner: ClientUpdate, batch_size: int = 1024, loss: LossFn | None = None) -> None:
        if not callable(inner):
            raise ConfigError(f"QFFLClient wraps a client update (e.g. LocalSGD), got {inner!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size}: must be >= 1")
        self.inner = inner
        self.batch_size = int(batch_size)
        # the loss q-FFL weighs by: given, else the wrapped LocalSGD's, else cross-entropy
        self.loss: LossFn = loss if loss is not None else (inner.loss if isinstance(inner, LocalSGD) else cross_entropy)

    @torch.no_grad()
    def start_loss(self, model: nn.Module, params: Params, data: ClientData) -> float:
        """Mean loss of ``params`` on the client's own examples (model in eval mode)."""
        load_params(model, params)
        was_training = model.training
        model.eval()
        total, n = 0.0, len(data)
        for s in range(0, n, self.batch_size):
            xb, yb = data.x[s : s + self.batch_size], data.y[s : s + self.batch_size]
            total += float(self.loss(model(xb), yb)) * int(xb.shape[0])
        model.train(was_training)
        return total / max(n, 1)

    def __call__(
        self,
        model: nn.Module,
        params: Params,
        data: ClientData,
        client_state: Params | None,
        server_extras: Params,
        generator: torch.Generator,
    ) -> tuple[ClientResult, Params | None]:
        """Score the received model, then train with ``inner``; the result carries
        ``metrics[START_LOSS]``."""
        loss = self.start_loss(model, params, data) if len(data) else 0.0
        result, state = self.inner(model, params, data, client_state, server_extras, generator)
        return replace(result, metrics={**result.metrics, START_LOSS: loss}), state

    def __repr__(self) -> str:
        return f"QFFLClient({self.inner!r})"


class QFedAvg(Strategy):
    """The q-FedAvg server (see the module docstring). Weights are not used: the fairness
    reweighting comes from the losses.

    Args:
        q: fairness parameter ``q >= 0`` (0 = uniform FedAvg; the paper uses up to 15).
        local_lr: the clients' learning rate; ``L = 1 / local_lr``.

    Raises:
        ConfigError: ``q < 0`` or ``local_lr <= 0``; at aggregation, results without the start
            loss (train the clients with :class:`QFFLClient`) or a cohort already collapsed into
            one aggregate (secure aggregation / central DP noise).
    """

    name = "qfedavg"
    uses_weights = False
    required_metrics = (START_LOSS,)

    def __init__(self, q: float = 1.0, local_lr: float = 0.1) -> None:
        if not q >= 0:
            raise ConfigError(f"q-FedAvg: q={q!r} must be >= 0 (0 is FedAvg)")
        if not local_lr > 0:
            raise ConfigError(
                f"q-FedAvg: local_lr={local_lr!r} must be > 0 (the clients' learning rate; L = 1/local_lr)"
            )
        self.q = float(q)
        self.local_lr = float(local_lr)

    def init(self, params: Params) -> Params:
        return {}

    def aggregate(self, params: Params, results: Sequence[ClientResult], state: Params) -> tuple[Params, Params]:
        if not results:
            raise RoundSkipped("qfedavg: no client results to aggregate")
        lip = 1.0 / self.local_lr
        num: Params = {
            k: torch.zeros(v.shape, dtype=arithmetic_dtype(v.dtype), device=v.device) for k, v in params.items()
        }
        den = 0.0
        for r in results:
            if r.client_id < 0:
                raise ConfigError(
                    "q-FedAvg needs each client's update and loss, but a step (secure aggregation or central DP "
                    "noise) collapsed the cohort into one sum; drop one of the two"
                )
            if START_LOSS not in r.metrics:
                raise ConfigError(
                    f"q-FedAvg: client {r.client_id} reported no loss at the received model ({START_LOSS!r}); "
                    "wrap the client update: QFFLClient(LocalSGD(...))"
                )
            f = float(r.metrics[START_LOSS]) + _EPS
            fq = f**self.q
            sq = sum(float(torch.sum(v.detach().to(torch.float64) ** 2)) for v in r.update.values()) * lip * lip
            den += self.q * f ** (self.q - 1.0) * sq + lip * fq
            for k, v in num.items():
                # Delta_k = F^q * L * (w - w_k) = -F^q * L * update_k
                num[k] = v - (fq * lip) * r.update[k].to(v.dtype)
        new = {k: cast_back(v.to(num[k].dtype) - num[k] / den, v.dtype) for k, v in params.items()}
        return new, {}

    def __repr__(self) -> str:
        return f"QFedAvg(q={self.q}, local_lr={self.local_lr})"


def qfedavg(q: float = 1.0, local_lr: float = 0.1) -> QFedAvg:
    """q-FedAvg (Li et al. 2020); train the clients with :class:`QFFLClient`."""
    return QFedAvg(q, local_lr)
