"""Checkpoints: tensors in safetensors, everything else in JSON, written atomically.

A checkpoint is a directory holding ``tensors.safetensors`` and ``state.json``. Both are
written to temporary names and renamed into place, so a run killed mid-write keeps the previous
good checkpoint intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from interlearn.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "has_checkpoint", "rng_state", "set_rng_state"]

TENSORS = "tensors.safetensors"
STATE = "state.json"


def save_checkpoint(directory: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write ``tensors`` (safetensors) and ``meta`` (JSON) into ``directory``.

    Args:
        directory: checkpoint folder (created if missing).
        tensors: flat name -> tensor mapping; tensors are made contiguous and moved to CPU.
        meta: JSON-serializable metadata (epoch, round, config, RNG state, ...).

    Returns:
        The checkpoint directory.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    tmp_t = d / (TENSORS + ".tmp")
    tmp_s = d / (STATE + ".tmp")
    save_file(flat, str(tmp_t))
    try:
        text = json.dumps(meta, indent=2, sort_keys=True)
    except TypeError as exc:
        raise CheckpointError(f"checkpoint metadata is not JSON-serializable: {exc}") from exc
    tmp_s.write_text(text)
    # state.json is renamed last: a checkpoint is complete only when its state.json exists.
    os.replace(tmp_t, d / TENSORS)
    os.replace(tmp_s, d / STATE)
    return d


def has_checkpoint(directory: str | Path) -> bool:
    """True when ``directory`` holds a complete checkpoint."""
    d = Path(directory)
    return (d / TENSORS).is_file() and (d / STATE).is_file()


def load_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: when the folder has no complete checkpoint or a file is corrupt.
    """
    d = Path(directory)
    if not has_checkpoint(d):
        raise CheckpointError(
            f"no checkpoint in {d}: expected {TENSORS} and {STATE}; "
            "start without resume or point to the run folder's checkpoint directory"
        )
    try:
        tensors = load_file(str(d / TENSORS))
        meta = json.loads((d / STATE).read_text())
    except Exception as exc:  # corrupt file: say which
        raise CheckpointError(f"checkpoint in {d} is unreadable: {exc}") from exc
    return tensors, meta


def rng_state() -> dict[str, torch.Tensor]:
    """The torch CPU (and CUDA, when present) RNG states as tensors, for a checkpoint."""
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda{i}"] = s
    return out


def set_rng_state(tensors: dict[str, torch.Tensor]) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"].to(torch.uint8))
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
        if states:
            torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in states])
