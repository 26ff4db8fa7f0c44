"""Domain nouns shared across the package."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import torch

Params: TypeAlias = dict[str, torch.Tensor]
"""A model's named tensors (parameters, and buffers where they matter). The currency of
federated code and of every pure algorithm in interlearn."""

ClientId: TypeAlias = int
"""Index of a client in a federated population."""

LossFn: TypeAlias = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(outputs, targets) -> scalar``: a mean over the batch's examples."""

__all__ = ["Params", "ClientId", "LossFn"]
