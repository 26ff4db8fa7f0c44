"""A small CNN for 28x28 (MNIST) and 8x8 (sklearn digits) images, as a flat ``nn.Sequential``.

Every layer is a named top-level child, so a transfer "cut" is just an index into the sequence:
``model[:k]`` is the part kept (and frozen), ``model[k:]`` the part replaced
(:func:`interlearn.transfer.cut_points`). Two conv blocks (conv -> ReLU -> 2x2 max-pool), then
a hidden fully connected layer and the classifier, in the spirit of LeNet-5 (LeCun et al. 1998).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from interlearn.errors import ConfigError

__all__ = ["small_cnn"]


def small_cnn(
    num_classes: int = 10,
    image_size: int = 28,
    in_channels: int = 1,
    channels: tuple[int, int] = (16, 32),
    hidden: int = 128,
    dropout: float = 0.0,
    seed: int | None = None,
) -> nn.Sequential:
    """Build the small CNN.

    Layout (top-level names): ``conv1 act1 pool1 conv2 act2 pool2 flatten fc1 act3 [drop] fc2``.
    With 28x28 inputs the flattened features are ``channels[1] * 7 * 7``; with 8x8 inputs
    ``channels[1] * 2 * 2``.

    Args:
        num_classes: outputs of the last layer.
        image_size: input height = width; must be divisible by 4 (28, 8, 32 ...).
        in_channels: input channels (1 for grey images).
        channels: output channels of the two conv blocks.
        hidden: width of the hidden fully connected layer.
        dropout: dropout before the classifier (0 = none).
        seed: seeds the initial weights when given.

    Returns:
        An ``nn.Sequential`` taking ``(N, in_channels, image_size, image_size)`` images.

    Raises:
        ConfigError: a size that does not fit (non-positive, or ``image_size`` not divisible by 4).

    Example:
        >>> model = small_cnn(5, image_size=8)
        >>> model(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 5])
    """
    _check_sizes(num_classes, image_size, in_channels, channels, hidden, dropout)
    if seed is not None:
        torch.manual_seed(seed)
    c1, c2 = channels
    side = image_size // 4
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(in_channels, c1, 3, padding=1)),
        ("act1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 3, padding=1)),
        ("act2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(c2 * side * side, hidden)),
        ("act3", nn.ReLU()),
    ]
    if dropout:
        layers.append(("drop", nn.Dropout(dropout)))
    layers.append(("fc2", nn.Linear(hidden, num_classes)))
    return nn.Sequential(OrderedDict(layers))


def _check_sizes(
    num_classes: int, image_size: int, in_channels: int, channels: tuple[int, int], hidden: int, dropout: float
) -> None:
    """:func:`small_cnn`'s sizes, checked before any layer is built."""
    if num_classes < 1:
        raise ConfigError(f"num_classes={num_classes}: must be >= 1")
    if image_size < 4 or image_size % 4:
        raise ConfigError(f"image_size={image_size}: must be a multiple of 4 (two 2x2 poolings), e.g. 28 or 8")
    if in_channels < 1 or hidden < 1 or len(channels) != 2 or min(channels) < 1:
        raise ConfigError(
            f"in_channels={in_channels}, channels={channels}, hidden={hidden}: all sizes must be >= 1 (channels has 2 entries)"
        )
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout={dropout}: must be in [0, 1)")
