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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.api import Aggregator, ClientResult
from interlearn.federated.privacy.clipping import clip_update
from interlearn.federated.privacy.cohort import is_aggregate
from interlearn.federated.strategies.registry import AGGREGATORS, register_aggregator
from interlearn.types import Params

__all__ = [
    "ROBUST_AGGREGATORS",
    "Median",
    "TrimmedMean",
    "Krum",
    "NormBound",
    "coordinate_median",
    "trimmed_mean",
    "krum",
    "norm_bounded_mean",
    "krum_scores",
]


def _stack(updates: Sequence[Params]) -> tuple[torch.Tensor, list[tuple[str, torch.Size, torch.dtype]]]:
    if not updates:
        raise RoundSkipped("no updates to aggregate")
    layout = [(k, v.shape, v.dtype) for k, v in updates[0].items()]
    flat = torch.stack([torch.cat([u[k].reshape(-1).to(torch.float32) for k, _, _ in layout]) for u in updates])
    return flat, layout  # flat: (clients, total_numel)


def _unstack(vec: torch.Tensor, layout: list[tuple[str, torch.Size, torch.dtype]]) -> Params:
    out: Params = {}
    i = 0
    for k, shape, dtype in layout:
        n = shape.numel()
        out[k] = vec[i : i + n].reshape(shape).to(dtype)
        i += n
    return out


def coordinate_median(updates: Sequence[Params], weights: Sequence[float] | None = None) -> Params:
    """Coordinate-wise median (the mean of the two middle values for an even count)."""
    flat, layout = _stack(updates)
    s = flat.sort(dim=0).values
    n = s.shape[0]
    med = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    return _unstack(med, layout)


def trimmed_mean(updates: Sequence[Params], weights: Sequence[float] | None = None, *, trim: float = 0.1) -> Params:
    """Coordinate-wise mean after dropping the ``floor(trim * n)`` largest and smallest values.

    Raises:
        ConfigError: ``trim`` outside [0, 0.5).
    """
    if not 0.0 <= trim < 0.5:
        raise ConfigError(f"trim must lie in [0, 0.5), got {trim!r}")
    flat, layout = _stack(updates)
    n = flat.shape[0]
    k = int(trim * n)
    if n - 2 * k < 1:
        raise RoundSkipped(f"trimmed mean with trim={trim} leaves no update out of {n}")
    s = flat.sort(dim=0).values
    return _unstack(s[k : n - k].mean(dim=0), layout)


def krum_scores(flat: torch.Tensor, num_byzantine: int) -> torch.Tensor:
    """Krum score of each row: summed squared distance to its ``n - f - 2`` nearest rows."""
    n = flat.shape[0]
    d2 = torch.cdist(flat.double(), flat.double()).pow(2)  # (clients, clients)
    d2.fill_diagonal_(float("inf"))
    closest_k = max(n - num_byzantine - 2, 1)
    return d2.sort(dim=1).values[:, :closest_k].sum(dim=1)


def krum(
    updates: Sequence[Params],
    weights: Sequence[float] | None = None,
    *,
    num_byzantine: int = 0,
    num_selected: int = 1,
) -> Params:
    """Krum (``num_selected=1``) or Multi-Krum: average the updates with the lowest scores.

    Args:
        num_byzantine: ``f``, the number of attackers to tolerate; Krum needs ``n > 2f + 2``.
        num_selected: ``m``, how many best-scored updates to average (Multi-Krum when > 1).

    Raises:
        ConfigError: ``f`` or ``m`` out of range for the number of updates.
    """
    flat, layout = _stack(updates)
    n = flat.shape[0]
    if num_byzantine < 0 or n <= 2 * num_byzantine + 2:
        raise ConfigError(
            f"Krum with num_byzantine={num_byzantine} needs more than {2 * num_byzantine + 2} updates, got {n}; "
            "lower num_byzantine or sample more clients per round"
        )
    if not 1 <= num_selected <= n:
        raise ConfigError(f"num_selected must lie in 1..{n}, got {num_selected}")
    best = krum_scores(flat, num_byzantine).argsort()[:num_selected]
    return _unstack(flat[best].mean(dim=0), layout)


