"""Shared pieces for the tool workers of benchmarks/fl_matrix.py (interlearn, Flower, pfl-research).

The workers run in their own interpreters (pfl lives in a separate venv, .venv-bench), so this
module imports only the standard library, NumPy and torch: never ``interlearn``. The prep step
of fl_matrix.py writes, into one folder per workload, everything a worker needs to train on
exactly the same problem: the training and test arrays, the client partition, the cohort
schedule (which clients train in which round), the initial weights (in the naming of the
models below) and the hyper-parameters. Workers write their final weights and per-round
timestamps back; fl_matrix.py scores every tool with one function.

The models are the plain PyTorch modules a user of Flower or pfl would write: McMahan et al.
2017's MNIST 2NN, LEAF's FEMNIST CNN and the Shakespeare character LSTM (``nn.LSTM``; its
recurrent bias is zero and frozen so that it is the same function class as interlearn's
``CharLSTM``, which has one bias per gate).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MODELS", "build_model", "load_prep", "write_result", "accuracy", "Clock", "single_thread", "loss_fn"]


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


class FemnistCNN(nn.Module):
    """LEAF's FEMNIST CNN: two 5x5 convolutions (32, 64) with 2x2 max-pooling, 2048 dense, 62 out."""

    def __init__(self, num_classes: int = 62) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc = nn.Linear(7 * 7 * 64, 2048)
        self.head = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 28, 28)
        h = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = F.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.head(torch.relu(self.fc(h.flatten(1))))


class CharLSTM(nn.Module):
    """Shakespeare next-character model: 8-dim embedding, 2 x 256 LSTM, logits at every position
    as (batch, vocab, time)."""

    def __init__(self, vocab: int, hidden: int = 256) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.lstm = nn.LSTM(8, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, vocab)
        for k in range(2):  # interlearn's CharLSTM has one bias per gate: the same function class
            getattr(self.lstm, f"bias_hh_l{k}").data.zero_()
            getattr(self.lstm, f"bias_hh_l{k}").requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embed(x.long()))
        return self.head(h).transpose(1, 2)


MODELS = {"2nn": TwoNN, "femnist_cnn": FemnistCNN, "char_lstm": CharLSTM}


def build_model(cfg: dict) -> nn.Module:
    """The workload's model holding the prep's initial weights."""
    model = MODELS[cfg["model"]](**cfg.get("model_kwargs", {}))
    model.load_state_dict(cfg["init"])
    return model


def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ((B, C) with (B,) or (B, C, T) with (B, T))."""
    return F.cross_entropy(logits, y.long())


def load_prep(prep: str | Path) -> dict:
    """Read what fl_matrix.py's prep step wrote for one workload."""
    prep = Path(prep)
    cfg = json.loads((prep / "config.json").read_text())
    arrays = np.load(prep / "partition.npz")
    cfg["partition"] = [arrays[f"c{i}"] for i in range(cfg["num_clients"])]
    cfg["schedule"] = arrays["schedule"]  # (rounds, cohort) client ids
    cfg["init"] = torch.load(prep / "init.pt")
    cfg["prep"] = str(prep.resolve())
    return cfg


def train_arrays(cfg: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The training inputs (as the model takes them) and targets."""
    prep = Path(cfg["prep"])
    x = torch.from_numpy(np.load(prep / "train_x.npy"))
    y = torch.from_numpy(np.load(prep / "train_y.npy")).long()
    if cfg.get("scale_255"):
        x = x.float().div_(255.0)
    return x, y


def test_arrays(prep: str | Path, cfg: dict) -> tuple[torch.Tensor, torch.Tensor]:
    prep = Path(prep)
    x = torch.from_numpy(np.load(prep / "test_x.npy"))
    y = torch.from_numpy(np.load(prep / "test_y.npy")).long()
    if cfg.get("scale_255"):
        x = x.float().div_(255.0)
    return x, y


def write_result(
    out: str | Path, state: dict[str, torch.Tensor], round_end_times: list[float], start: float, **extra: object
) -> None:
    """Save the final weights (state dict in this module's naming) and the run's timeline."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().clone() for k, v in state.items()}, out / "final.pt")
    (out / "timeline.json").write_text(json.dumps({"start": start, "round_end": round_end_times, **extra}))


@torch.no_grad()
def accuracy(cfg: dict, state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Test accuracy of the workload's model holding ``state`` (every position for sequences)."""
    model = MODELS[cfg["model"]](**cfg.get("model_kwargs", {}))
    model.load_state_dict(state)
    model.eval()
    correct = total = 0
    for s in range(0, len(x), batch):
        pred = model(x[s : s + batch]).argmax(1)
        correct += int((pred == y[s : s + batch]).sum())
        total += int(y[s : s + batch].numel())
    return correct / max(total, 1)


class Clock:
    """Timestamps: wall clock (``time.time()``, comparable with the orchestrator's launch time
    across processes) and this process's CPU time."""

    @staticmethod
    def now() -> float:
        return time.time()

    @staticmethod
    def cpu() -> float:
        return time.process_time()


def single_thread() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
