"""The sequential engine: the cohort's clients one after another, in process.

The reference engine: it runs any ``nn.Module`` (BatchNorm, ``nn.LSTM``, dropout, custom
layers) and any ``ClientUpdate``; every other engine is tested against it. A
:class:`~interlearn.federated.client.StepUpdate` runs through
:func:`~interlearn.federated.client.step.run_client`, its steps one after another.
"""

from __future__ import annotations

from interlearn.federated.api import CohortOutcome, CohortTask, EngineSetup
from interlearn.federated.engines.base import EngineBase, check_task, task_update
from interlearn.federated.engines.warmup import warm_up

__all__ = ["SequentialEngine"]


class SequentialEngine(EngineBase):
    """Runs the client update for each client in turn on one shared model instance.

    Args:
        warmup: at start, take two throwaway local steps so that one-off costs (first kernel
            calls, buffer allocation) are paid before round 1.

    Example:
        >>> engine = SequentialEngine()
    """

    name = "sequential"

    def __init__(self, warmup: bool = True) -> None:
        super().__init__()
        self.warmup = warmup

    def start(self, setup: EngineSetup) -> None:
        fresh = self.setup is None or self.setup.model is not setup.model
        super().start(setup)
        if self.warmup and fresh:
            warm_up(setup)

    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        """Results in cohort order.

        Raises:
            ConfigError: ``task.clients`` and ``task.generators`` differ in length.
        """
        setup = self.bound()
        check_task(task)
        update, model, pop = task_update(setup, task), setup.model, setup.population
        return CohortOutcome(
            [
                update(model, task.params, pop.client(cid), task.client_states.get(cid), task.server_extras, gen)
                for cid, gen in zip(task.clients, task.generators)
            ]
        )

    def __repr__(self) -> str:
        return "SequentialEngine()"
