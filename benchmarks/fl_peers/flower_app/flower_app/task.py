"""Model and data of the workload (quickstart layout: ``task.py``), read from fl_matrix.py's prep
folder; the benchmarks' shared definitions live in ``common.py`` one folder up."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/fl_peers: common.py

from common import build_model, load_prep, loss_fn, train_arrays

_CACHE: dict[str, object] = {}


def load(prep: str) -> dict:
    """The workload (config, training arrays), loaded once per process and cached, as Flower's
    quickstart caches its ``FederatedDataset``."""
    if _CACHE.get("prep") != prep:
        cfg = load_prep(prep)
        x, y = train_arrays(cfg)
        _CACHE.update(prep=prep, cfg=cfg, x=x, y=y)
    return _CACHE


def partition(prep: str, pid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Client ``pid``'s training data."""
    c = load(prep)
    idx = torch.from_numpy(c["cfg"]["partition"][pid])  # type: ignore[index]
    return c["x"][idx], c["y"][idx]  # type: ignore[index]


__all__ = ["build_model", "load", "loss_fn", "partition"]
