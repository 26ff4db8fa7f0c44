"""FedNova written in user code: interlearn is imported, never edited.

Wang, Liu, Liang, Joshi & Poor 2020, "Tackling the Objective Inconsistency Problem in
Heterogeneous Federated Optimization" (NeurIPS). Client ``i`` runs ``tau_i`` local SGD steps
(its own data size sets ``tau_i``) from the global ``theta`` and reports the normalized update

    d_i = (theta - theta_i) / a_i,   a_i = tau_i                                  (plain SGD)
                                     a_i = (tau_i - rho (1 - rho^tau_i) / (1 - rho)) / (1 - rho)
                                                                       (heavy-ball momentum rho)

and the server takes ``theta <- theta - tau_eff sum_i p_i d_i`` with ``tau_eff = sum_i p_i tau_i``
and ``p_i = n_i / n``. Plain FedAvg weighs a client by ``p_i`` times the ``tau_i`` steps it
took, so clients that step more pull the model toward their own optimum; FedNova's weights are
``p_i``, so it optimises the intended objective ``sum_i p_i L_i``.

Every client reports its local steps ``tau_i`` (``ClientResult.metrics["steps"]``), so with
plain SGD the client is :class:`~interlearn.federated.LocalSGD` itself; ``FedNovaClient``
also uploads its ``a_i`` (needed with momentum) and refuses optimizers the formula does not
cover. The server is an :class:`~interlearn.federated.Aggregator` (the cohort's updates -> one
update) under server SGD, so it composes: ``strategy: {name: fedadam, aggregator: fednova}``
is FedNova with an adaptive server. Every engine runs it, ``vectorized`` included::

    python examples/custom_algorithm/fednova.py --rounds 5      # digits, 10 clients of skewed sizes
    # or, with this module imported first, in a federated recipe:
    #   client: {update: fednova}
    #   strategy: {name: fednova}
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated import (
    Aggregator,
    ClientResult,
    LocalSGD,
    ServerStrategy,
    register_aggregator,
    register_client_update,
    register_strategy,
)
from interlearn.federated.client import StepContext
from interlearn.federated.strategies import ServerSGD
from interlearn.types import Params


def normalizer(tau: int, momentum: float = 0.0) -> float:
    """``a_i``: the sum of the local steps' coefficients (``tau`` for plain SGD)."""
    rho = momentum
    return float(tau) if rho == 0 else (tau - rho * (1 - rho**tau) / (1 - rho)) / (1 - rho)


def normalized_average(
    updates: Sequence[Params], a: Sequence[float], tau: Sequence[float], n: Sequence[float]
) -> Params:
    """``tau_eff sum_i p_i (theta_i - theta) / a_i``: the step FedNova's server adds to ``theta``."""
    p = [w / sum(n) for w in n]
    tau_eff = sum(pi * ti for pi, ti in zip(p, tau))
    return {k: tau_eff * sum(pi * u[k] / ai for pi, u, ai in zip(p, updates, a)) for k in updates[0]}


@dataclass(frozen=True)
class FedNovaClient(LocalSGD):
    """Local SGD (optionally with momentum) that uploads its normalizer ``a_i``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer != "sgd" or self.weight_decay or self.prox_mu:
            raise ConfigError(
                "FedNovaClient's normalizer is derived for SGD with momentum: optimizer: sgd, no decay or prox"
            )

    def finish(
        self, params: Params, state: Params, client_state: Params | None, ctx: StepContext, steps: int
    ) -> tuple[Params, Params, Params | None]:
        update, _, client_state = super().finish(params, state, client_state, ctx, steps)
        return update, {"fednova/a": torch.tensor(normalizer(steps, self.momentum), dtype=torch.float64)}, client_state


class FedNovaMean(Aggregator):
    """FedNova's aggregator: the normalized average of the cohort's updates. A client that
    uploads no ``a_i`` ran plain SGD (``a_i = tau_i``)."""

    name = "fednova"
    uses_weights = True  # p_i = n_i / n
    required_metrics = ("steps",)  # tau_i, which every client reports

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        if not results:
            raise RoundSkipped("fednova: no client results to aggregate")
        if any("steps" not in r.metrics for r in results):
            raise ConfigError("fednova needs each client's local steps (metrics['steps']), which a StepUpdate reports")
        tau = [float(r.metrics["steps"]) for r in results]
        a = [float(r.extras.get("fednova/a", t)) for r, t in zip(results, tau)]
        return normalized_average([r.update for r in results], a, tau, [r.weight for r in results])


class FedNova(ServerStrategy):
    """FedNova: the normalized average under server SGD (``lr=1``: the paper's server)."""

    required_metrics = FedNovaMean.required_metrics

    def __init__(self, lr: float = 1.0, momentum: float = 0.0) -> None:
        super().__init__(ServerSGD(lr=lr, momentum=momentum), FedNovaMean(), name="fednova")


register_aggregator("fednova", FedNovaMean)
register_strategy("fednova", FedNova)
register_client_update("fednova", FedNovaClient)


def main(argv: Sequence[str] | None = None) -> None:
    from interlearn.data import load_digits
    from interlearn.federated import Population, SimulationConfig, get_strategy, partition, simulate
    from interlearn.federated.client.registry import get_client_update
    from interlearn.models.mlp import mlp

    ap = argparse.ArgumentParser(description="FedNova vs FedAvg on the digits (10 clients of skewed sizes)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--engine", default="sequential")
    args = ap.parse_args(argv)
    tr, te = load_digits(seed=0)
    pop = Population(tr.x, tr.y, partition("quantity", tr.y, 10, alpha=0.5, seed=0))  # tau_i follows n_i
    sim = SimulationConfig(rounds=args.rounds, clients_per_round=5, seed=0, progress=False, client_eval=False)
    for name, update in (("fedavg", "local_sgd"), ("fednova", "fednova")):
        client = get_client_update(update, epochs=2, batch_size=10, lr=0.05)
        res = simulate(
            mlp(64, [32], 10, seed=0), pop, client, get_strategy(name), sim, engine=args.engine, test=(te.x, te.y)
        )
        print(f"{name}: test accuracy {res.final_accuracy:.3f} after {args.rounds} rounds")


if __name__ == "__main__":
    main()
