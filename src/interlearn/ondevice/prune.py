"""Magnitude pruning for storage: the smallest weights set to zero, stored as a bitmask.

Global unstructured magnitude pruning (Han et al. 2015, "Learning both Weights and Connections
for Efficient Neural Networks"; Zhu & Gupta 2017 for its accuracy-vs-sparsity trade-off) through
``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``: one magnitude threshold
over all matrices. A pruned matrix is stored as a packed bitmask (one bit per weight) and its
surviving values, as int8 with one scale per matrix; it decodes into a dense matrix with zeros.
Without retraining, accuracy falls quickly with sparsity; the frontier shows where.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from interlearn.errors import ConfigError
from interlearn.types import Params

__all__ = ["prune_magnitude", "encode_sparse", "decode_sparse"]


def prune_magnitude(params: Params, sparsity: float) -> Params:
    """Zero the ``sparsity`` fraction of smallest-magnitude entries over all matrices (one
    global threshold; vectors are kept).

    Raises:
        ConfigError: ``sparsity`` outside [0, 1).
    """
    if not 0 <= sparsity < 1:
        raise ConfigError(f"sparsity={sparsity}: use a fraction in [0, 1)")
    # one holder module per matrix: torch.nn.utils.prune works on a module's named parameter
    holders = {k: nn.Module() for k, v in params.items() if v.dim() >= 2}
    for k, mod in holders.items():
        mod.register_parameter("weight", nn.Parameter(params[k].detach().float().clone()))
    if holders and sparsity > 0:
        prune.global_unstructured(
            [(m, "weight") for m in holders.values()], pruning_method=prune.L1Unstructured, amount=sparsity
        )
        for m in holders.values():
            prune.remove(m, "weight")
    return {k: (holders[k].get_parameter("weight").detach() if k in holders else v) for k, v in params.items()}


def encode_sparse(params: Params) -> dict[str, torch.Tensor]:
    """Matrices -> ``name.mask`` (packed bits), ``name.nz`` (int8 values), ``name.nzscale``
    and ``name.nzshape``; vectors stay float32."""
    out: dict[str, torch.Tensor] = {}
    for name, w in params.items():
        w = w.detach().float()
        if w.dim() < 2:
            out[name] = w
            continue
        mask = w != 0
        vals = w[mask]
        scale = vals.abs().max().clamp_min(1e-12) / 127 if vals.numel() else torch.tensor(1.0)
        out[f"{name}.mask"] = torch.from_numpy(np.packbits(mask.reshape(-1).numpy()))
        out[f"{name}.nz"] = (vals / scale).round().clamp(-127, 127).to(torch.int8)
        out[f"{name}.nzscale"] = scale.reshape(1).float()
        out[f"{name}.nzshape"] = torch.tensor(list(w.shape), dtype=torch.int32)
    return out


def decode_sparse(encoded: dict[str, torch.Tensor]) -> Params:
    """Inverse of :func:`encode_sparse` (values rounded to int8)."""
    out: Params = {}
    for name, t in encoded.items():
        if name.endswith(".nzshape"):
            base = name[: -len(".nzshape")]
            shape = [int(v) for v in t.tolist()]
            numel = int(np.prod(shape))
            mask = torch.from_numpy(np.unpackbits(encoded[f"{base}.mask"].numpy())[:numel].astype(bool))
            w = torch.zeros(numel)
            w[mask] = encoded[f"{base}.nz"].float() * encoded[f"{base}.nzscale"]
            out[base] = w.reshape(shape)
        elif not any(name.endswith(s) for s in (".mask", ".nz", ".nzscale")):
            out[name] = t
    return out
