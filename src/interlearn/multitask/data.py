"""Multi-task datasets: MultiMNIST (Sener & Koltun 2018) and a multi-attribute digits task set.

MultiMNIST, as in Sener & Koltun 2018 ("Multi-Task Learning as Multi-Objective Optimization")
and Lin et al. 2019 ("Pareto Multi-Task Learning"), following Sabour et al. 2017: each image
overlays two MNIST digits on a 36x36 canvas, keeping the brighter pixel, and the canvas is resized
to ``size`` (28 as in those papers' code). Two layouts:

* ``"sener_koltun"`` (default): the layout of Sener & Koltun's published loader, which their
  reference numbers were measured on: the left digit at the top-left corner (0, 0), the right
  one 6 pixels down and right (6, 6), nearest-neighbour resize to 28x28.
* ``"random"``: each digit moved inwards from its corner by a random 0..``max_shift`` pixels
  (4 to 8 pixels apart with the default 2), bilinear anti-aliased resize: a harder variant.

Tasks: ``left`` (the top-left digit) and ``right`` (the bottom-right one). Generation is seeded and cached as ``.pt`` files in
the cache directory (``$INTERLEARN_CACHE``), keyed by every generation parameter.

The digits task set puts three attributes on scikit-learn's 8x8 digits: ``digit`` (10 classes),
``parity`` (odd/even) and ``ge5`` (digit >= 5): a multi-task problem that needs no download.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from interlearn.data.digits import load_digits
from interlearn.data.mnist import load_mnist
from interlearn.data.paths import cache_dir
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.multitask.targets import TaskSet, pack_targets
from interlearn.tasks import classification

__all__ = ["MULTIMNIST_TASKS", "DIGITS_TASKS", "make_multimnist", "load_multimnist", "load_digits_multitask"]

MULTIMNIST_TASKS = TaskSet((classification(10, "left"), classification(10, "right")))
DIGITS_TASKS = TaskSet((classification(10, "digit"), classification(2, "parity"), classification(2, "ge5")))

_CANVAS = 36
_SK_OFFSET = 6  # Sener & Koltun's loader: right digit at [6:34, 6:34]
LAYOUTS = ("sener_koltun", "random")


def make_multimnist(
    images: torch.Tensor,
    labels: torch.Tensor,
    n: int | None = None,
    size: int = 28,
    max_shift: int = 2,
    seed: int = 0,
    layout: str = "sener_koltun",
) -> TensorData:
    """Overlay pairs of digits into a MultiMNIST set.

    Args:
        images: (N, 1, 28, 28) MNIST images in [0, 1].
        labels: (N,) digit labels.
        n: examples to generate (default N); the left digit cycles through a seeded permutation,
            the right one is a different random image.
        size: output side (the 36x36 canvas is resized; 36 keeps it).
        max_shift: random offset range of each digit, in pixels (0..max_shift); ``"random"``
            layout only.
        seed: generation seed.
        layout: ``"sener_koltun"`` or ``"random"`` (see the module docstring).

    Returns:
        ``TensorData`` with (n, 1, size, size) images and targets packed for ``MULTIMNIST_TASKS``.
    """
    if images.dim() != 4 or images.shape[1:] != (1, 28, 28):
        raise ConfigError(f"images must be (N, 1, 28, 28) MNIST images, got {tuple(images.shape)}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r}: must be one of {LAYOUTS}")
    if not 0 <= max_shift <= _CANVAS - 28:
        raise ConfigError(f"max_shift={max_shift}: must be in [0, {_CANVAS - 28}]")
    if size < 8:
        raise ConfigError(f"size={size}: must be >= 8")
    N = images.shape[0]
    n = N if n is None else int(n)
    gen = torch.Generator().manual_seed(seed)
    left = torch.randperm(N, generator=gen).repeat(-(-n // N))[:n]
    right = (left + torch.randint(1, N, (n,), generator=gen)) % N  # never the same image
    canvas = torch.zeros(n, 1, _CANVAS, _CANVAS)
    if layout == "sener_koltun":
        o = _SK_OFFSET
        canvas[:, :, :28, :28] = images[left]
        canvas[:, :, o : o + 28, o : o + 28] = torch.maximum(canvas[:, :, o : o + 28, o : o + 28], images[right])
        if size != _CANVAS:
            canvas = F.interpolate(canvas, size=(size, size), mode="nearest")
    else:
        shifts = torch.randint(0, max_shift + 1, (n, 4), generator=gen)
        far = _CANVAS - 28 - max_shift  # the right digit sits in the bottom-right corner region
        for i in range(n):
            r1, c1, r2, c2 = shifts[i].tolist()
            canvas[i, :, r1 : r1 + 28, c1 : c1 + 28] = images[left[i]]
            a, b = far + r2, far + c2
            canvas[i, :, a : a + 28, b : b + 28] = torch.maximum(canvas[i, :, a : a + 28, b : b + 28], images[right[i]])
        if size != _CANVAS:
            canvas = F.interpolate(canvas, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    y = pack_targets({"left": labels[left], "right": labels[right]}, MULTIMNIST_TASKS)
    return TensorData(canvas.clamp(0, 1), y)


def load_multimnist(
    split: Literal["train", "test"] = "train",
    data_dir: str | Path | None = None,
    n: int | None = None,
    size: int = 28,
    max_shift: int = 2,
    seed: int = 0,
    cache: str | Path | None = None,
    layout: str = "sener_koltun",
) -> TensorData:
    """MultiMNIST built from MNIST ``split`` (seeded, cached).

    Args:
        split: which MNIST split the digits come from.
        data_dir: folder with ``mnist/`` (default ``$INTERLEARN_DATA``).
        n: examples (default: as many as the split has).
        size, max_shift, seed, layout: see :func:`make_multimnist`.
        cache: cache folder (default ``<cache_dir()>/multimnist``).

    Raises:
        DataError: MNIST files not found (the message says where it looked).
    """
    folder = Path(cache) if cache is not None else cache_dir() / "multimnist"
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r}: must be one of {LAYOUTS}")
    shift = max_shift if layout == "random" else 0
    key = hashlib.sha256(f"{split}-{n}-{size}-{shift}-{seed}-{layout}-v2".encode()).hexdigest()[:16]
    path = folder / f"multimnist-{split}-{key}.pt"
    if path.is_file():
        blob = torch.load(path, weights_only=True)
        return TensorData(blob["x"].float() / 255.0, blob["y"])
    mnist = load_mnist(split, data_dir)
    data = make_multimnist(mnist.x, mnist.y, n=n, size=size, max_shift=max_shift, seed=seed, layout=layout)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    x8 = (data.x * 255.0).round().to(torch.uint8)
    torch.save({"x": x8, "y": data.y}, tmp)
    os.replace(tmp, path)
    return TensorData(x8.float() / 255.0, data.y)


def load_digits_multitask(
    test_fraction: float = 0.3, seed: int = 0, image: bool = False
) -> tuple[TensorData, TensorData]:
    """The 8x8 digits with targets packed for ``DIGITS_TASKS`` (digit, parity, ge5)."""
    train, test = load_digits(test_fraction=test_fraction, seed=seed, image=image)

    def pack(d: TensorData) -> TensorData:
        return TensorData(d.x, pack_targets({"digit": d.y, "parity": d.y % 2, "ge5": (d.y >= 5).long()}, DIGITS_TASKS))

    return pack(train), pack(test)
