"""Compression: stochastic 8/4-bit quantization, top-k with error feedback, bytes up."""

from __future__ import annotations

import pytest
import torch
from protection_helpers import ctx, result, run_steps

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientResult
from interlearn.federated.client.hooks import client_context, merge_client_context
from interlearn.federated.protections.compression import CompressUpdates, densify, dequantize, quantize, topk_sparsify
from interlearn.federated.server.comm import upload_bytes


@pytest.mark.parametrize("bits", [8, 4])
def test_quantization_error_bounded_and_unbiased(bits):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1001, generator=g)
    p = quantize(x, bits, g)
    y = dequantize(p, x.numel(), bits)
    step = float(x.max() - x.min()) / (2**bits - 1)
    assert float((y - x).abs().max()) <= step + 1e-6
    assert p["q"].dtype == torch.uint8
    assert p["q"].numel() == (1001 if bits == 8 else 501)  # two codes per byte at 4 bits
    mean = torch.stack([dequantize(quantize(x, bits, g), x.numel(), bits) for _ in range(400)]).mean(0)
    assert float((mean - x).abs().max()) < 0.25 * step  # E[Q(x)] = x


def test_constant_tensor_quantizes_exactly():
    x = torch.full((7,), 0.5)
    assert torch.equal(dequantize(quantize(x, 4, torch.Generator()), 7, 4), x)


def test_topk_keeps_the_largest():
    x = torch.tensor([0.1, -5.0, 0.2, 3.0, -0.05, 0.0, 1.0, 0.3, -0.2, 0.01])
    p = topk_sparsify(x, 0.2)
    assert sorted(p["idx"].tolist()) == [1, 3]
    assert torch.equal(densify(p, 10), torch.tensor([0, -5.0, 0, 3.0, 0, 0, 0, 0, 0, 0]))


@pytest.mark.parametrize("method,ratio_max", [("q8", 0.27), ("q4", 0.15), ("topk", 0.11)])
def test_step_round_trip_and_bytes(method, ratio_max):
    big = [ClientResult(i, {"w": torch.randn(200, 50), "b": torch.randn(50)}, 1.0) for i in range(3)]
    step = CompressUpdates(method, ratio=0.05)
    c = ctx()
    sent = []
    for r in big:  # each client with its own context (own memory), notes merged as the round loop does
        cc = client_context(0, 0, r.client_id)
        sent.append(step.client(r, cc))
        merge_client_context(c, cc.notes, cc.log)
    assert upload_bytes(sent) == c.notes["compress/bytes_up"]  # what the round loop counts
    assert c.notes["compress/bytes_dense"] == 3 * (200 * 50 + 50) * 4
    assert c.notes["compress/bytes_up"] / c.notes["compress/bytes_dense"] < ratio_max
    back = step.server(sent, c)
    for r, b in zip(big, back):
        assert b.update.keys() == r.update.keys() and b.update["w"].shape == (200, 50)
        rel = float((b.update["w"] - r.update["w"]).norm() / r.update["w"].norm())
        assert rel < {"q8": 0.05, "q4": 0.4, "topk": 1.0}[method]


def test_error_feedback_sends_everything_eventually():
    """With error feedback the sum of what was sent tracks the sum of the true updates:
    the gap is exactly the residual, which stays bounded."""
    step = CompressUpdates("topk", ratio=0.1)
    g = torch.Generator().manual_seed(0)
    true_sum = torch.zeros(100)
    sent_sum = torch.zeros(100)
    memory: dict = {}  # the client's memory, carried across rounds as the round loop does
    for rnd in range(60):
        u = torch.randn(100, generator=g)
        c = ctx(rnd)
        c.memory = memory
        out = step.server([step.client(ClientResult(7, {"w": u}, 1.0), c)], c)
        memory = c.memory
        true_sum += u
        sent_sum += out[0].update["w"]
    residual = memory["compress/residual/w"]
    assert torch.allclose(true_sum - sent_sum, residual, atol=1e-4)
    assert float(residual.norm()) < 0.5 * float(true_sum.norm()) + 30
    # without error feedback the gap grows with the rounds
    plain = CompressUpdates("topk", ratio=0.1, error_feedback=False)
    assert plain.error_feedback is False


def test_malformed_payload_is_rejected_and_round_goes_on():
    step = CompressUpdates("q8")
    c = ctx()
    good = step.client(result(0), c)
    bad = ClientResult(1, {"w": torch.zeros(3)}, 1.0)  # not a payload at all
    out = step.server([good, bad], c)
    assert [r.client_id for r in out] == [0]
    assert c.notes["rejected"][0]["client"] == 1 and "malformed" in c.notes["rejected"][0]["reason"]


def test_unknown_compressor():
    with pytest.raises(ConfigError, match="did you mean"):
        CompressUpdates("q16")
    with pytest.raises(ConfigError, match="ratio"):
        CompressUpdates("topk", ratio=0.0)


def test_composes_with_clipping():
    from interlearn.federated.protections.privacy import ClipUpdates, global_norm

    out = run_steps([ClipUpdates(0.5), CompressUpdates("q8")], [result(i, scale=5.0) for i in range(3)], ctx())
    assert all(global_norm(r.update) < 0.6 for r in out)
