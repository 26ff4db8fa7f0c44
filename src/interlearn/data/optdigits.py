"""Any digit images into the format of scikit-learn's embedded 8x8 digits (UCI "optdigits").

scikit-learn's digits are the UCI optdigits set (Alpaydin & Kaynak 1998): each handwritten
digit was scaled to fill a 32x32 bitmap, and the bitmap was counted in non-overlapping 4x4
blocks, so each of the 8x8 values is 0-16. :func:`to_optdigits` does the same to grey images
such as MNIST's: crop each digit to the bounding box of its ink, scale it into 32x32 keeping
its aspect ratio (the longer side fills the frame, the digit centred), binarize, and count the
4x4 blocks. Divided by 16, the result is on the scale of :func:`interlearn.data.load_digits`.

The bounding-box step matters: MNIST digits sit in a 20x20 box inside a 28x28 frame, and
without it a base trained on MNIST reads the embedded digits much worse (DESIGN.md, measured
facts).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from interlearn.errors import ShapeError

__all__ = ["to_optdigits"]

FRAME, BLOCK = 32, 4


def to_optdigits(images: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """Grey digit images (N, 1, H, W) or (N, H, W), ink bright, in [0, 1] -> (N, 1, 8, 8) in [0, 1].

    Args:
        images: the digits; ink is the bright part (MNIST's convention).
        threshold: ink level for the bounding box and for binarizing the 32x32 bitmap. The
            default 0.3 gives MNIST the embedded digits' mean ink (0.31 of the 8x8 range vs
            0.31; 0.5 gives 0.26 and thinner strokes).

    Returns:
        Block counts divided by 16, as :func:`interlearn.data.load_digits` gives with ``image=True``.
        An image without ink becomes all zeros.

    Raises:
        ShapeError: not a batch of single-channel images.

    Example:
        >>> x = torch.zeros(1, 1, 28, 28)
        >>> x[0, 0, 4:24, 12:16] = 1.0  # a tall bar
        >>> to_optdigits(x).shape
        torch.Size([1, 1, 8, 8])
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] != 1:
        raise ShapeError(
            f"images of shape {tuple(images.shape)}: expected (N, 1, H, W) or (N, H, W) grey images; "
            "convert colour images to grey first"
        )
    x = images.float()
    n, _, h, w = x.shape
    ink = x[:, 0] > threshold  # (N, H, W)
    rows, cols = ink.any(2), ink.any(1)  # (N, H), (N, W)
    empty = ~rows.any(1)
    r_idx, c_idx = torch.arange(h), torch.arange(w)
    big = torch.iinfo(torch.long).max
    r0 = torch.where(rows, r_idx, big).min(1).values
    r1 = torch.where(rows, r_idx, -1).max(1).values + 1
    c0 = torch.where(cols, c_idx, big).min(1).values
    c1 = torch.where(cols, c_idx, -1).max(1).values + 1
    r0, r1 = torch.where(empty, 0, r0).float(), torch.where(empty, h, r1).float()
    c0, c1 = torch.where(empty, 0, c0).float(), torch.where(empty, w, c1).float()
    side = torch.maximum(r1 - r0, c1 - c0)  # the longer side fills the frame
    cy, cx = (r0 + r1) / 2, (c0 + c1) / 2
    # affine_grid maps the output's [-1, 1] to input coordinates (align_corners=False: pixel edges)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = side / w, 2 * cx / w - 1
    theta[:, 1, 1], theta[:, 1, 2] = side / h, 2 * cy / h - 1
    grid = F.affine_grid(theta, [n, 1, FRAME, FRAME], align_corners=False)
    bitmap = (F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > threshold).float()
    k = FRAME // BLOCK
    counts = bitmap.reshape(n, 1, k, BLOCK, k, BLOCK).sum((3, 5))  # (N, 1, 8, 8), 0..16
    return torch.where(empty[:, None, None, None], 0.0, counts / (BLOCK * BLOCK))
