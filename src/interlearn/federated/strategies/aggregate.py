"""Pure aggregation math over parameter dictionaries (STYLE.md #3: strategies call this, never
re-implement it).

The example-weighted mean is FedAvg's aggregation rule (McMahan et al. 2017, "Communication-
Efficient Learning of Deep Networks from Decentralized Data", AISTATS, Algorithm 1): the server
averages client updates with weights ``n_k / n``. Accumulation is in float32 (float64 for
float64 inputs) and the result is cast back to the update's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interlearn.errors import ConfigError, RoundSkipped, UpdateRejected
from interlearn.federated.api import Aggregator, ClientResult
from interlearn.types import Params

__all__ = [
    "weighted_mean",
    "check_aggregator",
    "WeightedMean",
    "add",
    "sub",
    "scale",
    "zeros_like",
    "check_compatible",
    "arithmetic_dtype",
    "cast_back",
]


def arithmetic_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype robust and fair aggregation arithmetic runs in for inputs of ``dtype``: the
    input's own float dtype (float64 stays float64, float32 stays float32); half precision is
    accumulated in float32 (never below the input's precision) and integer buffers in float64."""
    if dtype in (torch.float64, torch.float32):
        return dtype
    if dtype.is_floating_point:
        return torch.float32
    return torch.float64


def cast_back(value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``value`` (computed in :func:`arithmetic_dtype`) in the input's ``dtype``; integers rounded."""
    return value.to(dtype) if dtype.is_floating_point else value.round().to(dtype)


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_compatible(reference: Params, update: Params, who: str = "update") -> None:
    """Raise :class:`UpdateRejected` when ``update`` is not keyed and shaped like ``reference``."""
    if update.keys() != reference.keys():
        missing = sorted(reference.keys() - update.keys())[:5]
        extra = sorted(update.keys() - reference.keys())[:5]
        raise UpdateRejected(f"{who}: keys differ from the global params (missing {missing}, unexpected {extra})")
    for k, v in update.items():
        if v.shape != reference[k].shape:
            raise UpdateRejected(f"{who}: {k!r} has shape {tuple(v.shape)}, expected {tuple(reference[k].shape)}")


def weighted_mean(tensors: Sequence[Params], weights: Sequence[float]) -> Params:
    """``sum_k w_k * t_k / sum_k w_k`` for every key.

    Args:
        tensors: dicts keyed alike (the first one fixes keys, shapes and dtypes).
        weights: one non-negative weight per dict.

    Returns:
        The weighted mean, keyed and typed like ``tensors[0]``.

    Raises:
        RoundSkipped: empty input or total weight <= 0.
        UpdateRejected: dicts with different keys or shapes, or a negative weight.

    Example:
        >>> weighted_mean([{"w": torch.ones(2)}, {"w": torch.zeros(2)}], [3, 1])["w"]
        tensor([0.7500, 0.7500])
    """
    if len(tensors) == 0:
        raise RoundSkipped("no client updates to aggregate")
    if len(tensors) != len(weights):
        raise UpdateRejected(f"{len(tensors)} updates but {len(weights)} weights")
    w = [float(x) for x in weights]
    if any(x < 0 for x in w):
        raise UpdateRejected(f"negative aggregation weight in {w}; weights are example counts (>= 0)")
    total = sum(w)
    if total <= 0:
        raise RoundSkipped(f"total aggregation weight is {total}; nothing to average")
    first = tensors[0]
    for i, t in enumerate(tensors[1:], 1):
        check_compatible(first, t, f"update {i}")
    out: Params = {}
    for k, ref in first.items():
        acc_dtype = _acc_dtype(ref.dtype)
        # (clients, *shape): one fused reduction instead of a Python loop of axpys
        stacked = torch.stack([t[k].to(acc_dtype) for t in tensors])
        coef = torch.tensor(w, dtype=acc_dtype, device=ref.device).div_(total).reshape(-1, *([1] * ref.dim()))
        out[k] = (stacked * coef).sum(0).to(ref.dtype)
    return out


class WeightedMean(Aggregator):
    """The default :class:`~interlearn.federated.api.Aggregator`: the mean of the results'
    updates weighted by ``ClientResult.weight`` (``uniform=True``: equal weights). Not robust:
    one huge update moves it arbitrarily far (``byzantine_tolerance`` is 0)."""

    name = "mean"

    def __init__(self, uniform: bool = False) -> None:
        self.uniform = bool(uniform)

    @property
    def uses_weights(self) -> bool:
        """Whether ``ClientResult.weight`` changes the result (not for ``uniform=True``)."""
        return not self.uniform

    def byzantine_tolerance(self, n: int) -> int:
        """Arbitrary updates among ``n`` this rule withstands: none."""
        return 0

    def __call__(self, results: Sequence[ClientResult]) -> Params:
        weights = [1.0] * len(results) if self.uniform else [r.weight for r in results]
        return weighted_mean([r.update for r in results], weights)

    def __repr__(self) -> str:
        return f"WeightedMean(uniform={self.uniform})"


def check_aggregator(aggregator: object) -> Aggregator:
    """``aggregator`` if it declares the :class:`~interlearn.federated.api.Aggregator` interface.

    Raises:
        ConfigError: it does not (a plain function, a class without ``name``/``uses_weights``).
    """
    if not isinstance(aggregator, Aggregator):
        raise ConfigError(
            f"aggregator {aggregator!r} lacks part of the Aggregator interface (name, uses_weights, __call__): "
            "subclass interlearn.federated.Aggregator (uses_weights defaults to True)"
        )
    return aggregator


def add(a: Params, b: Params, alpha: float = 1.0) -> Params:
    """``a + alpha * b`` keyed like ``a`` (dtype of ``a`` kept)."""
    return {k: (v + alpha * b[k].to(v.dtype)) for k, v in a.items()}


def sub(a: Params, b: Params) -> Params:
    """``a - b`` keyed like ``a``."""
    return {k: v - b[k].to(v.dtype) for k, v in a.items()}


def scale(a: Params, s: float) -> Params:
    """``s * a``."""
    return {k: v * s for k, v in a.items()}


def zeros_like(a: Params) -> Params:
    """Zeros keyed, shaped and typed like ``a``."""
    return {k: torch.zeros_like(v) for k, v in a.items()}
