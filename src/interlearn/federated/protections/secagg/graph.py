"""Who masks with whom: the complete graph of SecAgg, or SecAgg+'s sparse random graph.

Bonawitz et al. 2017 mask every pair of clients, so each client does ``n - 1`` key agreements,
mask expansions and share encryptions. Bell, Bonawitz, Gascón, Lepoint & Raykova 2020, "Secure
Single-Server Aggregation with (Poly)Logarithmic Overhead" (CCS), replace the complete graph by
a random ``k``-regular one with ``k = O(log n)``: the server places the clients at random on a
ring and joins each to its ``k / 2`` nearest neighbours on either side (a Harary graph
``H_{k,n}`` under a random permutation, their Section 4). A client then masks only with its
neighbours and Shamir-shares its secrets ``t``-out-of-``k + 1`` among them (itself included);
dropout recovery works per neighbourhood.

The default degree here is the smallest even ``k >= log2(n)`` (4 at 10 clients, 8 at 100, 10 at
1,000): the O(log n) shape with constant 1, chosen for speed. It is NOT Bell et al.'s calibrated
degree: their guarantees (no neighbourhood with ``t`` corrupt clients, none with fewer than
``t`` survivors, except with probability ``2^-sigma``) hold for a ``k`` from their bounds given the
fractions of corrupt and dropped clients, which for ``sigma = 40`` and a few percent of each is
several times larger. Pass that ``k`` (``SecureAggregation(neighbours=k)``) for a deployment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from interlearn.errors import ConfigError
from interlearn.types import ClientId

__all__ = ["Graph", "complete_graph", "harary_graph", "default_degree"]

Graph = dict[ClientId, frozenset[ClientId]]
"""Each client's neighbours (never itself); symmetric."""


def complete_graph(ids: Sequence[ClientId]) -> Graph:
    """Every client is every other's neighbour (the original protocol)."""
    everyone = frozenset(ids)
    return {u: everyone - {u} for u in ids}


def default_degree(n: int) -> int:
    """The smallest even ``k >= log2(n)``, at most ``n - 1`` (then the graph is complete)."""
    if n <= 2:
        return max(n - 1, 0)
    return min(2 * math.ceil(math.log2(n) / 2), n - 1)


def harary_graph(ids: Sequence[ClientId], degree: int, generator: torch.Generator) -> Graph:
    """A random ``degree``-regular graph: the clients in a random order on a ring, each joined
    to its ``degree / 2`` nearest on both sides (complete when ``degree >= n - 1``).

    Raises:
        ConfigError: an odd ``degree`` below ``n - 1``, or ``degree < 2``.
    """
    n = len(ids)
    if degree >= n - 1:
        return complete_graph(ids)
    if degree < 2 or degree % 2:
        raise ConfigError(
            f"SecAgg+ degree={degree}: must be an even number >= 2 (or >= n - 1 = {n - 1} for the complete graph)"
        )
    order = [ids[i] for i in torch.randperm(n, generator=generator).tolist()]
    half = degree // 2
    out: dict[ClientId, set[ClientId]] = {u: set() for u in ids}
    for i, u in enumerate(order):
        for step in range(1, half + 1):
            v = order[(i + step) % n]
            out[u].add(v)
            out[v].add(u)
    return {u: frozenset(vs) for u, vs in out.items()}
