"""Shared set-up of the federated protection benchmarks (privacy, robustness, secure
aggregation, compression): MNIST loading, an IID population, a small MLP, JSON output."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)

from interlearn.data import load_mnist  # noqa: E402
from interlearn.federated import Population  # noqa: E402
from interlearn.federated.partition import iid  # noqa: E402


def parser(doc: str, data: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc)
    if data:
        p.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"), help="folder holding mnist/")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--seed", type=int, default=0)
    return p


def mnist(data_dir: str | None, train_size: int | None, num_clients: int, seed: int):
    """MNIST (flattened) split IID over ``num_clients``; the full 10k test set."""
    tr = load_mnist("train", data_dir, flatten=True)
    te = load_mnist("test", data_dir, flatten=True)
    x, y = tr.x, tr.y
    if train_size is not None and train_size < len(x):
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:train_size]
        x, y = x[keep], y[keep]
    return x, y, iid(len(x), num_clients, seed=seed), (te.x, te.y)


def mlp(hidden: int, seed: int, inputs: int = 784, classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))


def population(x: torch.Tensor, y: torch.Tensor, parts) -> Population:
    return Population(x, y, parts)


def write(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")
