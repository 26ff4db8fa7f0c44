"""Low-rank factorization of weight matrices for storage (truncated SVD).

A matrix ``W`` (m x n) is stored as ``U_r`` (m x r, singular values folded in) and ``V_r``
(r x n), the best rank-``r`` approximation in Frobenius norm (Eckart-Young); Denton et al.
2014 ("Exploiting Linear Structure Within Convolutional Networks for Efficient Evaluation") and
Sainath et al. 2013 (low-rank output layers of speech models) use it to shrink trained
networks. Only matrices for which ``r (m + n) < m n`` are factorized. The factors decode back
into a dense matrix for the unchanged model; they can also be quantized
(:func:`interlearn.ondevice.quantize.quantize_weights` takes the encoded dict as input).
"""

from __future__ import annotations

import torch

from interlearn.errors import ConfigError
from interlearn.types import Params

__all__ = ["factorize", "defactorize"]


def factorize(params: Params, rank_fraction: float) -> Params:
    """Replace every matrix ``W`` whose factors are smaller by ``name.U`` and ``name.V``.

    Args:
        params: float parameters.
        rank_fraction: rank kept, as a fraction of ``min(m, n)`` (e.g. 0.5).

    Returns:
        ``name`` for kept tensors; ``name.U`` (m x r) and ``name.V`` (r x n, both float32) for
        factorized matrices (higher-dimensional weights are flattened to (m, n) and
        ``name.shape`` records their shape).

    Raises:
        ConfigError: ``rank_fraction`` outside (0, 1].
    """
    if not 0 < rank_fraction <= 1:
        raise ConfigError(f"rank_fraction={rank_fraction}: use a value in (0, 1] (the share of min(m, n) kept)")
    out: Params = {}
    for name, w in params.items():
        w = w.detach().float()
        if w.dim() < 2:
            out[name] = w
            continue
        m2 = w.reshape(w.shape[0], -1)
        m, n = m2.shape
        r = max(1, int(round(rank_fraction * min(m, n))))
        if r * (m + n) >= m * n:
            out[name] = w
            continue
        u, s, vh = torch.linalg.svd(m2, full_matrices=False)
        out[f"{name}.U"] = (u[:, :r] * s[:r]).contiguous()
        out[f"{name}.V"] = vh[:r].contiguous()
        if w.dim() > 2:
            out[f"{name}.lrshape"] = torch.tensor(list(w.shape), dtype=torch.int32)
    return out


def defactorize(encoded: Params) -> Params:
    """Inverse of :func:`factorize`: dense matrices ``U @ V`` (reshaped where recorded)."""
    out: Params = {}
    for name, t in encoded.items():
        if name.endswith(".U"):
            base = name[:-2]
            w = t @ encoded[f"{base}.V"]
            if f"{base}.lrshape" in encoded:
                w = w.reshape([int(v) for v in encoded[f"{base}.lrshape"].tolist()])
            out[base] = w.contiguous()
        elif not name.endswith((".V", ".lrshape")):
            out[name] = t
    return out
