"""Defaults for the engine protocol (:class:`~interlearn.federated.api.Engine`).

An engine subclasses :class:`EngineBase` and overrides what it does differently; the round loop
calls every method of the protocol and never probes for optional ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData, ClientPopulation, ClientUpdate, CohortOutcome, CohortTask, EngineSetup
from interlearn.federated.population import Population
from interlearn.federated.server.evaluate import client_accuracies as local_client_accuracies
from interlearn.types import ClientId, Params

__all__ = ["EngineBase", "check_task", "run_cohort_on"]


def check_task(task: CohortTask) -> None:
    """Raise ConfigError when the task's lists disagree (one generator per client)."""
    if len(task.clients) != len(task.generators):
        raise ConfigError(
            f"{len(task.clients)} clients but {len(task.generators)} generators: pass one generator per client"
        )


def task_update(setup: EngineSetup, task: CohortTask) -> ClientUpdate:
    """The client update of the task's round (its schedules resolved), else the setup's."""
    return task.client_update if task.client_update is not None else setup.client_update


class EngineBase:
    """Default behaviour: clients run in this process, no remote protocol, local evaluation.

    Subclasses implement :meth:`run_cohort` and keep ``self.setup`` (set by :meth:`start`).
    """

    name = "engine"
    runs_client_steps = False

    def __init__(self) -> None:
        self.setup: EngineSetup | None = None

    def start(self, setup: EngineSetup) -> None:
        """Bind to the run (the model, the client update, the population)."""
        self.setup = setup

    def bound(self) -> EngineSetup:
        """The setup of the current run.

        Raises:
            ConfigError: :meth:`start` was never called.
        """
        if self.setup is None:
            raise ConfigError(
                f"the {self.name!r} engine was not started: call engine.start(EngineSetup(...)) or use simulate()"
            )
        return self.setup

    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        raise NotImplementedError

    def protocol_channel(self, round_: int) -> Any:
        return None

    def client_accuracies(
        self,
        model: torch.nn.Module,
        params: Params,
        population: ClientPopulation,
        clients: Sequence[ClientId] | None = None,
    ) -> dict[ClientId, float]:
        return local_client_accuracies(model, params, population, clients)

    def describe(self) -> str:
        return self.name

    def stop(self) -> None:
        self.setup = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def run_cohort_on(
    engine: Any,
    model: torch.nn.Module,
    client_update: ClientUpdate,
    params: Params,
    cohort: Sequence[ClientData],
    client_states: dict[ClientId, Params | None] | None = None,
    server_extras: Params | None = None,
    generators: Sequence[torch.Generator] | None = None,
) -> CohortOutcome:
    """Run one cohort of already materialized clients on ``engine`` (a convenience for tests,
    benchmarks and one-off use: it starts the engine on a population of just these clients).

    Generators default to ``torch.Generator().manual_seed(client_id)``.
    """
    pop = Population.from_clients([(d.x, d.y) for d in cohort])
    ids = list(range(len(cohort)))
    remap = {i: d.client_id for i, d in enumerate(cohort)}
    gens = (
        list(generators)
        if generators is not None
        else [torch.Generator().manual_seed(int(d.client_id)) for d in cohort]
    )
    states = {i: (client_states or {}).get(d.client_id) for i, d in enumerate(cohort)}
    engine.start(EngineSetup(model, client_update, pop, len(cohort)))
    out = engine.run_cohort(CohortTask(0, params, ids, states, dict(server_extras or {}), gens))
    results = []
    for res, st in out.results:
        cid = remap[res.client_id]
        results.append((dataclasses.replace(res, client_id=cid), st))
    return CohortOutcome(
        results,
        [remap[c] for c in out.dropped],
        {remap[c]: v for c, v in out.client_contexts.items()},
        {remap[c]: v for c, v in out.nodes.items()},
    )
