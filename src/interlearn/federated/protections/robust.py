"""Byzantine-robust aggregation of client updates, as pure functions over ``Params``.

- Coordinate-wise median and trimmed mean: Yin, Chen, Ramchandran & Bartlett 2018,
  "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates" (ICML).
- Krum and Multi-Krum: Blanchard, El Mhamdi, Guerraoui & Stainer 2017, "Machine Learning with
  Adversaries: Byzantine Tolerant Gradient Descent" (NeurIPS).
- Norm bounding: Sun, Kairouz, Suresh & McMahan 2019, "Can You Really Backdoor Federated
  Learning?" (clip every update to a norm bound, then average).

The math is pure functions over lists of updates; the classes are
:class:`~interlearn.federated.api.Aggregator`s (``results -> combined update``) that plug into any
``ServerStrategy`` and are registered by name (``get_strategy("fedavg", aggregator="median")``).
Median, trimmed mean and Krum ignore the weights on purpose: a weight is attacker-controlled.

Every aggregator states ``uses_weights`` (whether ``ClientResult.weight`` changes its output)
and ``byzantine_tolerance(n)`` (how many arbitrary updates among ``n`` it is built to withstand;
0 for the plain mean); the conformance suite (``tests/federated/test_aggregation_conformance.py``) checks
both for every registered aggregator. Arithmetic runs in the updates' own dtype (float64 stays
float64, see :func:`arithmetic_dtype`) and the result has the input's dtype. A cohort too small
for the requested ``f`` raises :class:`~interlearn.errors.ConfigError` naming ``n`` and ``f``;
nothing is lowered silently. Bulyan (Krum as its inner rule) is in
:mod:`interlearn.federated.protections.bulyan`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.api import Aggregator, ClientResult
from interlearn.federated.protections.privacy.clipping import clip_update
from interlearn.federated.protections.privacy.cohort import is_aggregate
from interlearn.federated.strategies.aggregate import arithmetic_dtype, cast_back, weighted_mean
from interlearn.federated.strategies.registry import AGGREGATORS
from interlearn.types import Params

__all__ = [
    "arithmetic_dtype",
    "check_num_byzantine",
    "client_updates",
    "flat_float64",
    "stacked_per_key",
    "check_krum",
    "resolve_byzantine",
    "Median",
    "TrimmedMean",
    "Krum",
    "NormBound",
    "coordinate_median",
    "trimmed_mean",
    "krum",
    "norm_bounded_mean",
    "krum_scores",
    "rank_by_score",
]


Layout = list[tuple[str, torch.Size, torch.dtype]]


def stacked_per_key(updates: Sequence[Params]) -> list[tuple[str, torch.Tensor, torch.dtype]]:
    """``(key, (clients, *shape) stack in the arithmetic dtype, output dtype)`` per key.

    Raises:
        RoundSkipped: no updates.
    """
    if not updates:
        raise RoundSkipped("no updates to aggregate")
    out = []
    for k, ref in updates[0].items():
        dt = arithmetic_dtype(ref.dtype)
        out.append((k, torch.stack([u[k].to(dt) for u in updates]), ref.dtype))
    return out


def flat_float64(updates: Sequence[Params]) -> torch.Tensor:
    """(clients, total_numel) in float64: used only to *rank* updates by distance (Krum)."""
    if not updates:
        raise RoundSkipped("no updates to aggregate")
    keys = list(updates[0])
    return torch.stack([torch.cat([u[k].reshape(-1).to(torch.float64) for k in keys]) for u in updates])


def _mean_of(updates: Sequence[Params], rows: Sequence[int]) -> Params:
    """Uniform mean of ``updates[rows]``, per key in the arithmetic dtype, cast back."""
    return {k: cast_back(stack[list(rows)].mean(dim=0), dt) for k, stack, dt in stacked_per_key(updates)}


def coordinate_median(updates: Sequence[Params], weights: Sequence[float] | None = None) -> Params:
    """Coordinate-wise median (the mean of the two middle values for an even count).

    Computed per key in :func:`arithmetic_dtype` of the input (float64 inputs stay float64)."""
    out: Params = {}
    for k, stack, dt in stacked_per_key(updates):
        s = stack.sort(dim=0).values
        n = s.shape[0]
        med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
        out[k] = cast_back(med, dt)
    return out


def trimmed_mean(updates: Sequence[Params], weights: Sequence[float] | None = None, *, trim: float = 0.1) -> Params:
    """Coordinate-wise mean after dropping the ``floor(trim * n)`` largest and smallest values.

    Raises:
        ConfigError: ``trim`` outside [0, 0.5).
    """
    if not 0.0 <= trim < 0.5:
        raise ConfigError(f"trim must lie in [0, 0.5), got {trim!r}")
    n = len(updates)
    k = int(trim * n)
    if n and n - 2 * k < 1:
        raise RoundSkipped(f"trimmed mean with trim={trim} leaves no update out of {n}")
    return {
        key: cast_back(stack.sort(dim=0).values[k : n - k].mean(dim=0), dt)
        for key, stack, dt in stacked_per_key(updates)
    }


def krum_scores(flat: torch.Tensor, num_byzantine: int) -> torch.Tensor:
    """Krum score of each row: summed squared distance to its ``n - f - 2`` nearest rows
    (at least one, as in Flower's ``aggregate_krum``), in float64. Each distance is computed
    from the difference of its two rows (no ``|a|^2 - 2ab + |b|^2`` shortcut), so ``d(i, j) ==
    d(j, i)`` exactly and the scores do not depend on the order of the rows."""
    n = flat.shape[0]
    flat = flat.to(torch.float64)
    d2 = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist").pow(2)  # (clients, clients)
    d2.fill_diagonal_(float("inf"))
    closest_k = max(n - num_byzantine - 2, 1)
    return d2.sort(dim=1).values[:, :closest_k].sum(dim=1)


def rank_by_score(flat: torch.Tensor, scores: torch.Tensor) -> list[int]:
    """Row indices by ascending score; equal scores (two mutual nearest neighbours with one
    neighbour counted tie exactly) are ordered by the rows' contents (lexicographically), so the
    choice does not depend on the order the clients arrived in. Flower breaks such ties by
    position (``np.argmin``); on inputs given in lexicographic order the two agree."""
    rows = flat.to(torch.float64).cpu().numpy()
    lex = np.empty(len(rows), dtype=np.int64)
    lex[np.lexsort(rows.T[::-1])] = np.arange(len(rows))  # lexicographic rank of each row
    return [int(i) for i in np.lexsort((lex, scores.cpu().numpy()))]


def check_krum(n: int, num_byzantine: int, who: str = "Krum") -> None:
    """Raise :class:`ConfigError` unless ``n > 2f + 2`` (Blanchard et al. 2017, Prop. 1).

    The message names ``n`` and ``f`` and both ways out."""
    if num_byzantine < 0:
        raise ConfigError(f"{who}: num_byzantine (f) must be >= 0, got {num_byzantine}")
    if n <= 2 * num_byzantine + 2:
        raise ConfigError(
            f"{who} with f={num_byzantine} Byzantine clients needs n > 2f + 2 = {2 * num_byzantine + 2} updates, "
            f"got n={n}: lower num_byzantine to at most {max((n - 3) // 2, 0)} or sample more clients per round"
        )


def krum(
    updates: Sequence[Params],
    weights: Sequence[float] | None = None,
    *,
    num_byzantine: int = 0,
    num_selected: int = 1,
) -> Params:
    """Krum (``num_selected=1``) or Multi-Krum: average the updates with the lowest scores.

    Scores are computed in float64 (they only rank the updates); the mean of the selected
    updates is computed in the updates' own dtype. Equal scores are ordered by the updates'
    contents (:func:`rank_by_score`), so the result does not depend on the clients' order.

    Args:
        num_byzantine: ``f``, the number of attackers to tolerate; Krum needs ``n > 2f + 2``.
        num_selected: ``m``, how many best-scored updates to average (Multi-Krum when > 1).

    Raises:
        ConfigError: ``f`` or ``m`` out of range for the number ``n`` of updates (the message
            names both).
    """
    n = len(updates)
    check_krum(n, num_byzantine)
    if not 1 <= num_selected <= n:
        raise ConfigError(
            f"Multi-Krum: num_selected={num_selected} must lie in 1..n={n} (the updates it got, f={num_byzantine}); "
            f"lower num_selected or sample more clients per round"
        )
    flat = flat_float64(updates)
    best = rank_by_score(flat, krum_scores(flat, num_byzantine))[:num_selected]
    return _mean_of(updates, best)


def norm_bounded_mean(
    updates: Sequence[Params], weights: Sequence[float] | None = None, *, max_norm: float = 1.0
) -> Params:
    """Clip every update to L2 norm ``max_norm``, then take the (weighted) mean."""
    if not max_norm > 0:
        raise ConfigError(f"max_norm must be > 0, got {max_norm!r}")
    clipped = [clip_update(u, max_norm)[0] for u in updates]
    w = [1.0] * len(updates) if weights is None else [float(x) for x in weights]
    if updates and sum(w) <= 0:
        raise RoundSkipped("total weight of the updates is zero")
    return weighted_mean(clipped, w)


def client_updates(results: Sequence[ClientResult], who: str) -> list[Params]:
    """The individual updates of ``results`` for the robust rule ``who``.

    Raises:
        RoundSkipped: no results.
        ConfigError: a step already collapsed the cohort into one aggregate.
    """
    if not results:
        raise RoundSkipped(f"{who}: no client results to aggregate")
    if any(is_aggregate(r) for r in results):
        raise ConfigError(
            f"{who} needs the individual client updates, but a step (secure aggregation or "
            "central DP noise) already collapsed the cohort into one sum; drop one of the two"
        )
    return [r.update for r in results]


def resolve_byzantine(num_byzantine: int | float | None, n: int, most: int) -> int:
    """``f`` for a cohort of ``n``: a count as given, a fraction in [0, 0.5) of ``n``
    (floored), or ``None`` for ``most`` (the largest ``f`` the rule allows at this ``n``)."""
    if num_byzantine is None:
        return max(most, 0)
    if isinstance(num_byzantine, float):
        return int(num_byzantine * n)
    return int(num_byzantine)


def check_num_byzantine(num_byzantine: int | float | None) -> None:
    """Raise :class:`ConfigError` unless ``num_byzantine`` is a count >= 0, a fraction in [0, 0.5) or ``None``."""
    if isinstance(num_byzantine, bool) or not (num_byzantine is None or isinstance(num_byzantine, (int, float))):
        raise ConfigError(f"num_byzantine must be a count, a fraction or None, got {num_byzantine!r}")
    if isinstance(num_byzantine, float) and not 0.0 <= num_byzantine < 0.5:
        raise ConfigError(f"num_byzantine as a fraction must lie in [0, 0.5), got {num_byzantine!r}")
    if isinstance(num_byzantine, int) and num_byzantine < 0:
        raise ConfigError(f"num_byzantine must be >= 0, got {num_byzantine!r}")


class Median(Aggregator):
    """Aggregator: coordinate-wise median of the results' updates (weights ignored: a weight
    is attacker-controlled). Tolerates ``(n - 1) // 2`` arbitrary updates."""

    name = "median"
    uses_weights = False

    def byzantine_tolerance(self, n: int) -> int:
        return max((n - 1) // 2, 0)

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        return coordinate_median(client_updates(results, self.name))

    def __repr__(self) -> str:
        return "Median()"


class TrimmedMean(Aggregator):
    """Aggregator: coordinate-wise ``trim``-trimmed mean (``trim`` in [0, 0.5)); weights
    ignored. Tolerates ``floor(trim * n)`` arbitrary updates."""

    name = "trimmed_mean"
    uses_weights = False

    def __init__(self, trim: float = 0.1) -> None:
        if not 0.0 <= trim < 0.5:
            raise ConfigError(f"trim must lie in [0, 0.5), got {trim!r}")
        self.trim = float(trim)

    def byzantine_tolerance(self, n: int) -> int:
        return int(self.trim * n)

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        return trimmed_mean(client_updates(results, self.name), trim=self.trim)

    def __repr__(self) -> str:
        return f"TrimmedMean(trim={self.trim})"


class Krum(Aggregator):
    """Aggregator: Krum (``num_selected=1``) or Multi-Krum; weights ignored.

    Args:
        num_byzantine: ``f``: a count, a fraction in [0, 0.5) of the cohort, or ``None`` for
            the most the cohort allows (``(n - 3) // 2``).
        num_selected: ``m`` updates to average (1 = Krum); ``None`` = ``n - f`` (Multi-Krum's
            usual choice).

    Raises:
        ConfigError: at construction for out-of-range values; at aggregation when the cohort
            is too small for ``f`` (``n <= 2f + 2``) or ``m > n`` (the message names n and f).
            Nothing is lowered silently.
    """

    name = "krum"
    uses_weights = False

    def __init__(self, num_byzantine: int | float | None = None, num_selected: int | None = 1) -> None:
        check_num_byzantine(num_byzantine)
        if num_selected is not None and (
            isinstance(num_selected, bool) or not isinstance(num_selected, int) or num_selected < 1
        ):
            raise ConfigError(f"num_selected must be an integer >= 1 (or None for n - f), got {num_selected!r}")
        self.num_byzantine = num_byzantine
        self.num_selected = num_selected

    def byzantine_tolerance(self, n: int) -> int:
        return resolve_byzantine(self.num_byzantine, n, (n - 3) // 2)

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        n = len(results)
        f = self.byzantine_tolerance(n)
        m = n - f if self.num_selected is None else self.num_selected
        return krum(client_updates(results, self.name), num_byzantine=f, num_selected=m)

    def __repr__(self) -> str:
        return f"Krum(num_byzantine={self.num_byzantine}, num_selected={self.num_selected})"


class NormBound(Aggregator):
    """Aggregator: clip each update to ``max_norm``, then the example-weighted mean. Any
    number of attackers moves the result by at most ``max_norm`` (its norm is bounded), so its
    tolerance is the whole cohort; it does not *remove* their influence."""

    name = "norm_bound"
    uses_weights = True

    def __init__(self, max_norm: float = 1.0) -> None:
        if not max_norm > 0:
            raise ConfigError(f"max_norm must be > 0, got {max_norm!r}")
        self.max_norm = float(max_norm)

    def byzantine_tolerance(self, n: int) -> int:
        return n

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        return norm_bounded_mean(
            client_updates(results, self.name), [r.weight for r in results], max_norm=self.max_norm
        )

    def __repr__(self) -> str:
        return f"NormBound(max_norm={self.max_norm})"


def _multi_krum(num_byzantine: int | None = None, num_selected: int | None = None) -> Krum:
    return Krum(num_byzantine, num_selected)


AGGREGATORS.register_all(
    {"median": Median, "trimmed_mean": TrimmedMean, "krum": Krum, "multi_krum": _multi_krum, "norm_bound": NormBound},
    skip_registered=True,  # idempotent under re-import
)
