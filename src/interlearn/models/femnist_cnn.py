"""LEAF's FEMNIST CNN (Caldas et al. 2018, "LEAF: A Benchmark for Federated Settings").

Two 5x5 "same" convolutions (32 and 64 channels), each followed by ReLU and 2x2 max-pooling,
then a 2048-unit dense layer and a 62-way output: the model of LEAF's ``femnist/cnn.py``, also
used by McMahan et al. 2017 for MNIST (there with 10 classes and 512 dense units).
"""

from __future__ import annotations

import torch
from torch import nn

from interlearn.errors import ConfigError, ShapeError

__all__ = ["FemnistCNN", "femnist_cnn"]


class FemnistCNN(nn.Module):
    """(batch, 1, 28, 28) images -> (batch, num_classes) logits.

    Args:
        num_classes: output classes (62 for FEMNIST).
        dense: units of the hidden dense layer (2048 in LEAF).

    Example:
        >>> FemnistCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 62])
    """

    def __init__(self, num_classes: int = 62, dense: int = 2048) -> None:
        super().__init__()
        if num_classes < 2 or dense < 1:
            raise ConfigError(
                f"FemnistCNN(num_classes={num_classes}, dense={dense}): need num_classes >= 2 and dense >= 1"
            )
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(7 * 7 * 64, dense)
        self.head = nn.Linear(dense, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk: (batch, 1, 28, 28) -> (batch, dense)."""
        if x.dim() == 2 and x.shape[1] == 784:
            x = x.reshape(-1, 1, 28, 28)
        if x.shape[-3:] != (1, 28, 28):
            raise ShapeError(f"FemnistCNN expects (batch, 1, 28, 28) or (batch, 784) images, got {tuple(x.shape)}")
        h = self.pool(torch.relu(self.conv1(x)))  # (B, 32, 14, 14)
        h = self.pool(torch.relu(self.conv2(h)))  # (B, 64, 7, 7)
        return torch.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def femnist_cnn(num_classes: int = 62, dense: int = 2048) -> FemnistCNN:
    """LEAF's FEMNIST CNN."""
    return FemnistCNN(num_classes, dense)
