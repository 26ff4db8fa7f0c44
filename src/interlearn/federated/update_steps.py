"""Update steps by name (STYLE.md #7), so a ``federated`` recipe's ``steps`` list can name one
written in user code.

The recipe's own steps (``clip``, ``dp``, ``validate``, ``compress``, ``secagg``) have typed
options (:mod:`interlearn.recipes.federated_steps`); any other
:class:`~interlearn.federated.api.UpdateStep` registers a factory here and a recipe names it::

    register_step("round_to_grid", RoundToGrid)    # factory(**options) -> UpdateStep

    steps:
      - clip: {max_norm: 1.0}
      - step: {name: round_to_grid, options: {grid: 0.01}}

The simple built-in steps are registered too (``clip``, ``validate``, ``compress``), under the
names the recipe uses for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlearn.federated.api import UpdateStep
from interlearn.federated.protections.compression import CompressUpdates
from interlearn.federated.protections.privacy import ClipUpdates
from interlearn.federated.protections.validation import ValidateUpdates
from interlearn.registry import Registry

__all__ = ["UPDATE_STEPS", "get_step", "register_step"]

UPDATE_STEPS: Registry[Callable[..., UpdateStep]] = Registry("update step")
"""Update steps: name -> ``factory(**options) -> UpdateStep``."""

UPDATE_STEPS.register_all({"clip": ClipUpdates, "validate": ValidateUpdates, "compress": CompressUpdates})


def register_step(name: str, factory: Callable[..., UpdateStep]) -> None:
    """Register ``factory(**options) -> UpdateStep`` under ``name``.

    Raises:
        ConfigError: the name is taken.
    """
    UPDATE_STEPS.register(name, factory)


def get_step(name: str, **options: Any) -> UpdateStep:
    """Build the update step registered as ``name``.

    Raises:
        ConfigError: unknown name (lists the known ones) or bad options.
    """
    step: UpdateStep = UPDATE_STEPS.build(name, **options)
    return step
