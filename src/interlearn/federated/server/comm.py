"""Communication accounting: the bytes a round moves, from the tensors actually sent.

Bytes are counted from each tensor's dtype (``numel * element_size``; sparse tensors count
their values and indices), so an int8- or top-k-compressed upload is counted as what it is.
Down = the global model (and server extras, e.g. SCAFFOLD's control variate) to every sampled
client (a simulated dropout fails after the download); up = every reporting client's update
and extras, as they left the client (after client-side steps such as compression).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from interlearn.federated.api import ClientResult

__all__ = ["tensor_bytes", "params_bytes", "download_bytes", "upload_bytes"]


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of one tensor as sent (dtype-aware; sparse = values + indices)."""
    if t.is_sparse:
        t = t.coalesce()
        return tensor_bytes(t.values()) + tensor_bytes(t.indices())
    return int(t.numel() * t.element_size())


def params_bytes(params: Mapping[str, torch.Tensor]) -> int:
    """Bytes of a tensor dict."""
    return sum(tensor_bytes(v) for v in params.values())


def download_bytes(params: Mapping[str, torch.Tensor], extras: Mapping[str, torch.Tensor], clients: int) -> int:
    """Server -> clients bytes of one round: (model + extras) for each of ``clients``."""
    return clients * (params_bytes(params) + params_bytes(extras))


def upload_bytes(results: Sequence[ClientResult]) -> int:
    """Clients -> server bytes of one round (updates + extras, as the clients sent them)."""
    return sum(params_bytes(r.update) + params_bytes(r.extras) for r in results)
