"""The federated rows of ``interlearn tour``: the embedded digits split non-IID across clients.

Three ways to learn the same 10-class task when the data is spread over clients that each see
only a few classes (a Dirichlet label skew, Hsu et al. 2019):

* ``federated`` — FedAvg (McMahan et al. 2017): data stays put, only model updates travel.
* ``local_only`` — every client trains alone on its own data; the mean of their test
  accuracies (what a client gets without collaborating).
* ``centralized`` — all data pooled on one machine (the upper bound; its
  ``bytes_communicated`` is the raw training data that pooling would have to upload).

All three use the same MLP, optimizer and local batch size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from interlearn.federated.api import ClientData
from interlearn.federated.client import LocalSGD
from interlearn.federated.engines import VectorizedEngine, run_cohort_on
from interlearn.federated.params import model_params
from interlearn.federated.partition import dirichlet, partition_stats
from interlearn.federated.plots import plot_partition
from interlearn.federated.population import Population
from interlearn.federated.schedule import at
from interlearn.federated.server.comm import params_bytes
from interlearn.federated.server.evaluate import evaluate_params
from interlearn.federated.server.sampling import client_generator
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.models.mlp import digits_mlp

__all__ = ["tour_rows", "NUM_CLIENTS", "ROUNDS"]

NUM_CLIENTS = 16
CLIENTS_PER_ROUND = 8
ROUNDS = 30
CENTRAL_EPOCHS = 15
ALPHA = 0.3
LOCAL = LocalSGD(epochs=2, batch_size=10, lr=0.1)


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def tour_rows(
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    out_dir: str | Path,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """FedAvg vs local-only vs centralized on the digits (see the module docstring).

    Args:
        train: ``(x, y)``, x (N, 64) in [0, 1], y (N,) labels 0..9.
        test: the held-out ``(x, y)``.
        out_dir: folder for the federated run (metrics, plots, partition heatmap).
        seed: model, partition and sampling seed.
        progress: print FedAvg's per-round progress.

    Returns:
        ``{"federated": row, "local_only": row, "centralized": row}``; each row has
        ``accuracy``, ``trainable_params``, ``train_seconds`` and ``bytes_communicated``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, y = train
    parts = dirichlet(y, NUM_CLIENTS, alpha=ALPHA, seed=seed, min_size=10)
    stats = partition_stats(y, parts, num_classes=10)
    plot_partition(stats["counts"], out / "partition.png")
    population = Population(x, y, parts)
    return {
        "federated": _federated_row(population, test, out, seed, progress),
        "local_only": _local_only_row(population, test, seed),
        "centralized": _centralized_row(train, test, seed),
    }


def _federated_row(
    population: Population, test: tuple[torch.Tensor, torch.Tensor], out: Path, seed: int, progress: bool
) -> dict[str, Any]:
    """FedAvg on the vectorized engine (its run folder is ``out``)."""
    model = digits_mlp(seed=seed)
    t0 = time.perf_counter()
    cfg = SimulationConfig(
        rounds=ROUNDS, clients_per_round=CLIENTS_PER_ROUND, seed=seed, eval_every=10, progress=progress
    )
    res = simulate(model, population, LOCAL, get_strategy("fedavg"), cfg, engine="auto", test=test, run_dir=out)
    return {
        "accuracy": res.final_accuracy,
        "trainable_params": _trainable(model),
        "train_seconds": time.perf_counter() - t0,
        "bytes_communicated": res.bytes_down + res.bytes_up,
        "clients": NUM_CLIENTS,
        "rounds": ROUNDS,
    }


def _local_only_row(population: Population, test: tuple[torch.Tensor, torch.Tensor], seed: int) -> dict[str, Any]:
    """Every client trains alone, each scored on the global test set (mean, min and max)."""
    # as many local epochs as FedAvg's clients do on average (rounds x cohort fraction x epochs)
    model = digits_mlp(seed=seed)
    params = model_params(model)
    epochs = max(1, round(ROUNDS * CLIENTS_PER_ROUND / NUM_CLIENTS * int(at(LOCAL.epochs, 1))))
    alone = LocalSGD(epochs=epochs, batch_size=LOCAL.batch_size, lr=LOCAL.lr)
    t0 = time.perf_counter()
    cohort = [population.client(c) for c in range(NUM_CLIENTS)]
    gens = [client_generator(seed, 0, c) for c in range(NUM_CLIENTS)]
    outs = run_cohort_on(VectorizedEngine(), model, alone, params, cohort, generators=gens).results
    seconds = time.perf_counter() - t0
    accs = [evaluate_params(model, {k: params[k] + r.update[k] for k in params}, *test)["accuracy"] for r, _ in outs]
    return {
        "accuracy": sum(accs) / len(accs),
        "trainable_params": _trainable(model),
        "train_seconds": seconds,
        "bytes_communicated": 0,
        "accuracy_min": min(accs),
        "accuracy_max": max(accs),
    }


def _centralized_row(
    train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], seed: int
) -> dict[str, Any]:
    """The same model and optimizer on the pooled data (what it costs: sending all of it)."""
    x, y = train
    model = digits_mlp(seed=seed)
    params = model_params(model)
    central = LocalSGD(epochs=CENTRAL_EPOCHS, batch_size=LOCAL.batch_size, lr=LOCAL.lr)
    t0 = time.perf_counter()
    r, _ = central(model, params, ClientData(0, x, y), None, {}, client_generator(seed, 0, 0))
    seconds = time.perf_counter() - t0
    acc = evaluate_params(model, {k: params[k] + r.update[k] for k in params}, *test)["accuracy"]
    return {
        "accuracy": acc,
        "trainable_params": _trainable(model),
        "train_seconds": seconds,
        "bytes_communicated": params_bytes({"x": x, "y": y}),
    }
