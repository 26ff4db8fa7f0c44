"""Client updates by name (STYLE.md #7), so a recipe can name the local training it runs.

A factory takes :class:`~interlearn.federated.client.LocalSGD`'s keyword arguments (``epochs``,
``steps``, ``batch_size``, ``lr``, ``optimizer``, ``momentum``, ``weight_decay``,
``prox_mu``) plus its own options, and returns a
:class:`~interlearn.federated.api.ClientUpdate`; a subclass of ``LocalSGD`` is one. User code
registers its own with :func:`register_client_update`::

    register_client_update("feddyn", FedDynClient)      # then in a recipe: client: {update: feddyn}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlearn.federated.api import ClientUpdate
from interlearn.federated.client.local_sgd import LocalSGD
from interlearn.federated.client.scaffold import ScaffoldClient
from interlearn.registry import Registry

__all__ = ["CLIENT_UPDATES", "get_client_update", "register_client_update"]

CLIENT_UPDATES: Registry[Callable[..., ClientUpdate]] = Registry("client update")
"""Client updates: name -> ``factory(epochs=..., lr=..., ..., **options) -> ClientUpdate``."""

CLIENT_UPDATES.register_all({"local_sgd": LocalSGD, "scaffold": ScaffoldClient})


def register_client_update(name: str, factory: Callable[..., ClientUpdate]) -> None:
    """Register ``factory(**kwargs) -> ClientUpdate`` under ``name``.

    Raises:
        ConfigError: the name is taken.
    """
    CLIENT_UPDATES.register(name, factory)


def get_client_update(name: str, **kwargs: Any) -> ClientUpdate:
    """Build the client update registered as ``name`` (``local_sgd``, ``scaffold``, ...).

    Raises:
        ConfigError: unknown name (lists the known ones) or bad keyword arguments.
    """
    update: ClientUpdate = CLIENT_UPDATES.build(name, **kwargs)
    return update
