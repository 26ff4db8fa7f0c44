"""Evaluation of a global model: on a held-out test set, and on every client's own data.

Per-client evaluation runs on the client side of the boundary (each client scores the global
model on its own examples and reports only the numbers); the distribution of client accuracies
is what federated papers report next to the global accuracy (e.g. Li et al. 2020, "Fair
Resource Allocation in Federated Learning", ICLR).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.errors import DataError
from interlearn.federated.api import ClientPopulation
from interlearn.federated.params import load_params
from interlearn.types import ClientId, LossFn, Params

__all__ = ["evaluate_params", "params_accuracy", "client_accuracies", "summarize_accuracies"]


@torch.no_grad()
def evaluate_params(
    model: nn.Module,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 1024,
    loss: LossFn | None = None,
) -> dict[str, float]:
    """Accuracy and mean loss of ``params`` on ``(x, y)`` (classification; the class dimension
    is dim 1, so next-token outputs (B, V, T) with (B, T) targets work too).

    Returns:
        ``{"accuracy": ..., "loss": ..., "examples": ...}``.
    """
    loss_fn = loss if loss is not None else (lambda o, t: F.cross_entropy(o, t.long(), reduction="sum"))
    load_params(model, params)
    was_training = model.training
    model.eval()
    correct = 0.0
    total = 0
    loss_sum = 0.0
    for s in range(0, int(x.shape[0]), batch_size):
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        out = model(xb)
        correct += float((out.argmax(1) == yb).sum())
        total += int(yb.numel())
        ls = loss_fn(out, yb)
        loss_sum += float(ls) * (1 if loss is None else int(yb.shape[0]))
    model.train(was_training)
    n = max(int(x.shape[0]), 1)
    return {
        "accuracy": correct / max(total, 1),
        "loss": loss_sum / (max(total, 1) if loss is None else n),
        "examples": float(x.shape[0]),
    }


def params_accuracy(
    model: nn.Module, params: Params, data: TensorData, max_examples: int | None = None, batch_size: int = 256
) -> float:
    """Accuracy of ``params`` on the first ``max_examples`` examples of ``data`` (all when
    ``None``): :func:`evaluate_params`'s accuracy, e.g. one user's score in personalization.

    Raises:
        DataError: no examples to score.
    """
    n = len(data) if max_examples is None else min(len(data), max_examples)
    if n == 0:
        raise DataError("no test examples to score; score only users that have test data")
    return evaluate_params(model, params, data.x[:n], data.y[:n], batch_size=batch_size)["accuracy"]


def client_accuracies(
    model: nn.Module, params: Params, population: ClientPopulation, clients: Sequence[ClientId] | None = None
) -> dict[ClientId, float]:
    """Each client's accuracy of ``params`` on its own data (computed client-side; only the
    number leaves). ``clients=None`` evaluates every client."""
    ids = range(len(population)) if clients is None else clients
    out: dict[ClientId, float] = {}
    for cid in ids:
        data = population.client(cid)
        if len(data) == 0:
            continue
        out[cid] = evaluate_params(model, params, data.x, data.y)["accuracy"]
    return out


def summarize_accuracies(accs: Sequence[float]) -> dict[str, float]:
    """Mean, std, min, 10th percentile, median and max of client accuracies."""
    if not accs:
        return {}
    s = sorted(accs)

    def q(p: float) -> float:
        return s[min(len(s) - 1, int(p * (len(s) - 1) + 0.5))]

    return {
        "mean": statistics.fmean(s),
        "std": statistics.pstdev(s),
        "min": s[0],
        "p10": q(0.1),
        "median": q(0.5),
        "max": s[-1],
    }
