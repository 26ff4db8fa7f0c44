"""A strategy = an aggregator (how the cohort's updates combine) + a server optimizer (how the
combined update moves the global params), after Reddi et al. 2021, "Adaptive Federated
Optimization" (ICLR), Algorithm 1: the server treats the averaged client delta as a
pseudo-gradient for its own optimizer. Swapping the aggregator (median, trimmed mean, Krum,
secure sum) never touches the optimizer, and vice versa (STYLE.md #2).
"""

from __future__ import annotations

from collections.abc import Sequence

from interlearn.errors import RoundSkipped
from interlearn.federated.api import Aggregator, ClientResult, ServerOptimizer, Strategy
from interlearn.federated.strategies.aggregate import WeightedMean, check_aggregator
from interlearn.types import Params

__all__ = ["ServerStrategy", "server_extras"]


class ServerStrategy(Strategy):
    """``aggregate`` = ``optimizer.step(params, aggregator(results))``.

    Args:
        optimizer: a :class:`~interlearn.federated.api.ServerOptimizer`.
        aggregator: a :class:`~interlearn.federated.api.Aggregator` (default: the example-weighted
            mean, FedAvg's rule).
        name: a label for logs and metrics.

    Example:
        >>> from interlearn.federated.strategies import ServerSGD
        >>> fedavg = ServerStrategy(ServerSGD(lr=1.0), name="fedavg")
    """

    def __init__(self, optimizer: ServerOptimizer, aggregator: Aggregator | None = None, name: str = "custom") -> None:
        self.optimizer = optimizer
        self.aggregator: Aggregator = check_aggregator(aggregator) if aggregator is not None else WeightedMean()
        self.name = name

    @property
    def uses_weights(self) -> bool:
        """Whether ``ClientResult.weight`` changes the result (the aggregator's declaration)."""
        return self.aggregator.uses_weights

    def init(self, params: Params) -> Params:
        return self.optimizer.init(params)

    def aggregate(self, params: Params, results: Sequence[ClientResult], state: Params) -> tuple[Params, Params]:
        """Aggregate the cohort and take one server-optimizer step.

        Raises:
            RoundSkipped: no results (or the aggregator found nothing to combine).
        """
        if not results:
            raise RoundSkipped(f"{self.name}: no client results to aggregate")
        delta = self.aggregator(results)
        return self.optimizer.step(params, delta, state)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, aggregator={self.aggregator!r}, optimizer={self.optimizer!r})"
        )


def server_extras(strategy: Strategy, state: Params) -> Params:
    """Tensors the strategy sends to clients with the model (empty for most strategies)."""
    return dict(strategy.server_extras(state))
