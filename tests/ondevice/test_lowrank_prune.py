"""Low-rank factors and magnitude pruning: exactness where expected, sparsity, storage."""

import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.ondevice import decode_sparse, defactorize, encode_sparse, encoded_bytes, factorize, prune_magnitude


def test_lowrank_recovers_a_low_rank_matrix_and_skips_small_ones():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 4, generator=g) @ torch.randn(4, 30, generator=g)  # rank 4
    enc = factorize({"w": w, "small": torch.randn(2, 2), "b": torch.randn(3)}, 0.25)  # rank round(0.25 * 30) = 8 >= 4
    assert {"w.U", "w.V", "small", "b"} == set(enc) and enc["w.U"].shape == (40, 8)
    dec = defactorize(enc)
    assert torch.allclose(dec["w"], w, atol=1e-4) and torch.equal(dec["small"], enc["small"])
    conv = torch.randn(8, 3, 3, 3)
    assert defactorize(factorize({"c": conv}, 1 / 9))["c"].shape == conv.shape
    with pytest.raises(ConfigError):
        factorize({"w": w}, 0.0)


def test_pruning_zeroes_the_smallest_weights_globally_and_stores_a_bitmask():
    g = torch.Generator().manual_seed(0)
    p = {
        "a": torch.randn(64, 64, generator=g),
        "b": 10 * torch.randn(64, 64, generator=g),
        "bias": torch.randn(64, generator=g),
    }
    q = prune_magnitude(p, 0.5)
    zeros = {k: float((q[k] == 0).float().mean()) for k in ("a", "b")}
    assert abs((zeros["a"] + zeros["b"]) / 2 - 0.5) < 0.01 and zeros["a"] > zeros["b"]  # one global threshold
    assert torch.equal(q["bias"], p["bias"])
    kept = q["b"] != 0
    assert torch.equal(q["b"][kept], p["b"][kept])
    enc = encode_sparse(q)
    dec = decode_sparse(enc)
    assert torch.equal(dec["a"] == 0, q["a"] == 0) and torch.allclose(
        dec["b"], q["b"], atol=float(q["b"].abs().max()) / 254 + 1e-6
    )
    assert encoded_bytes(enc) < 0.2 * encoded_bytes(p)
    with pytest.raises(ConfigError):
        prune_magnitude(p, 1.0)
