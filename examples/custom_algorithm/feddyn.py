"""FedDyn written in user code: interlearn is imported, never edited.

Acar, Zhao, Matas, Mattina, Whatmough & Saligrama 2021, "Federated Learning Based on Dynamic
Regularization" (ICLR), Algorithm 1. Client ``k`` of the round's cohort ``P_t`` minimises

    L_k(theta) - <grad L_k(theta_k^{t-1}), theta> + (alpha/2) ||theta - theta^{t-1}||^2

from the global ``theta^{t-1}``, and keeps its gradient state (zeros before its first round)

    grad L_k(theta_k^t) = grad L_k(theta_k^{t-1}) - alpha (theta_k^t - theta^{t-1}).

The server keeps ``h`` (zeros at first) over the whole population of ``m`` clients:

    h^t     = h^{t-1} - alpha (1/m) sum_{k in P_t} (theta_k^t - theta^{t-1})
    theta^t = (1/|P_t|) sum_{k in P_t} theta_k^t - (1/alpha) h^t

The client is a :class:`~interlearn.federated.LocalSGD` whose step adds the two extra terms of
the objective's gradient (``- g_k + alpha (theta - theta^{t-1})``), entry by entry, so every
engine runs it, ``vectorized`` included. Both halves register by name::

    python examples/custom_algorithm/feddyn.py --rounds 5             # digits, 10 clients
    # or, with this module imported first, in a federated recipe:
    #   client: {update: feddyn, options: {alpha: 0.01}}
    #   strategy: {name: feddyn, options: {alpha: 0.01}}
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated import ClientResult, LocalSGD, Strategy, register_client_update, register_strategy
from interlearn.federated.client import StepContext
from interlearn.types import Params


def gradient_state(g: Params, alpha: float, local: Params, start: Params) -> Params:
    """The client's new state: ``g - alpha (theta_k^t - theta^{t-1})``."""
    return {k: g[k] - alpha * (local[k] - start[k]) for k in g}


def server_step(
    params: Params, updates: Sequence[Params], h: Params, alpha: float, num_clients: int
) -> tuple[Params, Params]:
    """``(theta^t, h^t)`` from ``theta^{t-1}``, the cohort's ``theta_k^t - theta^{t-1}`` and ``h^{t-1}``."""
    total = {k: sum(u[k].to(v.dtype) for u in updates) for k, v in params.items()}
    new_h = {k: h[k] - alpha / num_clients * total[k] for k in params}
    new = {k: v + total[k] / len(updates) - new_h[k] / alpha for k, v in params.items()}
    return new, new_h


@dataclass(frozen=True)
class FedDynClient(LocalSGD):
    """FedDyn's client: plain SGD on the dynamically regularised objective.

    Attributes:
        alpha: the regulariser's weight (the same as the server's).
    """

    alpha: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.alpha > 0:
            raise ConfigError(f"alpha={self.alpha}: must be > 0 (the paper uses 0.1, 0.01, 0.001)")
        if self.optimizer != "sgd" or self.prox_mu:
            raise ConfigError("FedDynClient takes plain SGD (optimizer: sgd, prox_mu: 0); alpha is its regulariser")

    def init_state(self, params: Params, client_state: Params | None, ctx: StepContext) -> Params:
        """SGD's buffers and this client's gradient state ``g_k`` (zeros before its first round)."""
        g = client_state or {k: torch.zeros_like(params[k]) for k in ctx.trainable}
        return {**super().init_state(params, client_state, ctx), **{f"g/{k}": g[k].clone() for k in ctx.trainable}}

    def apply(self, params: Params, grads: Params, state: Params, ctx: StepContext, t: int) -> tuple[Params, Params]:
        """SGD on ``grad L_k - g_k + alpha (theta - theta^{t-1})``."""
        a = self.alpha
        dyn = {k: g - state[f"g/{k}"] + a * (params[k] - ctx.global_params[k]) for k, g in grads.items()}
        return super().apply(params, dyn, state, ctx, t)

    def finish(
        self, params: Params, state: Params, client_state: Params | None, ctx: StepContext, steps: int
    ) -> tuple[Params, Params, Params | None]:
        """Upload ``theta_k^t - theta^{t-1}``; keep the new gradient state."""
        g = {k: state[f"g/{k}"] for k in ctx.trainable}
        update = {k: params[k] - v for k, v in ctx.global_params.items()}
        return update, {}, gradient_state(g, self.alpha, params, ctx.global_params)


class FedDyn(Strategy):
    """FedDyn's server (a :class:`~interlearn.federated.Strategy`: ``init`` / ``aggregate``).

    Args:
        num_clients: the population ``m`` (a recipe fills it in).
        alpha: the regulariser's weight (the same as the clients').
    """

    name = "feddyn"
    uses_weights = False  # the paper's uniform mean

    def __init__(self, num_clients: int, alpha: float = 0.01) -> None:
        if int(num_clients) < 1 or not alpha > 0:
            raise ConfigError(f"feddyn num_clients={num_clients}, alpha={alpha}: need >= 1 and > 0")
        self.num_clients, self.alpha = int(num_clients), float(alpha)

    def init(self, params: Params) -> Params:
        return {f"h/{k}": torch.zeros_like(v) for k, v in params.items()}

    def aggregate(self, params: Params, results: Sequence[ClientResult], state: Params) -> tuple[Params, Params]:
        if not results:
            raise RoundSkipped("feddyn: no client results to aggregate")
        h = {k: state[f"h/{k}"] for k in params}
        new, new_h = server_step(params, [r.update for r in results], h, self.alpha, self.num_clients)
        return new, {f"h/{k}": v for k, v in new_h.items()}


register_strategy("feddyn", FedDyn)
register_client_update("feddyn", FedDynClient)


def main(argv: Sequence[str] | None = None) -> None:
    from interlearn.data import load_digits
    from interlearn.federated import Population, SimulationConfig, get_strategy, partition, simulate
    from interlearn.federated.client.registry import get_client_update
    from interlearn.models.mlp import mlp

    ap = argparse.ArgumentParser(description="FedDyn vs FedAvg on the digits (10 clients, label skew)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--engine", default="sequential")
    args = ap.parse_args(argv)
    tr, te = load_digits(seed=0)
    pop = Population(tr.x, tr.y, partition("dirichlet", tr.y, 10, alpha=0.3, seed=0))
    sim = SimulationConfig(rounds=args.rounds, clients_per_round=5, seed=0, progress=False, client_eval=False)
    runs = {
        "fedavg": (get_client_update("local_sgd", epochs=1, lr=0.1), get_strategy("fedavg")),
        "feddyn": (
            get_client_update("feddyn", epochs=1, lr=0.1, alpha=args.alpha),
            get_strategy("feddyn", num_clients=10, alpha=args.alpha),
        ),
    }
    for name, (client, server) in runs.items():
        res = simulate(mlp(64, [32], 10, seed=0), pop, client, server, sim, engine=args.engine, test=(te.x, te.y))
        print(f"{name}: test accuracy {res.final_accuracy:.3f} after {args.rounds} rounds")


if __name__ == "__main__":
    main()
