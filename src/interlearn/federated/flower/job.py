"""One federated job, both Flower apps: the adapter users call from their Flower app module.

A :class:`FlowerJob` holds what a simulated run takes (model, client update, strategy, update
steps, :class:`~interlearn.federated.server.simulation.SimulationConfig`) plus how a node finds its own
data. :func:`job_server_app` and :func:`job_client_app` turn a job builder into a Flower
``ServerApp`` / ``ClientApp`` pair:

* server side: :func:`~interlearn.federated.server.simulation.simulate` with the
  :class:`~interlearn.federated.flower.grid_engine.FlowerGridEngine`, so cohort sampling,
  the strategy, server-side steps, evaluation, ``metrics.jsonl``, plots and checkpoints are the
  simulation's own, written to the run folder (``run-dir`` in the run config); the final
  global params are saved there as a checkpoint (``final/``).
* client side: the job's client update on the node's own data.

The same pair runs on Flower's Deployment Engine (``flower-superlink``/``flower-supernode``
and ``flwr run``) and on its Simulation Runtime (:func:`run_flower_simulation`).

Update steps: ``steps_fn`` is called on both sides. The server runs their server and ``after``
hooks; each node runs their client hooks (clipping, local noise, compression) on its own update,
with the server's step states of the round (e.g. the adaptive clip norm) loaded first, so only
protected updates leave the nodes. Secure aggregation runs its protocol rounds as extra
``query.secagg`` messages (:meth:`FlowerGridEngine.protocol_channel`), the nodes keeping their
keys and shares in ``context.state``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp
from torch import nn

from interlearn.checkpoint import save_checkpoint
from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData, ClientUpdate, Engine, Strategy, UpdateStep
from interlearn.federated.flower.client_app import ClientSetup, make_client_app
from interlearn.federated.flower.server_app import ServerSetup, make_server_app
from interlearn.federated.server.simulation import SimulationConfig, SimulationResult, simulate

__all__ = ["FlowerJob", "job_server_app", "job_client_app", "flower_apps", "run_job", "run_flower_simulation", "FINAL"]

FINAL = "final"
"""Sub-folder of the run folder holding the final global params (a safetensors checkpoint)."""


def _no_steps() -> Sequence[UpdateStep]:
    return ()


@dataclass
class FlowerJob:
    """A federated job as both sides of a Flower deployment see it.

    Attributes:
        model_fn: builds the architecture with the initial global weights (same on every call).
        client_update: the local training.
        strategy_fn: builds the server strategy.
        config: rounds, cohort size, seed, evaluation, checkpoints (the simulation's config).
        client_data: on a node, returns that node's own ``ClientData`` (typically from
            ``context.node_config["partition-id"]`` or a data path in the node config).
        num_clients: SuperNodes (= clients, ids ``0..num_clients-1``) to wait for.
        steps_fn: builds the update steps (clip, noise, compress, validate, secure aggregation).
        test_fn: builds the server's global test set ``(x, y)``, or ``None``.
        round_timeout_s: seconds to wait for a round's replies; missing ones are dropouts.
        discovery_timeout_s: seconds to wait for the nodes at start-up.
    """

    model_fn: Callable[[], nn.Module]
    client_update: ClientUpdate
    strategy_fn: Callable[[], Strategy]
    config: SimulationConfig
    client_data: Callable[[Context], ClientData]
    num_clients: int
    steps_fn: Callable[[], Sequence[UpdateStep]] = field(default=_no_steps)
    test_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
    round_timeout_s: float = 120.0
    discovery_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.num_clients < 1:
            raise ConfigError(f"num_clients={self.num_clients}: must be >= 1")


def run_job(job: FlowerJob, engine: Engine, population: Any, run_dir: str | Path | None) -> SimulationResult:
    """The server side of a job: the round loop on ``engine``; saves the final params.

    Also what an in-process reference run calls (with a real ``Population`` and the sequential
    engine), so deployment and simulation share every line after the engine.
    """
    result = simulate(
        job.model_fn(),
        population,
        job.client_update,
        job.strategy_fn(),
        job.config,
        engine=engine,
        steps=job.steps_fn(),
        test=job.test_fn() if job.test_fn is not None else None,
        run_dir=run_dir,
    )
    if run_dir is not None:
        meta = {
            "rounds": len(result.history),
            "engine": engine.name,
            "final_accuracy": result.final_accuracy,
            "bytes_up": result.bytes_up,
            "bytes_down": result.bytes_down,
        }
        save_checkpoint(Path(run_dir) / FINAL, result.params, meta)
    return result


def _run_dir(context: Context, default: str | Path | None) -> str | None:
    value = context.run_config.get("run-dir", "") if context.run_config else ""
    if value:
        return str(value)
    return str(default) if default is not None else None


def job_server_app(job_fn: Callable[[Context], FlowerJob], run_dir: str | Path | None = None) -> ServerApp:
    """The ``ServerApp`` of the job ``job_fn(context)`` describes.

    Args:
        job_fn: builds the job from Flower's ``Context`` (``context.run_config`` holds
            ``[tool.flwr.app.config]`` merged with ``flwr run --run-config``).
        run_dir: the run folder when the run config has no ``run-dir``.

    Example (in the Flower app's module; Flower looks the names up as plain assignments):
        >>> server_app = job_server_app(my_job)
        >>> client_app = job_client_app(my_job)
    """

    def server(context: Context) -> ServerSetup:
        job = job_fn(context)
        out = _run_dir(context, run_dir)
        return ServerSetup(
            run=lambda engine, population: run_job(job, engine, population, out),
            min_nodes=job.num_clients,
            round_timeout_s=job.round_timeout_s,
            discovery_timeout_s=job.discovery_timeout_s,
        )

    return make_server_app(server)


def job_client_app(job_fn: Callable[[Context], FlowerJob]) -> ClientApp:
    """The ``ClientApp`` of the job: its client update on ``job.client_data(context)``."""

    def client(context: Context) -> ClientSetup:
        job = job_fn(context)
        return ClientSetup(job.model_fn(), job.client_update, job.client_data(context), job.steps_fn())

    return make_client_app(client)


def flower_apps(
    job_fn: Callable[[Context], FlowerJob], run_dir: str | Path | None = None
) -> tuple[ServerApp, ClientApp]:
    """``(job_server_app(job_fn, run_dir), job_client_app(job_fn))``, e.g. for the simulation runtime."""
    return job_server_app(job_fn, run_dir), job_client_app(job_fn)


def run_flower_simulation(
    job_fn: Callable[[Context], FlowerJob],
    num_supernodes: int,
    run_dir: str | Path | None = None,
    backend_config: dict[str, Any] | None = None,
) -> None:
    """Run the job on Flower's Simulation Runtime (virtual SuperNodes on Ray actors).

    Each virtual node's ``context.node_config`` holds ``partition-id`` and ``num-partitions``.
    Results land in ``run_dir`` as in a deployment.

    Raises:
        ConfigError: ``num_supernodes < 1``.
    """
    if num_supernodes < 1:
        raise ConfigError(f"num_supernodes={num_supernodes}: must be >= 1")
    from flwr.simulation import run_simulation

    server_app, client_app = flower_apps(job_fn, run_dir=run_dir)
    backend = backend_config or {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=num_supernodes, backend_config=backend)