def norm_bounded_mean(
    updates: Sequence[Params], weights: Sequence[float] | None = None, *, max_norm: float = 1.0
) -> Params:
    """Clip every update to L2 norm ``max_norm``, then take the (weighted) mean."""
    if not max_norm > 0:
        raise ConfigError(f"max_norm must be > 0, got {max_norm!r}")
    clipped = [clip_update(u, max_norm)[0] for u in updates]
    flat, layout = _stack(clipped)
    w = torch.ones(len(updates)) if weights is None else torch.tensor([float(x) for x in weights])
    if float(w.sum()) <= 0:
        raise RoundSkipped("total weight of the updates is zero")
    return _unstack((flat * (w / w.sum())[:, None]).sum(dim=0), layout)


def _updates(results: Sequence[ClientResult], who: str) -> list[Params]:
    if any(is_aggregate(r) for r in results):
        raise ConfigError(
            f"{who} needs the individual client updates, but a step (secure aggregation or "
            "central DP noise) already collapsed the cohort into one sum; drop one of the two"
        )
    return [r.update for r in results]


class Median:
    """Aggregator: coordinate-wise median of the results' updates."""

    name = "median"

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        return coordinate_median(_updates(results, self.name))

    def __repr__(self) -> str:
        return "Median()"


class TrimmedMean:
    """Aggregator: coordinate-wise ``trim``-trimmed mean (``trim`` in [0, 0.5))."""

    name = "trimmed_mean"

    def __init__(self, trim: float = 0.1) -> None:
        if not 0.0 <= trim < 0.5:
            raise ConfigError(f"trim must lie in [0, 0.5), got {trim!r}")
        self.trim = float(trim)

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        return trimmed_mean(_updates(results, self.name), trim=self.trim)

    def __repr__(self) -> str:
        return f"TrimmedMean(trim={self.trim})"


class Krum:
    """Aggregator: Krum (``num_selected=1``) or Multi-Krum tolerating ``num_byzantine``
    attackers, given as a count or, when a float in [0, 0.5), as a fraction of the cohort."""

    name = "krum"

    def __init__(self, num_byzantine: int | float = 0, num_selected: int = 1) -> None:
        if isinstance(num_byzantine, float) and not 0.0 <= num_byzantine < 0.5:
            raise ConfigError(f"num_byzantine as a fraction must lie in [0, 0.5), got {num_byzantine!r}")
        if isinstance(num_byzantine, int) and num_byzantine < 0:
            raise ConfigError(f"num_byzantine must be >= 0, got {num_byzantine!r}")
        if num_selected < 1:
            raise ConfigError(f"num_selected must be >= 1, got {num_selected!r}")
        self.num_byzantine = num_byzantine
        self.num_selected = int(num_selected)

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        n = len(results)
        f = self.num_byzantine
        f = int(f * n) if isinstance(f, float) else f
        f = min(f, max((n - 3) // 2, 0))  # Krum's n > 2f + 2, for small cohorts
        return krum(_updates(results, self.name), num_byzantine=f, num_selected=min(self.num_selected, n))

    def __repr__(self) -> str:
        return f"Krum(num_byzantine={self.num_byzantine}, num_selected={self.num_selected})"


class NormBound:
    """Aggregator: clip each update to ``max_norm``, then the example-weighted mean."""

    name = "norm_bound"

    def __init__(self, max_norm: float = 1.0) -> None:
        if not max_norm > 0:
            raise ConfigError(f"max_norm must be > 0, got {max_norm!r}")
        self.max_norm = float(max_norm)

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        return norm_bounded_mean(_updates(results, self.name), [r.weight for r in results], max_norm=self.max_norm)

    def __repr__(self) -> str:
        return f"NormBound(max_norm={self.max_norm})"


ROBUST_AGGREGATORS: dict[str, Callable[..., Aggregator]] = {
    "median": Median,
    "trimmed_mean": TrimmedMean,
    "krum": Krum,
    "multi_krum": lambda num_byzantine=0, num_selected=5: Krum(num_byzantine, num_selected),
    "norm_bound": NormBound,
}

for _name, _factory in ROBUST_AGGREGATORS.items():
    if _name not in AGGREGATORS:  # idempotent under re-import
        register_aggregator(_name, _factory)
