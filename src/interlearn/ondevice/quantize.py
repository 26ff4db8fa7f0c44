"""Weight-only int8 / int4 quantization of a model's parameters for storage on the device.

Symmetric round-to-nearest quantization of every matrix (2-D or larger), the weight-only scheme
of e.g. GPTQ's round-to-nearest baseline and llama.cpp's ``Q4_0``/``Q8_0`` blocks (Frantar et
al. 2023, "GPTQ", compare it against round-to-nearest): the values of each group (a row, or
``group_size`` consecutive values of a row) share one scale ``max|w| / qmax``. int4 codes are
packed two per byte. Vectors (biases) stay float32: they are a negligible share of the bytes.
Scales are stored as float16 for int4 groups (a scale per 32 values would otherwise cost a
quarter of the int4 payload) and float32 per row for int8.

Why hand-written: ``torch.ao.quantization``'s dynamic quantization is deprecated in torch 2.13
(it points to torchao, which is not a dependency), it has no int4 weight-only path on CPU, and
safetensors cannot store its packed tensors. The encoding here is a flat ``dict[str, Tensor]``
that safetensors writes as is, so its bytes on disk are measured, not estimated, and it decodes
into ordinary float32 parameters that load into the unchanged model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save, save_file
from torch import nn

from interlearn.errors import ConfigError
from interlearn.types import Params

__all__ = ["quantize_weights", "dequantize_weights", "encoded_bytes", "model_tensors", "model_bytes", "save_model"]


def _groups(w: torch.Tensor, group_size: int | None) -> tuple[torch.Tensor, int]:
    """(rows, cols) view of ``w`` cut into groups: (n_groups, g) and the zero padding added."""
    rows = w.reshape(w.shape[0], -1)
    g = rows.shape[1] if group_size is None else group_size
    pad = (-rows.shape[1]) % g
    if pad:
        rows = torch.nn.functional.pad(rows, (0, pad))
    return rows.reshape(-1, g), pad


def quantize_weights(params: Params, bits: int = 8, group_size: int | None = None) -> dict[str, torch.Tensor]:
    """Encode every matrix of ``params`` with ``bits``-bit weights.

    Args:
        params: float parameters (e.g. ``model.state_dict()``).
        bits: 8 or 4.
        group_size: values sharing a scale along each row (``None``: the whole row).

    Returns:
        A flat dict for safetensors: ``name`` (float32 vectors); for matrices ``name.q`` (int8
        codes, or uint8 with two int4 codes per byte), ``name.scale`` and ``name.shape``.

    Raises:
        ConfigError: ``bits`` not 4 or 8, or ``group_size < 1``.
    """
    if bits not in (4, 8):
        raise ConfigError(f"bits={bits}: weight-only quantization supports 8 or 4 bits")
    if group_size is not None and group_size < 1:
        raise ConfigError(f"group_size={group_size}: use None (one scale per row) or a positive count")
    qmax = 127 if bits == 8 else 7
    out: dict[str, torch.Tensor] = {}
    for name, w in params.items():
        w = w.detach().float().cpu()
        if w.dim() < 2:
            out[name] = w.contiguous()
            continue
        groups, _ = _groups(w, group_size)
        scale = groups.abs().amax(1).clamp_min(1e-12) / qmax
        codes = (groups / scale[:, None]).round().clamp(-qmax, qmax).to(torch.int8)  # (n_groups, g)
        if bits == 4:
            flat = (codes.reshape(-1) + 8).to(torch.uint8)  # 1..15
            if flat.numel() % 2:
                flat = torch.cat([flat, flat.new_zeros(1)])
            codes = flat[0::2] | (flat[1::2] << 4)
            scale = scale.half()
        out[f"{name}.q"] = codes.contiguous()
        out[f"{name}.scale"] = scale.contiguous()
        out[f"{name}.shape"] = torch.tensor([*w.shape, bits, group_size or 0], dtype=torch.int32)
    return out


def dequantize_weights(encoded: dict[str, torch.Tensor]) -> Params:
    """Inverse of :func:`quantize_weights` (up to rounding): float32 parameters."""
    out: Params = {}
    for name, t in encoded.items():
        if name.endswith(".shape"):
            base = name[: -len(".shape")]
            *shape, bits, group = (int(v) for v in t.tolist())
            codes, scale = encoded[f"{base}.q"], encoded[f"{base}.scale"].float()
            cols = 1
            for s in shape[1:]:
                cols *= s
            g = cols if group == 0 else group
            padded = cols + (-cols) % g
            if bits == 4:
                vals = (
                    torch.stack([codes & 0x0F, codes >> 4], dim=1).reshape(-1)[: shape[0] * padded].to(torch.int8) - 8
                )
            else:
                vals = codes.reshape(-1)
            w = (vals.float().reshape(-1, g) * scale[:, None]).reshape(shape[0], padded)[:, :cols]
            out[base] = w.reshape(shape).contiguous()
        elif not name.endswith((".q", ".scale")):
            out[name] = t
    return out


def encoded_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Bytes of ``tensors`` written as one safetensors file (header included)."""
    return len(save({k: v.contiguous() for k, v in tensors.items()}))


def model_tensors(model: nn.Module, int8: bool = False) -> dict[str, torch.Tensor]:
    """What is stored for ``model``: its state dict on the CPU (copies, so tied weights are
    stored twice, as safetensors requires), or its :func:`quantize_weights` int8 encoding."""
    params = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return quantize_weights(params, 8) if int8 else params


def model_bytes(model: nn.Module, int8: bool = False) -> int:
    """Bytes of ``model``'s parameters as one safetensors file (float as they are, or int8
    weights): what a device downloads and stores."""
    return encoded_bytes(model_tensors(model, int8))


def save_model(model: nn.Module, path: str | Path, int8: bool = False) -> int:
    """Write :func:`model_tensors` to a safetensors file; return its size in bytes (as
    :func:`model_bytes` counts them)."""
    save_file(model_tensors(model, int8), str(path))
    return Path(path).stat().st_size
