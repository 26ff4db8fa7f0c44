"""Tiny models and data shared by the federated tests."""

from __future__ import annotations

import torch
from torch import nn

from interlearn.federated.api import ClientData, ClientResult, UpdateStep


def tiny_mlp(seed: int = 0, d: int = 8, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 6), nn.ReLU(), nn.Linear(6, classes))


def blobs(n: int = 120, d: int = 8, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Linearly separable-ish Gaussian blobs."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    centers = torch.randn(classes, d, generator=g) * 3
    x = centers[y] + torch.randn(n, d, generator=g)
    return x, y


def cohort(sizes: list[int], d: int = 8, classes: int = 3, seed: int = 0) -> list[ClientData]:
    g = torch.Generator().manual_seed(seed)
    return [
        ClientData(i, torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g))
        for i, n in enumerate(sizes)
    ]


def result(
    cid: int, update: dict[str, torch.Tensor], weight: float = 1.0, extras: dict[str, torch.Tensor] | None = None
) -> ClientResult:
    return ClientResult(cid, update, weight, {"loss": 0.0}, extras or {})


class KillAt(UpdateStep):
    """An update step that raises ``KeyboardInterrupt`` after round ``at`` (a simulated kill)."""

    name = "kill"

    def __init__(self, at: int) -> None:
        self.at = at

    def client(self, result, ctx):
        return result

    def server(self, results, ctx):
        return list(results)

    def after(self, old, new, ctx):
        if ctx.round == self.at:
            raise KeyboardInterrupt("simulated kill")
        return new
