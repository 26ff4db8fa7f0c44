"""McMahan et al. 2017's MNIST CNN ("Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS, Section 3): two 5x5 convolutions (32 and 64 channels), each
followed by 2x2 max pooling, a 512-unit fully connected layer with ReLU and a softmax output
(1,663,370 parameters with padding 2, as in TensorFlow's 'same' convolutions).

Channel counts, the hidden width and the image size are parameters, so tests can use a tiny
version. Built from ``Conv2d``/``MaxPool2d``/``Linear`` only, so it vectorizes under ``vmap``.
"""

from __future__ import annotations

import torch
from torch import nn

from interlearn.errors import ConfigError

__all__ = ["mnist_cnn"]


def mnist_cnn(
    num_classes: int = 10,
    channels: tuple[int, int] = (32, 64),
    hidden: int = 512,
    image_size: int = 28,
    in_channels: int = 1,
    seed: int | None = None,
) -> nn.Sequential:
    """Build the CNN; input (N, in_channels, image_size, image_size) or flat (N, C*H*W).

    Args:
        num_classes: outputs.
        channels: the two convolutions' output channels.
        hidden: width of the fully connected layer.
        image_size: input height = width; must be divisible by 4 (two 2x2 poolings).
        in_channels: image channels.
        seed: when given, ``torch.manual_seed(seed)`` before creating the weights.

    Raises:
        ConfigError: a non-positive size or an image size not divisible by 4.

    Example:
        >>> mnist_cnn(channels=(4, 8), hidden=16, image_size=8)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    if min(num_classes, *channels, hidden, image_size, in_channels) < 1:
        raise ConfigError(
            f"mnist_cnn: sizes must be >= 1 (channels={channels}, hidden={hidden}, image_size={image_size})"
        )
    if image_size % 4:
        raise ConfigError(f"mnist_cnn: image_size={image_size} must be divisible by 4 (two 2x2 max-poolings)")
    if seed is not None:
        torch.manual_seed(seed)
    side = image_size // 4
    return nn.Sequential(
        _AsImage(in_channels, image_size),
        nn.Conv2d(in_channels, channels[0], 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels[0], channels[1], 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(channels[1] * side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


class _AsImage(nn.Module):
    """Reshape flat (N, C*H*W) inputs to (N, C, H, W); images pass through unchanged."""

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.shape = (channels, size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.dim() == 4 else x.reshape(x.shape[0], *self.shape)
