"""Bulyan: Krum to select, then a coordinate-wise trimmed mean around the median.

El Mhamdi, Guerraoui & Rouault 2018, "The Hidden Vulnerability of Distributed Learning in
Byzantium" (ICML), Algorithm 2, with Krum (Blanchard et al. 2017) as the inner rule ``A``.
With ``n`` updates of which at most ``f`` are Byzantine, and ``n >= 4f + 3``:

1. selection: ``theta = n - 2f`` times, run Krum (with the same ``f``) on the updates not yet
   selected and move the one it picks into the selection set;
2. aggregation: per coordinate, take the median of the selection set and average the
   ``beta = theta - 2f`` selected values closest to it.

Where the paper leaves a choice this follows Flower's ``aggregate_bulyan`` (flwr 1.42): Krum
inside the loop scores each update by its ``max(1, n' - f - 2)`` nearest neighbours among the
``n'`` updates still in the pool, the median of an
even count is the mean of the two middle values (``np.median``), and the ``beta`` closest values
are averaged uniformly (weights are ignored: a weight is attacker-controlled). Two choices
differ from Flower so that the result does not depend on the order the clients arrived in:
equal Krum scores (with one neighbour counted, the closest pair always ties) go to the
lexicographically smaller update, not the lower index (:func:`~interlearn.federated.protections.robust.
rank_by_score`), and equal distances to the median are broken by selection order (Flower's
``argpartition`` leaves them unspecified). The tests compare against Flower's function on fixed
inputs given in lexicographic order, where both rules pick the same updates.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import Aggregator, ClientResult
from interlearn.federated.protections.robust import (
    check_num_byzantine,
    client_updates,
    flat_float64,
    krum_scores,
    rank_by_score,
    resolve_byzantine,
    stacked_per_key,
)
from interlearn.federated.strategies.aggregate import cast_back
from interlearn.federated.strategies.registry import AGGREGATORS
from interlearn.types import Params

__all__ = ["bulyan", "bulyan_selection", "check_bulyan", "Bulyan"]


def check_bulyan(n: int, num_byzantine: int) -> None:
    """Raise :class:`ConfigError` unless ``n >= 4f + 3`` (El Mhamdi et al. 2018); the message
    names ``n`` and ``f`` and the largest ``f`` this ``n`` allows."""
    if num_byzantine < 0:
        raise ConfigError(f"Bulyan: num_byzantine (f) must be >= 0, got {num_byzantine}")
    if n < 4 * num_byzantine + 3:
        raise ConfigError(
            f"Bulyan with f={num_byzantine} Byzantine clients needs n >= 4f + 3 = {4 * num_byzantine + 3} updates, "
            f"got n={n}: lower num_byzantine to at most {max((n - 3) // 4, 0)} or sample more clients per round"
        )


def bulyan_selection(flat: torch.Tensor, num_byzantine: int) -> list[int]:
    """Indices (into the rows of ``flat``) of the ``n - 2f`` updates Krum picks one by one."""
    n = flat.shape[0]
    pool = list(range(n))
    chosen: list[int] = []
    for _ in range(n - 2 * num_byzantine):
        sub = flat[pool]
        best = rank_by_score(sub, krum_scores(sub, num_byzantine))[0]
        chosen.append(pool.pop(best))
    return chosen


def bulyan(updates: Sequence[Params], weights: Sequence[float] | None = None, *, num_byzantine: int) -> Params:
    """Bulyan over ``updates`` tolerating ``num_byzantine`` arbitrary ones (see module docstring).

    Selection ranks in float64; the median and the final mean run in the updates' dtype.

    Raises:
        ConfigError: ``n < 4f + 3`` (the message names n and f).
    """
    n = len(updates)
    check_bulyan(n, num_byzantine)
    chosen = bulyan_selection(flat_float64(updates), num_byzantine)
    theta = len(chosen)
    beta = theta - 2 * num_byzantine
    out: Params = {}
    for k, stack, dt in stacked_per_key(updates):
        sel = stack[chosen]  # (theta, *shape), in selection order
        s = sel.sort(dim=0).values
        med = s[theta // 2] if theta % 2 else (s[theta // 2 - 1] + s[theta // 2]) / 2
        order = torch.argsort((sel - med).abs(), dim=0, stable=True)[:beta]
        out[k] = cast_back(torch.take_along_dim(sel, order, dim=0).mean(dim=0), dt)
    return out


class Bulyan(Aggregator):
    """Aggregator: Bulyan with Krum inside (weights ignored).

    Args:
        num_byzantine: ``f``: a count, a fraction in [0, 0.25) of the cohort, or ``None`` for
            the most the cohort allows (``(n - 3) // 4``).

    Raises:
        ConfigError: out-of-range ``f`` at construction; at aggregation, a cohort with
            ``n < 4f + 3`` (the message names n and f; nothing is lowered silently).

    Example:
        >>> agg = Bulyan(num_byzantine=1)   # needs at least 7 updates per round
    """

    name = "bulyan"
    uses_weights = False

    def __init__(self, num_byzantine: int | float | None = None) -> None:
        check_num_byzantine(num_byzantine)
        if isinstance(num_byzantine, float) and num_byzantine >= 0.25:
            raise ConfigError(
                f"Bulyan: num_byzantine as a fraction must lie in [0, 0.25) (n >= 4f + 3), got {num_byzantine!r}"
            )
        self.num_byzantine = num_byzantine

    def byzantine_tolerance(self, n: int) -> int:
        return resolve_byzantine(self.num_byzantine, n, (n - 3) // 4)

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        return bulyan(client_updates(results, self.name), num_byzantine=self.byzantine_tolerance(len(results)))

    def __repr__(self) -> str:
        return f"Bulyan(num_byzantine={self.num_byzantine})"


AGGREGATORS.register_all({"bulyan": Bulyan}, skip_registered=True)  # idempotent under re-import
