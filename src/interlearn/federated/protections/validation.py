"""Server-side validation of client updates before aggregation.

Every update is checked against the global model's structure: the same keys, shapes and dtypes,
finite values, a finite non-negative weight, and (optionally) an L2 norm bound (an update far
larger than honest ones is a classic model-replacement signature; Sun et al. 2019, "Can You
Really Backdoor Federated Learning?"). A bad update is rejected with a logged reason naming the
client and what was wrong; the round goes on with the valid ones. A round with fewer than
``min_valid`` valid updates raises :class:`~interlearn.errors.RoundSkipped`: the round loop keeps
the current global params, so nothing already aggregated is lost.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interlearn.errors import ConfigError, RoundSkipped, UpdateRejected
from interlearn.federated.api import ClientResult, RoundContext, UpdateStep
from interlearn.federated.protections.privacy.clipping import global_norm
from interlearn.federated.protections.privacy.cohort import is_aggregate
from interlearn.types import ClientId, Params

__all__ = ["check_update", "reject", "ValidateUpdates"]

logger = logging.getLogger("interlearn.federated.protections.validation")


def reject(ctx: RoundContext, client_id: ClientId, reason: str) -> None:
    """Log a rejected update (logger, ``ctx.log`` and ``ctx.notes["rejected"]``)."""
    msg = f"round {ctx.round}: update of client {client_id} rejected: {reason}"
    logger.warning(msg)
    ctx.log.append(msg)
    ctx.notes.setdefault("rejected", []).append({"client": client_id, "reason": reason})


def check_update(
    result: ClientResult, reference: Params, *, max_norm: float | None = None, check_dtype: bool = True
) -> None:
    """Raise :class:`UpdateRejected` unless ``result`` fits ``reference`` and the bounds.

    Args:
        result: the uploaded result.
        reference: the global params (only keys, shapes and dtypes are read).
        max_norm: reject updates whose global L2 norm exceeds it (``None``: no bound).
        check_dtype: require each tensor's dtype to equal the reference's.
    """
    update = result.update
    missing = [k for k in reference if k not in update]
    extra = [k for k in update if k not in reference]
    if missing or extra:
        raise UpdateRejected(f"keys do not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    for k, ref in reference.items():
        v = update[k]
        if not isinstance(v, torch.Tensor):
            raise UpdateRejected(f"{k!r} is a {type(v).__name__}, not a tensor")
        if v.shape != ref.shape:
            raise UpdateRejected(f"{k!r} has shape {tuple(v.shape)}, the model has {tuple(ref.shape)}")
        if check_dtype and v.dtype != ref.dtype:
            raise UpdateRejected(f"{k!r} has dtype {v.dtype}, the model has {ref.dtype}")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            raise UpdateRejected(f"{k!r} has {bad} non-finite value(s) (NaN/Inf)")
    for k, v in result.extras.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise UpdateRejected(f"extra {k!r} has non-finite values")
    if not math.isfinite(result.weight) or result.weight < 0:
        raise UpdateRejected(f"weight {result.weight!r} is not a finite non-negative number")
    if max_norm is not None and not is_aggregate(result):
        norm = global_norm(update)
        if norm > max_norm:
            raise UpdateRejected(f"L2 norm {norm:.4g} exceeds the bound {max_norm:g}")


@dataclass
class ValidateUpdates(UpdateStep):
    """The validation step: server hook drops invalid results, skips rounds with too few.

    Place it after clipping/noise and before compression / secure aggregation in the step
    list, so on the server it runs right after decompression and before anything aggregates.

    Attributes:
        reference: the global params, for keys/shapes/dtypes (or let the round loop put them in
            ``ctx.global_params``); refreshed from the new params after each round.
        max_norm: optional L2 bound on each update.
        min_valid: fewest valid updates a round needs (>= 1), else the round is skipped.
        check_dtype: require exact dtypes.
    """

    reference: Params | None = None
    max_norm: float | None = None
    min_valid: int = 1
    check_dtype: bool = True
    name: str = "validate"

    def __post_init__(self) -> None:
        if self.min_valid < 1:
            raise ConfigError(f"min_valid must be >= 1, got {self.min_valid}")
        if self.max_norm is not None and not self.max_norm > 0:
            raise ConfigError(f"max_norm must be > 0 or None, got {self.max_norm!r}")

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        return result

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        ref = self.reference if self.reference is not None else ctx.global_params
        if ref is None:
            raise ConfigError("ValidateUpdates needs the model's params: ValidateUpdates(reference=params)")
        valid = []
        for r in results:
            try:
                check_update(r, ref, max_norm=self.max_norm, check_dtype=self.check_dtype)
            except UpdateRejected as e:
                reject(ctx, r.client_id, str(e))
            else:
                valid.append(r)
        if len(valid) < self.min_valid:
            raise RoundSkipped(
                f"round {ctx.round}: only {len(valid)} of {len(results)} updates are valid, "
                f"{self.min_valid} needed; round skipped, global params unchanged"
            )
        return valid

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        self.reference = {k: v.detach() for k, v in new.items()}
        return new
