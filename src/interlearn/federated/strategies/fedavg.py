"""FedAvg and FedAvgM: the server-SGD family.

* FedAvg — McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
  Decentralized Data" (AISTATS): the new model is the example-weighted mean of the client
  models, i.e. ``x <- x + mean_k(delta_k)`` (server SGD with learning rate 1 on the pseudo-
  gradient ``-delta``).
* FedAvgM — Hsu, Qi & Brown 2019, "Measuring the Effects of Non-Identical Data Distribution for
  Federated Visual Classification": server momentum ``v <- beta * v + delta; x <- x + lr * v``.
"""

from __future__ import annotations

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import Aggregator
from interlearn.federated.strategies.base import ServerStrategy
from interlearn.types import Params

__all__ = ["ServerSGD", "fedavg", "fedavgm"]


class ServerSGD:
    """Server SGD (with optional heavy-ball momentum) on the pseudo-gradient ``-delta``.

    Args:
        lr: server learning rate (1.0 = FedAvg).
        momentum: ``beta`` in [0, 1); 0 keeps no state.

    Raises:
        ConfigError: ``lr <= 0`` or ``momentum`` outside [0, 1).
    """

    def __init__(self, lr: float = 1.0, momentum: float = 0.0) -> None:
        if not lr > 0:
            raise ConfigError(f"server lr={lr}: must be > 0 (1.0 is plain FedAvg)")
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"server momentum={momentum}: must be in [0, 1) (0.9 is usual for FedAvgM)")
        self.lr = float(lr)
        self.momentum = float(momentum)

    def init(self, params: Params) -> Params:
        if self.momentum == 0.0:
            return {}
        return {f"v/{k}": torch.zeros_like(v) for k, v in params.items()}

    def step(self, params: Params, delta: Params, state: Params) -> tuple[Params, Params]:
        if self.momentum == 0.0:
            if self.lr == 1.0:  # plain FedAvg: exactly the weighted mean of the client models
                return {k: v + delta[k].to(v.dtype) for k, v in params.items()}, {}
            return {k: v + self.lr * delta[k].to(v.dtype) for k, v in params.items()}, {}
        new_state: Params = {}
        new: Params = {}
        for k, v in params.items():
            buf = self.momentum * state[f"v/{k}"] + delta[k].to(v.dtype)
            new_state[f"v/{k}"] = buf
            new[k] = v + self.lr * buf
        return new, new_state

    def __repr__(self) -> str:
        return f"ServerSGD(lr={self.lr}, momentum={self.momentum})"


def fedavg(lr: float = 1.0, aggregator: Aggregator | None = None) -> ServerStrategy:
    """FedAvg (McMahan et al. 2017): weighted mean of client updates, server lr ``lr``."""
    return ServerStrategy(ServerSGD(lr=lr), aggregator, name="fedavg")


def fedavgm(lr: float = 1.0, momentum: float = 0.9, aggregator: Aggregator | None = None) -> ServerStrategy:
    """FedAvgM (Hsu et al. 2019): FedAvg with server momentum ``momentum``."""
    return ServerStrategy(ServerSGD(lr=lr, momentum=momentum), aggregator, name="fedavgm")
