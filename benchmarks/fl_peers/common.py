"""Shared pieces for the peer workers of benchmarks/fl_speed.py (Flower, pfl-research).

The workers run in their own interpreters (pfl lives in a separate venv, .venv-bench), so this
module imports only the standard library, NumPy and torch: never ``interlearn``. The prep step
of fl_speed.py writes, into one folder, everything a worker needs to train on exactly the same
problem as interlearn: the client partition (indices into MNIST train), the cohort schedule
(which clients train in which round) and the initial weights of the 2NN. Workers write their
final weights and per-round timestamps back; fl_speed.py scores every tool with one function.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["read_mnist", "TwoNN", "load_prep", "write_result", "accuracy", "Clock"]


def _read_idx(path: Path) -> np.ndarray:
    # A 10-line IDX reader instead of interlearn.data.mnist: peer venvs cannot import interlearn.
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_mnist(data_dir: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` as (N, 784) float32 in [0, 1] and int64 labels (same scaling as interlearn)."""
    root = Path(data_dir)
    root = root / "mnist" if (root / "mnist").is_dir() else root
    prefix = "train" if split == "train" else "t10k"
    x = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 784) / 255.0
    y = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


class TwoNN(nn.Module):
    """McMahan et al. 2017's MNIST 2NN: 784-200-200-10 with ReLU (199,210 parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 200)
        self.fc2 = nn.Linear(200, 200)
        self.fc3 = nn.Linear(200, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def load_prep(prep: str | Path) -> dict:
    """Read what fl_speed.py's prep step wrote: config, partition, schedule, initial weights."""
    prep = Path(prep)
    cfg = json.loads((prep / "config.json").read_text())
    arrays = np.load(prep / "partition.npz")
    cfg["partition"] = [arrays[f"c{i}"] for i in range(cfg["num_clients"])]
    cfg["schedule"] = arrays["schedule"]  # (rounds, cohort) client ids
    cfg["init"] = torch.load(prep / "init.pt")  # list of tensors in TwoNN parameter order
    return cfg


def init_model(cfg: dict) -> TwoNN:
    """A TwoNN holding the prep's initial weights (loaded by position)."""
    model = TwoNN()
    with torch.no_grad():
        for p, t in zip(model.parameters(), cfg["init"], strict=True):
            p.copy_(t.reshape(p.shape))
    return model


def write_result(out: str | Path, params: list[torch.Tensor], round_end_times: list[float], start: float, **extra: object) -> None:
    """Save final weights (by position) and the wall-clock timeline of the run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save([p.detach().cpu().float().clone() for p in params], out / "final.pt")
    (out / "timeline.json").write_text(json.dumps({"start": start, "round_end": round_end_times, **extra}))


def accuracy(params: list[torch.Tensor], x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of a TwoNN holding ``params`` (by position)."""
    model = TwoNN()
    with torch.no_grad():
        for p, t in zip(model.parameters(), params, strict=True):
            p.copy_(t.reshape(p.shape))
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


class Clock:
    """Timestamps: wall clock (``time.time()``, comparable with the orchestrator's launch time
    across processes) and this process's CPU time (robust to other load on a shared machine)."""

    @staticmethod
    def now() -> float:
        return time.time()

    @staticmethod
    def cpu() -> float:
        return time.process_time()


def single_thread() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
