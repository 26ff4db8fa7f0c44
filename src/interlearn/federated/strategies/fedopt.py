"""Adaptive federated optimization: FedAdagrad, FedAdam and FedYogi.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar & McMahan 2021, "Adaptive Federated
Optimization" (ICLR), Algorithm 2. With ``delta`` the aggregated client update::

    m <- beta1 * m + (1 - beta1) * delta
    v <- v + delta^2                                       (FedAdagrad)
    v <- beta2 * v + (1 - beta2) * delta^2                 (FedAdam)
    v <- v - (1 - beta2) * delta^2 * sign(v - delta^2)     (FedYogi)
    x <- x + lr * m / (sqrt(v) + tau)

with ``m_0 = 0`` and ``v_0 = tau^2`` as in the paper (no bias correction).
"""

from __future__ import annotations

from typing import Literal

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import Aggregator
from interlearn.federated.strategies.base import ServerStrategy
from interlearn.types import Params

__all__ = ["ServerAdaptive", "fedadam", "fedyogi", "fedadagrad"]

Rule = Literal["adagrad", "adam", "yogi"]


class ServerAdaptive:
    """The server optimizer of Reddi et al. 2021 (see module docstring).

    Args:
        rule: ``"adagrad"``, ``"adam"`` or ``"yogi"``.
        lr: server learning rate ``eta`` (the paper tunes it; 1e-2 is a common start).
        beta1: first-moment decay in [0, 1).
        beta2: second-moment decay in [0, 1) (unused by adagrad).
        tau: adaptivity ``tau`` > 0 (also ``sqrt(v_0)``).

    Raises:
        ConfigError: an unknown rule or a value out of range.
    """

    def __init__(
        self, rule: Rule, lr: float = 1e-2, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3
    ) -> None:
        if rule not in ("adagrad", "adam", "yogi"):
            raise ConfigError(f"server rule {rule!r}: choose 'adagrad', 'adam' or 'yogi'")
        if not lr > 0:
            raise ConfigError(f"server lr={lr}: must be > 0")
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ConfigError(f"beta1={beta1}, beta2={beta2}: both must be in [0, 1)")
        if not tau > 0:
            raise ConfigError(f"tau={tau}: must be > 0 (the paper uses 1e-3)")
        self.rule = rule
        self.lr, self.beta1, self.beta2, self.tau = float(lr), float(beta1), float(beta2), float(tau)

    def init(self, params: Params) -> Params:
        state: Params = {}
        for k, v in params.items():
            state[f"m/{k}"] = torch.zeros_like(v)
            state[f"v/{k}"] = torch.full_like(v, self.tau**2)
        return state

    def step(self, params: Params, delta: Params, state: Params) -> tuple[Params, Params]:
        new: Params = {}
        new_state: Params = {}
        b1, b2 = self.beta1, self.beta2
        for k, x in params.items():
            d = delta[k].to(x.dtype)
            m = b1 * state[f"m/{k}"] + (1 - b1) * d
            v = state[f"v/{k}"]
            d2 = d * d
            if self.rule == "adagrad":
                v = v + d2
            elif self.rule == "adam":
                v = b2 * v + (1 - b2) * d2
            else:
                v = v - (1 - b2) * d2 * torch.sign(v - d2)
            new_state[f"m/{k}"], new_state[f"v/{k}"] = m, v
            new[k] = x + self.lr * m / (v.sqrt() + self.tau)
        return new, new_state

    def __repr__(self) -> str:
        return f"ServerAdaptive({self.rule!r}, lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, tau={self.tau})"


def fedadam(
    lr: float = 1e-2, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3, aggregator: Aggregator | None = None
) -> ServerStrategy:
    """FedAdam (Reddi et al. 2021)."""
    return ServerStrategy(ServerAdaptive("adam", lr, beta1, beta2, tau), aggregator, name="fedadam")


def fedyogi(
    lr: float = 1e-2, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3, aggregator: Aggregator | None = None
) -> ServerStrategy:
    """FedYogi (Reddi et al. 2021)."""
    return ServerStrategy(ServerAdaptive("yogi", lr, beta1, beta2, tau), aggregator, name="fedyogi")


def fedadagrad(
    lr: float = 1e-2, beta1: float = 0.0, tau: float = 1e-3, aggregator: Aggregator | None = None
) -> ServerStrategy:
    """FedAdagrad (Reddi et al. 2021; the paper's experiments use ``beta1 = 0`` for it)."""
    return ServerStrategy(ServerAdaptive("adagrad", lr, beta1, 0.0, tau), aggregator, name="fedadagrad")
