"""A ready-made Flower app: FedAvg of a small MLP on MNIST split IID over N clients.

Used by ``examples/flower_deploy.py`` and ``benchmarks/fl_engines.py``; also a template for a
user's own app module. A Flower app folder only needs a ``pyproject.toml`` whose components
point here, or a module with two plain assignments (Flower validates the names by parsing the
module, so ``from ... import`` is not enough)::

    from interlearn.federated.flower import demo
    server_app = demo.server_app
    client_app = demo.client_app

Run config keys (``flwr run --run-config``) are :data:`DEFAULTS`; each SuperNode needs
``--node-config 'partition-id=K'``. In this demo every node reads the same MNIST files and
keeps only its partition; a real node would load its own files instead (``client_data``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from interlearn.data.mnist import load_mnist
from interlearn.errors import ConfigError
from interlearn.federated.client import LocalSGD
from interlearn.federated.flower.job import FlowerJob, job_client_app, job_server_app
from interlearn.federated.population import Population
from interlearn.federated.protections.privacy import ClipUpdates, GaussianNoise
from interlearn.federated.protections.secagg import SecureAggregation
from interlearn.federated.server.simulation import SimulationConfig
from interlearn.federated.strategies import get_strategy

__all__ = ["DEFAULTS", "PROTECTIONS", "steps", "model_fn", "population", "test_set", "job", "server_app", "client_app"]

DEFAULTS: dict[str, Any] = {
    "data-dir": "",  # empty: $INTERLEARN_DATA
    "num-clients": 4,
    "examples-per-client": 500,
    "num-rounds": 3,
    "clients-per-round": 4,
    "local-epochs": 1,
    "batch-size": 32,
    "lr": 0.05,
    "seed": 0,
    "test-examples": 2000,
    "round-timeout": 180.0,
    "run-dir": "",
    "protect": "none",  # "none", "local-dp" (clip + local Gaussian noise) or "secagg" (clip + secure aggregation)
}

PROTECTIONS = ("none", "local-dp", "secagg")


def steps(protect: str) -> list[Any]:
    """The update steps of ``protect`` (client hooks run on the SuperNodes, server hooks here).

    Raises:
        ConfigError: an unknown name (the known ones are listed).
    """
    if protect not in PROTECTIONS:
        raise ConfigError(f"protect={protect!r}: choose one of {PROTECTIONS}")
    if protect == "none":
        return []
    clip = ClipUpdates(1.0)
    if protect == "local-dp":
        return [clip, GaussianNoise(clip, 0.1, mode="local")]
    return [clip, SecureAggregation()]


def model_fn() -> nn.Module:
    """The global model's architecture and initial weights (seeded: same on every process)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def _cfg(run_config: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    cfg.update(dict(run_config or {}))
    return cfg


def population(run_config: Mapping[str, Any] | None = None) -> Population:
    """``num-clients`` IID shards of ``examples-per-client`` MNIST training images (seeded)."""
    cfg = _cfg(run_config)
    train = load_mnist("train", cfg["data-dir"] or None, flatten=True)
    n, k = int(cfg["num-clients"]), int(cfg["examples-per-client"])
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(int(cfg["seed"])))[: n * k]
    return Population(train.x, train.y, list(idx.reshape(n, k)))


def test_set(run_config: Mapping[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``test-examples`` MNIST test images (the server's global test set)."""
    cfg = _cfg(run_config)
    test = load_mnist("test", cfg["data-dir"] or None, flatten=True)
    m = int(cfg["test-examples"])
    return test.x[:m], test.y[:m]


def job(context: Any) -> FlowerJob:
    """The demo job from a Flower ``Context`` (or anything with ``run_config``)."""
    cfg = _cfg(getattr(context, "run_config", None))
    return FlowerJob(
        model_fn=model_fn,
        client_update=LocalSGD(epochs=int(cfg["local-epochs"]), batch_size=int(cfg["batch-size"]), lr=float(cfg["lr"])),
        strategy_fn=lambda: get_strategy("fedavg"),
        config=SimulationConfig(
            rounds=int(cfg["num-rounds"]),
            clients_per_round=int(cfg["clients-per-round"]),
            seed=int(cfg["seed"]),
            progress=True,
        ),
        client_data=lambda ctx: population(cfg).client(int(ctx.node_config["partition-id"])),
        num_clients=int(cfg["num-clients"]),
        steps_fn=lambda: steps(str(cfg["protect"])),
        test_fn=lambda: test_set(cfg),
        round_timeout_s=float(cfg["round-timeout"]),
    )


server_app = job_server_app(job)
client_app = job_client_app(job)
