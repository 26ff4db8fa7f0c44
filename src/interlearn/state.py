"""Flatten nested training state (optimizer/scheduler ``state_dict``s) into tensors + JSON.

safetensors stores only flat tensor maps; the structure and scalars go to JSON. Tensors are
replaced in the skeleton by ``{"__tensor__": key}``.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["flatten_state", "unflatten_state"]


def flatten_state(obj: Any, prefix: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``obj`` into a JSON-able skeleton and a ``{key: tensor}`` map."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, path: str) -> Any:
        if isinstance(o, torch.Tensor):
            tensors[path] = o
            return {"__tensor__": path}
        if isinstance(o, dict):
            return {
                "__dict__": [[walk(k, f"{path}.k{i}"), walk(v, f"{path}.{i}")] for i, (k, v) in enumerate(o.items())]
            }
        if isinstance(o, (list, tuple)):
            return {"__list__": [walk(v, f"{path}.{i}") for i, v in enumerate(o)], "tuple": isinstance(o, tuple)}
        if isinstance(o, float) and (o != o or o in (float("inf"), float("-inf"))):
            return {"__float__": repr(o)}
        return o

    return walk(obj, prefix), tensors


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__dict__" in skeleton:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            items = [unflatten_state(v, tensors) for v in skeleton["__list__"]]
            return tuple(items) if skeleton.get("tuple") else items
        if "__float__" in skeleton:
            return float(skeleton["__float__"])
    return skeleton
