"""MNIST-style images into the embedded digits' 8x8 block-count format."""

import pytest
import torch

from interlearn.data.optdigits import to_optdigits
from interlearn.errors import ShapeError


def _bar(top: int, left: int, height: int = 12, width: int = 4) -> torch.Tensor:
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, top : top + height, left : left + width] = 1.0
    return x


def test_values_are_block_counts_in_the_digits_scale():
    x = torch.rand(5, 1, 28, 28)
    out = to_optdigits(x)
    assert out.shape == (5, 1, 8, 8)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out * 16, (out * 16).round())  # counts of 16 pixels


def test_the_digit_fills_the_frame_wherever_it_sits():
    a, b = to_optdigits(_bar(2, 3)), to_optdigits(_bar(14, 20))
    assert torch.equal(a, b)  # the bounding-box crop removes the position
    rows = a[0, 0].sum(1) > 0
    assert rows.all()  # the longer (vertical) side spans the whole frame


def test_the_aspect_ratio_is_kept():
    out = to_optdigits(_bar(8, 8, height=12, width=4))
    cols = out[0, 0].sum(0) > 0
    assert 1 <= int(cols.sum()) <= 4  # a thin bar stays thin, centred


def test_an_empty_image_gives_zeros_and_three_dims_are_accepted():
    out = to_optdigits(torch.zeros(2, 28, 28))
    assert out.shape == (2, 1, 8, 8) and out.abs().sum() == 0


def test_colour_images_are_refused():
    with pytest.raises(ShapeError, match="grey"):
        to_optdigits(torch.zeros(2, 3, 28, 28))
