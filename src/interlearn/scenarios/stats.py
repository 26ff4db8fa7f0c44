"""Paired gains over seeds: what a tour verdict rests on.

Every scenario repeats its comparison with several seeds (labelled images drawn, initial
weights, batches, partitions). The gain of a paradigm is the per-seed difference between its
result and its baseline (paired: the same seed gives both the same data), summarised by its
mean and standard error. A verdict says "helps" only when the mean gain exceeds twice its
standard error, which one seed cannot show.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from interlearn.errors import ConfigError

__all__ = ["Gain", "paired_gain", "gain_verdict", "boundary"]


@dataclass(frozen=True)
class Gain:
    """A paired gain over seeds.

    Attributes:
        seeds: the seeds, one per repetition.
        per_seed: ``result - baseline`` for each seed.
        mean: their mean.
        se: their standard error (``stdev / sqrt(n)``; NaN with one seed).
    """

    seeds: tuple[int, ...]
    per_seed: tuple[float, ...]
    mean: float
    se: float

    @property
    def significant(self) -> bool:
        """The mean gain is positive and larger than twice its standard error."""
        return not math.isnan(self.se) and self.mean > 0 and self.mean > 2 * self.se

    def row(self) -> dict[str, Any]:
        """The summary.json fields: gain, its standard error, the seeds and per-seed gains."""
        return {
            "gain": self.mean,
            "gain_se": self.se,
            "seeds": list(self.seeds),
            "gain_per_seed": list(self.per_seed),
            "significant": self.significant,
        }


def paired_gain(result: Sequence[float], baseline: Sequence[float], seeds: Sequence[int]) -> Gain:
    """The gain of ``result`` over ``baseline``, paired by seed.

    Raises:
        ConfigError: the three sequences differ in length, or are empty.
    """
    if not (len(result) == len(baseline) == len(seeds)) or not seeds:
        raise ConfigError(
            f"paired_gain needs one result and one baseline per seed: got {len(result)} results, "
            f"{len(baseline)} baselines and {len(seeds)} seeds"
        )
    diffs = tuple(float(r) - float(b) for r, b in zip(result, baseline))
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return Gain(tuple(int(s) for s in seeds), diffs, statistics.fmean(diffs), se)


def gain_verdict(gain: Gain, what: str) -> str:
    """One line: helps (gain > 2 SE) or does not, with the gain in points and its SE."""
    n = len(gain.seeds)
    tail = f"{100 * gain.mean:+.1f} pts (SE {100 * gain.se:.1f}, {n} seed{'s' if n > 1 else ''})"
    if gain.significant:
        return f"{what} helps: {tail}"
    if gain.mean < 0 and gain.mean < -2 * gain.se:
        return f"{what} does not help here: worse than the baseline, {tail}"
    return f"{what} does not help here: no gain larger than twice its standard error, {tail}"


def boundary(points: Sequence[Any], gains: Sequence[Gain], side: str = "high") -> Any | None:
    """Where along a curve (``points`` ordered along its x axis) the paradigm stops paying.

    Args:
        points: the curve's x values (label budgets, sizes).
        gains: the gain at each point.
        side: ``"high"``: the first point of the run of non-significant gains that ends the
            curve (it pays below, stops at and above it); ``"low"``: the last point of the run
            that starts the curve (it does not pay up to it, pays above).

    Returns:
        That point, or ``None`` when the gain is significant at that end of the curve.

    Raises:
        ConfigError: lengths differ, or an unknown ``side``.
    """
    if len(points) != len(gains):
        raise ConfigError(f"boundary: {len(points)} points but {len(gains)} gains")
    if side not in ("high", "low"):
        raise ConfigError(f"side={side!r}: use 'high' or 'low'")
    pairs = list(zip(points, gains))
    found = None
    for p, g in reversed(pairs) if side == "high" else pairs:
        if g.significant:
            break
        found = p
    return found
