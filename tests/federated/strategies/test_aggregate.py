import pytest
import torch
from fl_helpers import result

from interlearn.errors import RoundSkipped, UpdateRejected
from interlearn.federated.strategies.aggregate import WeightedMean, weighted_mean


def test_equal_weights_is_plain_mean():
    g = torch.Generator().manual_seed(1)
    ups = [{"w": torch.randn(4, 3, generator=g), "b": torch.randn(3, generator=g)} for _ in range(5)]
    out = weighted_mean(ups, [7.0] * 5)
    for k in ("w", "b"):
        torch.testing.assert_close(out[k], torch.stack([u[k] for u in ups]).mean(0))


def test_weighted_by_examples():
    out = weighted_mean([{"w": torch.ones(2)}, {"w": torch.zeros(2)}], [3, 1])
    torch.testing.assert_close(out["w"], torch.full((2,), 0.75))


def test_dtype_kept_and_float64_accumulated():
    out = weighted_mean([{"w": torch.ones(2, dtype=torch.float64)}], [1.0])
    assert out["w"].dtype == torch.float64
    out16 = weighted_mean(
        [{"w": torch.ones(2, dtype=torch.bfloat16)}, {"w": torch.zeros(2, dtype=torch.bfloat16)}], [1, 1]
    )
    assert out16["w"].dtype == torch.bfloat16 and float(out16["w"][0]) == 0.5


def test_errors():
    with pytest.raises(RoundSkipped):
        weighted_mean([], [])
    with pytest.raises(RoundSkipped):
        weighted_mean([{"w": torch.ones(1)}], [0.0])
    with pytest.raises(UpdateRejected, match="negative"):
        weighted_mean([{"w": torch.ones(1)}], [-1.0])
    with pytest.raises(UpdateRejected, match="shape"):
        weighted_mean([{"w": torch.ones(1)}, {"w": torch.ones(2)}], [1, 1])
    with pytest.raises(UpdateRejected, match="keys"):
        weighted_mean([{"w": torch.ones(1)}, {"v": torch.ones(1)}], [1, 1])


def test_weighted_mean_aggregator_uniform():
    rs = [result(0, {"w": torch.ones(1)}, 9.0), result(1, {"w": torch.zeros(1)}, 1.0)]
    assert float(WeightedMean()(rs)["w"]) == pytest.approx(0.9)
    assert float(WeightedMean(uniform=True)(rs)["w"]) == pytest.approx(0.5)
