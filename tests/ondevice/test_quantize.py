"""Weight-only int8/int4 encodings: round trips, error bounds, measured bytes."""

import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.models.char_lstm import char_lstm, ondevice_char_lstm
from interlearn.ondevice import dequantize_weights, encoded_bytes, quantize_weights
from interlearn.ondevice.quantize import model_bytes, save_model


def _params():
    g = torch.Generator().manual_seed(0)
    return {
        "a": torch.randn(37, 19, generator=g),
        "b": torch.randn(5, generator=g),
        "c": torch.randn(4, 3, 5, generator=g),
    }


@pytest.mark.parametrize("bits,group", [(8, None), (8, 16), (4, None), (4, 8), (4, 32)])
def test_round_trip_error_is_within_half_a_step(bits, group):
    p = _params()
    e = quantize_weights(p, bits, group)
    d = dequantize_weights(e)
    assert set(d) == set(p) and torch.equal(d["b"], p["b"])  # vectors stay exact
    qmax = 127 if bits == 8 else 7
    for k in ("a", "c"):
        assert d[k].shape == p[k].shape
        rows = p[k].reshape(p[k].shape[0], -1)
        step = rows.abs().amax(1, keepdim=True) / qmax  # the coarsest scale of a row
        assert ((d[k].reshape(rows.shape) - rows).abs() <= step / 2 + 1e-4 + (1e-3 if bits == 4 else 0) * step).all()


def test_bytes_shrink_with_bits():
    p = {"w": torch.randn(256, 256)}
    f32 = encoded_bytes(p)
    b8, b4 = encoded_bytes(quantize_weights(p, 8)), encoded_bytes(quantize_weights(p, 4, 32))
    assert 0.24 < b8 / f32 < 0.27 and 0.13 < b4 / f32 < 0.16
    with pytest.raises(ConfigError):
        quantize_weights(p, 3)


def test_model_bytes_are_the_saved_file_and_int8_is_four_times_smaller(tmp_path):
    m = ondevice_char_lstm(12, hidden=32)
    full, small = model_bytes(m), model_bytes(m, int8=True)
    assert small < full / 3
    assert save_model(m, tmp_path / "m.safetensors", int8=True) == small == (tmp_path / "m.safetensors").stat().st_size
    big = char_lstm(80)
    assert model_bytes(big) > 4 * sum(p.numel() for p in big.parameters())  # float32 + header
