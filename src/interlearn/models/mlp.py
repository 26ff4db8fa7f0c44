"""Multilayer perceptrons for federated benchmarks.

``mnist_2nn`` is McMahan et al. 2017's "2NN" ("Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS, Section 3): 784 -> 200 -> 200 -> 10 with ReLUs,
199,210 parameters. ``digits_mlp`` is a tiny one for sklearn's 8x8 digits (tests, the tour).
All are plain ``nn.Sequential`` stacks of ``Linear``/``ReLU`` (vectorizable under ``vmap``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from interlearn.errors import ConfigError

__all__ = ["mlp", "mnist_2nn", "digits_mlp"]


def mlp(in_features: int, hidden: Sequence[int], num_classes: int, seed: int | None = None) -> nn.Sequential:
    """``in_features -> hidden[0] -> ... -> num_classes`` with ReLU between layers.

    Inputs of any shape (N, ...) are flattened to (N, in_features).

    Args:
        in_features: input size (784 for 28x28 images).
        hidden: hidden layer widths (may be empty: logistic regression).
        num_classes: output size.
        seed: when given, ``torch.manual_seed(seed)`` before creating the weights.

    Raises:
        ConfigError: a non-positive size.

    Example:
        >>> mlp(64, [32], 10)(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """
    sizes = [in_features, *hidden, num_classes]
    if any(int(s) < 1 for s in sizes):
        raise ConfigError(f"mlp sizes {sizes}: every layer size must be >= 1")
    if seed is not None:
        torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mnist_2nn(hidden: int = 200, num_classes: int = 10, seed: int | None = None) -> nn.Sequential:
    """McMahan et al. 2017's 2NN: 784-200-200-10 (``hidden`` changes both hidden widths)."""
    return mlp(784, [hidden, hidden], num_classes, seed)


def digits_mlp(hidden: int = 32, num_classes: int = 10, seed: int | None = None) -> nn.Sequential:
    """A tiny 64-``hidden``-10 MLP for sklearn's 8x8 digits (flat (N, 64) inputs)."""
    return mlp(64, [hidden], num_classes, seed)
