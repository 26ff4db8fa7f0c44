"""Moving parameter dictionaries in and out of a module.

The global model of a federated run is ``model_params(model)``: every floating-point entry of
the module's ``state_dict`` (parameters and float buffers such as BatchNorm running
statistics, which FedAvg averages too). Integer buffers (``num_batches_tracked``) stay in the
module and are not exchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from interlearn.errors import ShapeError
from interlearn.types import Params

__all__ = ["model_params", "load_params", "trainable_names", "clone_params"]


def model_params(model: nn.Module) -> Params:
    """Detached copies of the model's floating-point state (parameters and float buffers)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def clone_params(params: Params) -> Params:
    """Detached copies of ``params``."""
    return {k: v.detach().clone() for k, v in params.items()}


@torch.no_grad()
def load_params(model: nn.Module, params: Params) -> None:
    """Copy ``params`` into the model's tensors in place (keys must exist, shapes must match).

    Raises:
        ShapeError: a key the model does not have, or a shape mismatch.
    """
    state = model.state_dict(keep_vars=True)
    for k, v in params.items():
        if k not in state:
            raise ShapeError(f"params key {k!r} is not in the model (model keys start with {list(state)[:3]})")
        t = state[k]
        if t.shape != v.shape:
            raise ShapeError(f"params {k!r} has shape {tuple(v.shape)}, the model expects {tuple(t.shape)}")
        t.copy_(v)


def trainable_names(model: nn.Module) -> list[str]:
    """Names of parameters with ``requires_grad`` (the ones local training changes)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]
