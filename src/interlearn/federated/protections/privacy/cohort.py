"""The single-result form of a cohort: what the server holds when it may only see a sum.

Central DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language
Models", ICLR) releases only a noised mean of the clipped updates, and secure aggregation
(Bonawitz et al. 2017) reveals only their sum. Both hand the strategy ONE ``ClientResult``
standing for the whole cohort: its ``update`` is the cohort mean, its ``weight`` the total
weight, and its ``metrics`` the summed client metrics plus ``num_clients``. Any strategy that
aggregates a (weighted) mean of updates — FedAvg, FedAvgM, FedAdam, FedYogi — then computes
exactly what it would have computed from the individual results, as post-processing of the
released mean.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from interlearn.errors import RoundSkipped
from interlearn.federated.api import ClientResult
from interlearn.types import Params

__all__ = ["AGGREGATE_ID", "is_aggregate", "num_clients", "summed_metrics", "mean_result"]

AGGREGATE_ID = -1
"""``client_id`` of a result that stands for a whole cohort (never a real client's id)."""


def is_aggregate(result: ClientResult) -> bool:
    """True when ``result`` stands for several clients (built by :func:`mean_result`)."""
    return result.client_id == AGGREGATE_ID


def num_clients(results: Sequence[ClientResult]) -> int:
    """Number of real clients behind ``results`` (an aggregate counts its ``num_clients``)."""
    return sum(int(r.metrics.get("num_clients", 1)) if is_aggregate(r) else 1 for r in results)


def summed_metrics(results: Sequence[ClientResult]) -> dict[str, float]:
    """Sum every scalar metric over ``results`` and set ``num_clients``."""
    out: dict[str, float] = {}
    for r in results:
        for k, v in r.metrics.items():
            if k != "num_clients":
                out[k] = out.get(k, 0.0) + float(v)
    out["num_clients"] = float(num_clients(results))
    return out


def mean_result(results: Sequence[ClientResult], *, uniform: bool) -> ClientResult:
    """Collapse ``results`` into one aggregate result holding their mean update.

    Args:
        results: individual or aggregate results, all keyed alike.
        uniform: average with equal weight per real client (what client-level DP needs: the
            sensitivity of the mean is then ``clip_norm / n``) instead of by ``weight``.

    Returns:
        A result with ``client_id == AGGREGATE_ID``.

    Raises:
        RoundSkipped: ``results`` is empty.
    """
    if not results:
        raise RoundSkipped("no client results to aggregate in this round")
    counts = [float(r.metrics.get("num_clients", 1)) if is_aggregate(r) else 1.0 for r in results]
    w = counts if uniform else [float(r.weight) for r in results]
    total = sum(w)
    if total <= 0:
        raise RoundSkipped(f"the cohort's total aggregation weight is {total}; nothing to average")
    keys = list(results[0].update)
    mean: Params = {}
    for k in keys:
        dt = torch.float64 if results[0].update[k].dtype == torch.float64 else torch.float32
        acc = torch.zeros_like(results[0].update[k], dtype=dt)
        for wi, r in zip(w, results):
            acc = acc + r.update[k].to(dt) * (wi / total)
        mean[k] = acc.to(results[0].update[k].dtype)
    extras: Params = {}
    for k in results[0].extras:
        extras[k] = functools.reduce(torch.add, [r.extras[k] * (wi / total) for wi, r in zip(w, results)])
    weight = float(sum(r.weight for r in results))
    return ClientResult(AGGREGATE_ID, mean, weight, summed_metrics(results), extras)
