"""The server side: a Flower ``ServerApp`` whose main function runs our round loop.

The ``ServerApp`` (Flower's Message API, ``@app.main()``) discovers the SuperNodes, maps our
client ids to Flower node ids, and hands the round loop a :class:`FlowerGridEngine` plus a
:class:`RemotePopulation` (client ids and sizes, no examples). From there on it is the same loop as in simulation: the
same cohort sampling, strategy, server-side update steps, evaluation, metrics and checkpoints in
our run folder. Only *where* client updates run changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from interlearn.errors import ConfigError
from interlearn.federated.api import Engine
from interlearn.federated.flower.grid_engine import FlowerGridEngine, RemotePopulation, discover_clients

__all__ = ["ServerSetup", "make_server_app"]


@dataclass
class ServerSetup:
    """What the server runs once the nodes are known.

    Attributes:
        run: the round loop, called as ``run(engine, population)`` with the Flower engine and
            the :class:`RemotePopulation`; typically a call of
            :func:`interlearn.federated.server.simulation.simulate` with ``engine=engine``.
        min_nodes: SuperNodes to wait for before the first round.
        round_timeout_s: seconds to wait for a round's replies; later ones are dropouts.
        discovery_timeout_s: seconds to wait for ``min_nodes`` nodes to connect and answer.
    """

    run: Callable[[Engine, RemotePopulation], Any]
    min_nodes: int
    round_timeout_s: float = 120.0
    discovery_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.min_nodes < 1:
            raise ConfigError(f"min_nodes={self.min_nodes}: must be >= 1")
        if not self.round_timeout_s > 0 or not self.discovery_timeout_s > 0:
            raise ConfigError("round_timeout_s and discovery_timeout_s must be > 0")


def make_server_app(build: Callable[[Context], ServerSetup]) -> ServerApp:
    """A Flower ``ServerApp`` that runs ``build(context)``'s round loop on the connected nodes.

    Args:
        build: called in the ServerApp process with Flower's ``Context`` (``context.run_config``
            holds ``[tool.flwr.app.config]`` merged with ``flwr run --run-config``).

    Returns:
        The ``ServerApp``; reference it from ``[tool.flwr.app.components] serverapp``.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        setup = build(context)
        if not isinstance(setup, ServerSetup):
            raise ConfigError(f"the server build function returned {type(setup).__name__}, expected ServerSetup")
        node_of, sizes = discover_clients(grid, setup.min_nodes, timeout_s=setup.discovery_timeout_s)
        engine = FlowerGridEngine(grid, node_of, timeout_s=setup.round_timeout_s)
        setup.run(engine, RemotePopulation(sizes))

    return app
