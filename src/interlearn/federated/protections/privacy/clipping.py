"""Per-client update clipping, fixed and adaptive.

Fixed clipping bounds every client's contribution to ``max_norm`` (L2 over all tensors), as in
DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models").
Adaptive clipping follows Andrew, Thakkar, McMahan & Ramaswamy 2021, "Differentially Private
Learning with Adaptive Clipping" (NeurIPS): the clip norm tracks a target quantile ``gamma`` of
the update norms with the geometric update ``C <- C * exp(-eta * (b - gamma))``, where ``b`` is
the (noised, with std ``count_noise_std``) fraction of clients whose update norm was at most
``C``.

Place :class:`ClipUpdates` before :class:`~interlearn.federated.protections.privacy.noise.GaussianNoise` in
the step list (clip -> noise -> aggregate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult, RoundContext, UpdateStep
from interlearn.federated.protections.privacy.cohort import num_clients
from interlearn.types import Params

__all__ = ["global_norm", "clip_update", "adaptive_clip_norm", "ClipUpdates"]


def global_norm(update: Params) -> float:
    """L2 norm of all tensors of ``update`` taken together."""
    sq = sum(float(torch.sum(t.detach().to(torch.float64) ** 2)) for t in update.values())
    return math.sqrt(sq)


def clip_update(update: Params, max_norm: float) -> tuple[Params, float]:
    """Scale ``update`` so its global L2 norm is at most ``max_norm``.

    Returns:
        The clipped update and the norm *before* clipping.
    """
    norm = global_norm(update)
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return {k: v * scale for k, v in update.items()}, norm


def adaptive_clip_norm(
    clip_norm: float, unclipped_fraction: float, target_quantile: float, learning_rate: float
) -> float:
    """One geometric step of Andrew et al. 2021 (Alg. 1): ``C * exp(-eta * (b - gamma))``.

    Args:
        clip_norm: current clip norm ``C``.
        unclipped_fraction: (noised) fraction ``b`` of clients with update norm <= ``C``.
        target_quantile: the quantile ``gamma`` of update norms the clip norm should track.
        learning_rate: ``eta``.
    """
    return clip_norm * math.exp(-learning_rate * (unclipped_fraction - target_quantile))


class ClipUpdates(UpdateStep):
    """Client-side L2 clipping of each update (fixed, or adaptive per Andrew et al. 2021).

    Hooks: ``client`` clips (and, when adaptive, reports whether the update was within the norm
    as the metric ``clip/unclipped``); ``server`` estimates the unclipped fraction from the
    cohort (adding Gaussian noise of std ``count_noise_std`` to the count) and ``after`` moves
    the clip norm for the next round. ``ctx.notes["clip/norm"]`` holds the norm used this round.

    Args:
        max_norm: the clip norm (initial clip norm when ``adaptive``).
        adaptive: track a quantile of the update norms instead of a fixed norm.
        target_quantile: ``gamma`` in (0, 1) (adaptive only).
        learning_rate: ``eta`` > 0 of the geometric update (adaptive only).
        count_noise_std: ``sigma_b`` >= 0, std of the Gaussian noise on the unclipped count;
            needed for the count to be private (Andrew et al. suggest cohort_size / 20).

    Raises:
        ConfigError: a value outside the ranges above.
    """

    name = "clip"

    def __init__(
        self,
        max_norm: float,
        *,
        adaptive: bool = False,
        target_quantile: float = 0.5,
        learning_rate: float = 0.2,
        count_noise_std: float = 0.0,
    ) -> None:
        if not max_norm > 0 or not math.isfinite(max_norm):
            raise ConfigError(f"max_norm must be a positive finite number, got {max_norm!r}")
        if not 0.0 < target_quantile < 1.0:
            raise ConfigError(f"target_quantile must lie in (0, 1), got {target_quantile!r}")
        if not learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {learning_rate!r}")
        if count_noise_std < 0:
            raise ConfigError(f"count_noise_std must be >= 0, got {count_noise_std!r}")
        self.adaptive = adaptive
        self.target_quantile = target_quantile
        self.learning_rate = learning_rate
        self.count_noise_std = count_noise_std
        self._norm = float(max_norm)
        self._next_norm = float(max_norm)

    @property
    def clip_norm(self) -> float:
        """The clip norm applied in the current round."""
        return self._norm

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        clipped, norm = clip_update(result.update, self._norm)
        metrics = dict(result.metrics)
        if self.adaptive:
            metrics["clip/unclipped"] = 1.0 if norm <= self._norm else 0.0
        return replace(result, update=clipped, metrics=metrics)

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        ctx.notes["clip/norm"] = self._norm
        if self.adaptive and (results or ctx.expected_clients is not None):
            # under central DP the fraction divides by the expected cohort (a fixed denominator,
            # as the update's mean does): the number that reported depends on who took part
            n = float(ctx.expected_clients if ctx.expected_clients is not None else num_clients(results))
            count = sum(float(r.metrics.get("clip/unclipped", 0.0)) for r in results)
            if self.count_noise_std > 0:
                count += float(torch.randn((), generator=ctx.generator)) * self.count_noise_std
            fraction = count / n
            ctx.notes["clip/unclipped_fraction"] = fraction
            self._next_norm = adaptive_clip_norm(self._norm, fraction, self.target_quantile, self.learning_rate)
        return list(results)

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        self._norm = self._next_norm
        return new

    def state_dict(self) -> dict[str, float]:
        """The clip norm, so a resumed run continues with the adapted value."""
        return {"clip_norm": self._norm}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self._norm = self._next_norm = float(state["clip_norm"])
