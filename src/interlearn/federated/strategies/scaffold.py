"""SCAFFOLD, server side.

Karimireddy, Kale, Mohri, Reddi, Stich & Suresh 2020, "SCAFFOLD: Stochastic Controlled
Averaging for Federated Learning" (ICML), Algorithm 1. Each client uploads its model delta
``dy_i`` and its control-variate delta ``dc_i`` (in ``ClientResult.extras``, keyed like the
params); the server keeps the global control variate ``c`` and sends it to the cohort::

    dx = (1/|S|) sum_i dy_i            (the aggregator; uniform mean as in the paper)
    x <- x + lr_g * dx
    c <- c + (|S| / N) * (1/|S|) sum_i dc_i

The client side is :class:`interlearn.federated.client.ScaffoldClient`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interlearn.errors import ConfigError, RoundSkipped, UpdateRejected
from interlearn.federated.api import Aggregator, ClientResult, Strategy
from interlearn.federated.strategies.aggregate import WeightedMean, check_aggregator
from interlearn.types import Params

__all__ = ["Scaffold", "scaffold"]

AGGREGATE_ID = -1  # a result standing for a whole cohort (see federated.privacy.cohort)


def _count(r: ClientResult) -> float:
    return float(r.metrics.get("num_clients", 1.0)) if r.client_id == AGGREGATE_ID else 1.0


class Scaffold(Strategy):
    """The SCAFFOLD server (see module docstring).

    Args:
        num_clients: population size ``N`` (the control variate moves by ``|S|/N``).
        lr: global learning rate ``eta_g`` (1.0 in the paper's experiments).
        aggregator: combines the model deltas (default: uniform mean, as in the paper).

    Raises:
        ConfigError: ``num_clients < 1`` or ``lr <= 0``.
    """

    name = "scaffold"
    requires_extras = True  # every client uploads its control-variate delta

    @property
    def uses_weights(self) -> bool:
        """Whether ``ClientResult.weight`` changes the result (the aggregator's; the paper's
        uniform mean by default: no)."""
        return self.aggregator.uses_weights

    def __init__(self, num_clients: int, lr: float = 1.0, aggregator: Aggregator | None = None) -> None:
        if int(num_clients) < 1:
            raise ConfigError(f"scaffold num_clients={num_clients}: must be the population size (>= 1)")
        if not lr > 0:
            raise ConfigError(f"scaffold lr={lr}: must be > 0")
        self.num_clients = int(num_clients)
        self.lr = float(lr)
        self.aggregator: Aggregator = (
            check_aggregator(aggregator) if aggregator is not None else WeightedMean(uniform=True)
        )

    def init(self, params: Params) -> Params:
        return {f"c/{k}": torch.zeros_like(v) for k, v in params.items()}

    def server_extras(self, state: Params) -> Params:
        """The global control variate ``c``, keyed like the params, sent to every client."""
        return {k[2:]: v for k, v in state.items()}

    def aggregate(self, params: Params, results: Sequence[ClientResult], state: Params) -> tuple[Params, Params]:
        if not results:
            raise RoundSkipped("scaffold: no client results to aggregate")
        for r in results:
            if r.extras.keys() != params.keys():
                raise UpdateRejected(
                    f"scaffold: client {r.client_id} sent no control-variate delta for every parameter; "
                    "train the clients with ScaffoldClient"
                )
        dx = self.aggregator(results)
        new = {k: v + self.lr * dx[k].to(v.dtype) for k, v in params.items()}
        # sum_i dc_i over the real clients (an aggregate result carries its cohort's mean)
        new_state: Params = {}
        for k, v in params.items():
            total = sum(r.extras[k].to(v.dtype) * _count(r) for r in results)
            new_state[f"c/{k}"] = state[f"c/{k}"] + total / self.num_clients  # (|S|/N) * mean
        return new, new_state

    def __repr__(self) -> str:
        return f"Scaffold(num_clients={self.num_clients}, lr={self.lr})"


def scaffold(num_clients: int, lr: float = 1.0, aggregator: Aggregator | None = None) -> Scaffold:
    """SCAFFOLD's server (Karimireddy et al. 2020); pair it with ``ScaffoldClient``."""
    return Scaffold(num_clients, lr, aggregator)
