"""Measuring on-device variants: bytes, the chosen variant within budget, plot, latency."""

import pytest
import torch
from torch import nn
from torch.func import functional_call

from interlearn.errors import ConfigError
from interlearn.ondevice import ENCODINGS, Variant, choose, encode, latency_ms, measure_variants, plot_frontier


def test_every_encoding_round_trips_to_loadable_params():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    params = dict(model.state_dict())
    x = torch.randn(5, 64)
    ref = model(x)
    f32 = encode(params, "float32")[2]
    for name in ENCODINGS:
        _stored, dec, nbytes = encode(params, name)
        out = functional_call(model, dec, (x,))
        assert out.shape == ref.shape and torch.isfinite(out).all(), name
        assert nbytes <= f32 * 1.01, name
    assert torch.allclose(functional_call(model, encode(params, "int8")[1], (x,)), ref, atol=0.05)
    with pytest.raises(ConfigError, match="unknown encoding"):
        encode(params, "int3")


def test_measure_choose_and_plot(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(256, 16)
    x = torch.randn(200, 256)
    y = model(x).argmax(1)
    metric = lambda m, p: {"acc": float((functional_call(m, p, (x,)).argmax(1) == y).float().mean())}
    variants, decoded = measure_variants(
        {"global": (model, dict(model.state_dict()))}, ["float32", "int8", "int4-g32"], metric, "acc"
    )
    ref = variants[0]
    assert ref.accuracy == 1.0 and set(decoded) == {v.name for v in variants}
    best = choose(variants, ref.bytes // 4)
    assert best is not None and best.encoding == "int4-g32" and best.bytes <= ref.bytes // 4
    assert choose(variants, 10) is None
    assert (
        choose([Variant("a", "g", "x", 10, 0.5), Variant("b", "g", "y", 5, 0.5)], 20).name == "b"
    )  # ties: fewer bytes
    assert plot_frontier(variants, tmp_path / "f.png", ref, ref.bytes // 4).stat().st_size > 1000
    lat = latency_ms(lambda: model(x[:1]), repeats=5, warmup=1)
    assert lat["median_ms"] > 0 and lat["p90_ms"] >= lat["median_ms"]
