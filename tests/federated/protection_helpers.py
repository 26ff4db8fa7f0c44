"""Helpers shared by the privacy / secagg / robustness / compression / validation tests."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interlearn.federated.api import ClientResult, RoundContext
from interlearn.federated.strategies.aggregate import weighted_mean
from interlearn.types import Params


def ctx(round_: int = 0, seed: int = 0) -> RoundContext:
    return RoundContext(round=round_, generator=torch.Generator().manual_seed(seed))


def template() -> Params:
    return {"w": torch.zeros(4, 3), "b": torch.zeros(3)}


def result(cid: int, scale: float = 1.0, weight: float = 10.0, seed: int | None = None) -> ClientResult:
    g = torch.Generator().manual_seed(cid if seed is None else seed)
    upd = {k: torch.randn(v.shape, generator=g) * scale for k, v in template().items()}
    return ClientResult(cid, upd, weight, {"loss": 1.0})


def run_steps(steps: Sequence, results: Sequence[ClientResult], c: RoundContext) -> list[ClientResult]:
    """The round loop's order: client hooks in order, server hooks in reverse order."""
    out = []
    for r in results:
        for s in steps:
            r = s.client(r, c)
        out.append(r)
    for s in reversed(steps):
        out = s.server(out, c)
    return out


def round_trip(steps: Sequence, params: Params, results: Sequence[ClientResult], c: RoundContext) -> Params:
    """Steps around a plain FedAvg aggregation, then the ``after`` hooks."""
    out = run_steps(steps, results, c)
    delta = weighted_mean([r.update for r in out], [r.weight for r in out])
    new = {k: v + delta[k] for k, v in params.items()}
    for s in steps:
        new = s.after(params, new, c)
    return new


def toy_problem(num_clients: int = 12, per_client: int = 30, seed: int = 0):
    """A small separable 3-class problem split IID over clients, a linear model, a test set."""
    from interlearn.federated.population import Population

    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[2.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, -1.0], [0.0, 0.0, 2.0, 0.0]])

    def draw(n: int):
        y = torch.randint(0, 3, (n,), generator=g)
        return centers[y] + 0.7 * torch.randn(n, 4, generator=g), y

    x, y = draw(num_clients * per_client)
    parts = [list(range(i * per_client, (i + 1) * per_client)) for i in range(num_clients)]
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    return model, Population(x, y, parts), draw(600)
