"""Recipe fields that name a registered entry: ``Annotated[str, REGISTRY]``.

A recipe checks such a name against the registry when it loads (:func:`interlearn.schema.build`
and :func:`interlearn.registry.check_names`), not against a fixed list, so a strategy,
aggregator, engine, client update or update step registered from user code is accepted; an
unknown name fails with the known names and the closest one. The generated recipe reference
lists the names registered when the docs are built.
"""

from __future__ import annotations

from typing import Annotated

from interlearn.federated.client.registry import CLIENT_UPDATES
from interlearn.federated.engines import ENGINES
from interlearn.federated.strategies import AGGREGATORS, STRATEGIES
from interlearn.federated.update_steps import UPDATE_STEPS

__all__ = ["AggregatorName", "ClientUpdateName", "EngineName", "StepName", "StrategyName"]

EngineName = Annotated[str, ENGINES]
"""An engine registered with :func:`interlearn.federated.register_engine`."""

StrategyName = Annotated[str, STRATEGIES]
"""A strategy registered with :func:`interlearn.federated.register_strategy`."""

AggregatorName = Annotated[str, AGGREGATORS]
"""An aggregator registered with :func:`interlearn.federated.register_aggregator`."""

ClientUpdateName = Annotated[str, CLIENT_UPDATES]
"""A client update registered with :func:`interlearn.federated.register_client_update`."""

StepName = Annotated[str, UPDATE_STEPS]
"""An update step registered with :func:`interlearn.federated.register_step`."""
