"""Secure aggregation as an ``UpdateStep``: the strategy sees only the cohort's sum.

Bonawitz et al. 2017 (see :mod:`interlearn.federated.protections.secagg.protocol`), or SecAgg+ (Bell et
al. 2020, ``neighbours="log"``: each client masks with O(log n) neighbours of a random graph). In simulation every
client's device is an in-process :class:`SecAggClient`; its plaintext update stays in the
device object and the server side only receives key material, ciphertexts, masked vectors and
Shamir shares. The server hook runs the protocol over the clients whose results reached it,
decodes the sum, and hands the strategy ONE aggregate result (the cohort mean, see
:mod:`interlearn.federated.protections.privacy.cohort`), which mean-based strategies (FedAvg, FedAvgM,
FedAdam, FedYogi) aggregate exactly as before. Robust aggregators (median, Krum) need individual
updates and cannot run behind secure aggregation; the step says so if asked.

Place it LAST in the step list (its client hook runs last, its server hook first): e.g.
``[ClipUpdates, GaussianNoise, ValidateUpdates, SecureAggregation]``. Metrics travel in the
clear and are only summed; strategy ``extras`` (SCAFFOLD) are not covered and are refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult, RoundContext, UpdateStep
from interlearn.federated.protections.privacy.cohort import AGGREGATE_ID, summed_metrics
from interlearn.federated.protections.secagg.graph import Graph, default_degree, harary_graph
from interlearn.federated.protections.secagg.protocol import secure_sum
from interlearn.federated.protections.secagg.remote import INPUT_KEY, remote_secure_sum
from interlearn.federated.protections.secagg.ring import Ring
from interlearn.types import ClientId, Params

__all__ = ["SecureAggregation"]


class SecureAggregation(UpdateStep):
    """Pairwise-masked secure aggregation of the cohort's updates.

    Args:
        threshold: fewest clients that must survive every protocol stage; an int, or a
            fraction in (0, 1] of the cohort (SecAgg+: of each neighbourhood, the client itself
            included); default a strict majority, ``size // 2 + 1``.
        bits: ring size (``Z_{2**bits}``), 8..62.
        frac_bits: fixed-point fractional bits.
        weighted: sum ``weight * update`` and the weights (FedAvg's weighted mean); ``False``
            gives the unweighted mean that central DP needs.
        dropout: fraction of the cohort that drops after key sharing (simulated with the
            round's generator), to exercise recovery.
        neighbours: who masks with whom: ``"all"`` (every pair, Bonawitz et al. 2017),
            ``"log"`` (SecAgg+, Bell et al. 2020: a random graph of degree about ``log2 n``,
            see :func:`~interlearn.federated.protections.secagg.graph.default_degree`)
            or an even degree ``k`` (SecAgg+ with ``k`` neighbours each). The graph is drawn
            per round by the server from the round's generator.

    Raises:
        ConfigError: out-of-range values; results carrying strategy extras.
    """

    name = "secagg"
    needs_channel = True  # with remote clients the protocol's rounds are extra messages

    def __init__(
        self,
        *,
        threshold: float | int | None = None,
        bits: int = 48,
        frac_bits: int = 20,
        weighted: bool = True,
        dropout: float = 0.0,
        neighbours: str | int = "all",
    ) -> None:
        if threshold is not None and not (
            (isinstance(threshold, int) and threshold >= 2) or (isinstance(threshold, float) and 0 < threshold <= 1)
        ):
            raise ConfigError(f"threshold must be an int >= 2 or a fraction in (0, 1], got {threshold!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {dropout!r}")
        if not (
            neighbours in ("all", "log")
            or (
                isinstance(neighbours, int)
                and not isinstance(neighbours, bool)
                and neighbours >= 2
                and neighbours % 2 == 0
            )
        ):
            raise ConfigError(f"neighbours must be 'all', 'log' or an even degree >= 2, got {neighbours!r}")
        self.neighbours = neighbours
        self.threshold = threshold
        self.ring = Ring(bits, frac_bits)
        self.weighted = weighted
        self.dropout = dropout
        # simulated device memory: plaintext never leaves these entries except masked
        self._devices: dict[ClientId, tuple[torch.Tensor, ClientResult]] = {}
        self._layout: list[tuple[str, torch.Size, torch.dtype]] = []

    def degree_for(self, n: int) -> int:
        """Neighbours per client in a cohort of ``n`` (``n - 1``: every pair)."""
        if self.neighbours == "all":
            return max(n - 1, 0)
        k = default_degree(n) if self.neighbours == "log" else int(self.neighbours)
        return min(k, max(n - 1, 0))

    def graph_for(self, ids: Sequence[ClientId], generator: torch.Generator) -> Graph | None:
        """This round's masking graph (``None``: every pair)."""
        k = self.degree_for(len(ids))
        return None if k >= len(ids) - 1 else harary_graph(list(ids), k, generator)

    def threshold_for(self, n: int) -> int:
        """The threshold ``t`` for a group of ``n`` clients (the cohort, or for SecAgg+ one
        neighbourhood: degree + 1)."""
        if self.threshold is None:
            return n // 2 + 1
        if isinstance(self.threshold, float):
            return max(2, math.ceil(self.threshold * n))
        return int(self.threshold)

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        if result.extras:
            raise ConfigError(
                f"secure aggregation does not cover strategy extras ({sorted(result.extras)}); "
                "use a strategy without extras (not SCAFFOLD) or drop SecureAggregation"
            )
        self._layout = [(k, v.shape, v.dtype) for k, v in result.update.items()]
        w = float(result.weight) if self.weighted else 1.0
        flat = torch.cat([v.detach().reshape(-1).to(torch.float64) * w for v in result.update.values()])
        vec = torch.cat([flat, torch.tensor([w], dtype=torch.float64)])
        if ctx.on_device:  # a real device: the input waits in its memory for the protocol's messages
            ctx.memory[INPUT_KEY] = vec
            # what travels outside the protocol: id, example count and metrics (not protected)
            return replace(result, update={})
        self._devices[result.client_id] = (vec, result)
        # what travels to the server outside the protocol: id and metrics (not protected)
        return replace(result, update={}, weight=0.0)

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        if ctx.channel is not None:
            return self._remote(results, ctx)
        ids = [r.client_id for r in results if r.client_id in self._devices]
        devices, self._devices = self._devices, {}
        if not ids:
            return list(results)
        n = len(ids)
        inputs = {cid: self.ring.encode(devices[cid][0], summands=n) for cid in ids}
        drop: list[ClientId] = []
        if self.dropout > 0:
            pick = torch.rand(n, generator=ctx.generator) < self.dropout
            drop = [cid for cid, p in zip(ids, pick.tolist()) if p]
        graph = self.graph_for(ids, ctx.generator)
        total, tr = secure_sum(
            inputs, self.ring, self.threshold_for(self.degree_for(n) + 1), drop_before_masking=drop, graph=graph
        )
        survivors = [devices[cid][1] for cid in tr.survivors]
        return [self._aggregate(self.ring.decode(total), self._layout, survivors, tr, ctx)]

    def _remote(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        """The protocol with the clients on their devices, over the engine's channel."""
        if not results:
            return []
        ref = ctx.global_params
        if ref is None:
            raise ConfigError(
                "secure aggregation with remote clients needs the round's global params (ctx.global_params)"
            )
        layout = [(k, v.shape, v.dtype) for k, v in ref.items()]
        length = sum(math.prod(s) for _, s, _ in layout) + 1
        n = len(results)
        ids = [r.client_id for r in results]
        total, tr = remote_secure_sum(
            ctx.channel,
            ids,
            self.ring,
            self.threshold_for(self.degree_for(n) + 1),
            length,
            n,
            self.graph_for(ids, ctx.generator),
        )
        by_id = {r.client_id: r for r in results}
        survivors = [by_id[c] for c in tr.survivors]
        return [self._aggregate(self.ring.decode(total), layout, survivors, tr, ctx)]

    def _aggregate(
        self,
        summed: torch.Tensor,
        layout: list[tuple[str, torch.Size, torch.dtype]],
        survivors: list[ClientResult],
        tr: Any,
        ctx: RoundContext,
    ) -> ClientResult:
        weight = float(summed[-1])
        mean: Params = {}
        offset = 0
        for k, shape, dtype in layout:
            size = math.prod(shape)
            mean[k] = (summed[offset : offset + size] / weight).reshape(shape).to(dtype)
            offset += size
        metrics = summed_metrics(survivors)
        metrics["secagg/weighted"] = 1.0 if self.weighted else 0.0
        ctx.bytes_up = sum(tr.bytes_up.values())  # masked vectors + protocol messages
        ctx.notes["secagg/bytes_up"] = ctx.bytes_up
        ctx.notes["secagg/bytes_down"] = sum(tr.bytes_down.values())
        ctx.notes["secagg/dropped"] = list(tr.dropped)
        ctx.notes["secagg/survivors"] = len(tr.survivors)
        if tr.dropped:
            ctx.log.append(f"secure aggregation: clients {tr.dropped} dropped; their masks were removed")
        return ClientResult(AGGREGATE_ID, mean, sum(float(r.weight) for r in survivors), metrics)

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        return new
