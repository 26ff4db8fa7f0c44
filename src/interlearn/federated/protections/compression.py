"""Update compression: stochastic 8/4-bit quantization and top-k with error feedback.

- Stochastic uniform quantization (QSGD-style unbiased rounding; Alistarh et al. 2017, "QSGD",
  NeurIPS; Suresh et al. 2017, "Distributed Mean Estimation with Limited Communication", ICML):
  per tensor, values are mapped to ``2**bits`` levels between its min and max and rounded up
  with probability equal to the remainder, so ``E[decode(encode(x))] = x``.
- Top-k sparsification with error feedback (Stich, Cordonnier & Jaggi 2018, "Sparsified SGD with
  Memory", NeurIPS; Lin et al. 2018, "Deep Gradient Compression"): send the ``ratio`` largest
  magnitudes, keep what was not sent and add it to the next round's update.

:class:`CompressUpdates` compresses on the client (payload = a ``Params`` of packed tensors) and
decompresses on the server; ``ctx.notes`` gets ``compress/bytes_up`` (payload bytes) and
``compress/bytes_dense`` (what float32 would have cost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch

from interlearn.errors import ConfigError, UpdateRejected, closest
from interlearn.federated.api import ClientResult, RoundContext, UpdateStep
from interlearn.federated.protections.validation import reject
from interlearn.federated.server.comm import params_bytes
from interlearn.types import Params

__all__ = [
    "COMPRESSORS",
    "quantize",
    "dequantize",
    "topk_sparsify",
    "densify",
    "CompressUpdates",
]

COMPRESSORS = ("q8", "q4", "topk")
_SEP = "::"
_MEM = "compress/residual/"  # prefix of the error-feedback residual in the client's memory


def quantize(x: torch.Tensor, bits: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Stochastically quantize ``x`` to ``bits`` (8 or 4) bits per value.

    Returns:
        ``{"q": uint8 codes (two per byte for 4 bits), "lo": min, "hi": max}``.
    """
    if bits not in (4, 8):
        raise ConfigError(f"quantization bits must be 4 or 8, got {bits}")
    flat = x.detach().reshape(-1).to(torch.float32)
    lo = flat.min() if flat.numel() else torch.tensor(0.0)
    hi = flat.max() if flat.numel() else torch.tensor(0.0)
    levels = (1 << bits) - 1
    span = float(hi - lo)
    scaled = (flat - lo) / span * levels if span > 0 else torch.zeros_like(flat)
    floor = scaled.floor()
    up = torch.rand(flat.shape, generator=generator) < (scaled - floor)  # unbiased rounding
    codes = (floor + up.to(torch.float32)).clamp_(0, levels).to(torch.uint8)
    if bits == 4:
        if codes.numel() % 2:
            codes = torch.cat([codes, codes.new_zeros(1)])
        codes = codes[0::2] | (codes[1::2] << 4)
    return {"q": codes, "lo": lo.reshape(1), "hi": hi.reshape(1)}


def dequantize(payload: dict[str, torch.Tensor], numel: int, bits: int) -> torch.Tensor:
    """Inverse of :func:`quantize` (a flat float32 tensor of ``numel`` values)."""
    codes = payload["q"]
    if bits == 4:
        codes = torch.stack([codes & 0x0F, codes >> 4], dim=1).reshape(-1)[:numel]
    levels = (1 << bits) - 1
    lo, hi = payload["lo"].to(torch.float32), payload["hi"].to(torch.float32)
    return lo + codes.to(torch.float32) * ((hi - lo) / levels)


def topk_sparsify(x: torch.Tensor, ratio: float) -> dict[str, torch.Tensor]:
    """Keep the ``ceil(ratio * numel)`` largest-magnitude values: ``{"idx": int32, "val": f32}``."""
    flat = x.detach().reshape(-1).to(torch.float32)
    k = max(1, math.ceil(ratio * flat.numel())) if flat.numel() else 0
    idx = flat.abs().topk(k).indices if k else torch.zeros(0, dtype=torch.int64)
    return {"idx": idx.to(torch.int32), "val": flat[idx]}


def densify(payload: dict[str, torch.Tensor], numel: int) -> torch.Tensor:
    """Inverse of :func:`topk_sparsify`: a flat float32 tensor with zeros elsewhere."""
    out = torch.zeros(numel, dtype=torch.float32)
    idx = payload["idx"].to(torch.int64)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= numel):
        raise UpdateRejected(f"top-k indices out of range 0..{numel - 1}")
    out[idx] = payload["val"].to(torch.float32)
    return out


class CompressUpdates(UpdateStep):
    """Client-side compression, server-side decompression of updates.

    Args:
        method: ``"q8"``, ``"q4"`` (stochastic quantization) or ``"topk"``.
        ratio: fraction of values kept by top-k, in (0, 1].
        error_feedback: keep each client's compression error and add it to its next update
            (default on for top-k, off for the unbiased quantizers).

    Raises:
        ConfigError: unknown method (the message lists the known ones) or bad ratio.
    """

    name = "compress"

    def __init__(self, method: str, *, ratio: float = 0.01, error_feedback: bool | None = None) -> None:
        if method not in COMPRESSORS:
            raise ConfigError(f"unknown compressor {method!r}; did you mean {closest(method, COMPRESSORS)}?")
        if not 0.0 < ratio <= 1.0:
            raise ConfigError(f"top-k ratio must lie in (0, 1], got {ratio!r}")
        self.method = method
        self.ratio = ratio
        self.error_feedback = (method == "topk") if error_feedback is None else error_feedback

    def _compress(self, x: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
        if self.method == "topk":
            return topk_sparsify(x, self.ratio)
        return quantize(x, 8 if self.method == "q8" else 4, g)

    def _decompress(self, p: dict[str, torch.Tensor], numel: int) -> torch.Tensor:
        if self.method == "topk":
            return densify(p, numel)
        return dequantize(p, numel, 8 if self.method == "q8" else 4)

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        # the residual is client memory: it lives with the client (ctx.memory), on the device
        res = {k[len(_MEM) :]: v for k, v in ctx.memory.items() if k.startswith(_MEM)} if self.error_feedback else {}
        payload: Params = {}
        new_res: Params = {}
        for k, v in result.update.items():
            target = v.to(torch.float32) + res[k] if k in res else v.to(torch.float32)
            p = self._compress(target, ctx.generator)
            if self.error_feedback:
                new_res[k] = target - self._decompress(p, target.numel()).reshape(target.shape)
            for part, t in p.items():
                payload[f"{k}{_SEP}{part}"] = t
            payload[f"{k}{_SEP}shape"] = torch.tensor(list(v.shape), dtype=torch.int32)
        if self.error_feedback:
            ctx.memory.update({_MEM + k: v for k, v in new_res.items()})
        notes = ctx.notes
        notes["compress/bytes_up"] = int(notes.get("compress/bytes_up", 0)) + params_bytes(payload)
        dense = sum(v.numel() * 4 for v in result.update.values())
        notes["compress/bytes_dense"] = int(notes.get("compress/bytes_dense", 0)) + dense
        return replace(result, update=payload)

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        out = []
        for r in results:
            try:
                out.append(replace(r, update=self._unpack(r.update)))
            except (UpdateRejected, KeyError, RuntimeError, ValueError, IndexError) as e:
                reject(ctx, r.client_id, f"malformed {self.method} payload: {e}")
        return out

    def _unpack(self, payload: Params) -> Params:
        groups: dict[str, dict[str, torch.Tensor]] = {}
        for key, t in payload.items():
            name, sep, part = key.rpartition(_SEP)
            if not sep:
                raise UpdateRejected(f"key {key!r} is not a {self.method} payload entry")
            groups.setdefault(name, {})[part] = t
        update: Params = {}
        for name, parts in groups.items():
            shape = [int(s) for s in parts.pop("shape")]
            numel = math.prod(shape)
            update[name] = self._decompress(parts, numel).reshape(shape)
        return update

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        return new
