"""The sequential engine: the cohort's clients one after another, in process.

The reference engine: it runs any ``nn.Module`` (BatchNorm, ``nn.LSTM``, dropout, custom
layers) and any ``ClientUpdate``; every other engine is tested against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData, ClientResult, ClientUpdate
from interlearn.types import ClientId, Params

__all__ = ["SequentialEngine"]


class SequentialEngine:
    """Runs ``client_update`` for each client in turn on one shared model instance.

    Example:
        >>> engine = SequentialEngine()
    """

    name = "sequential"

    def run_cohort(
        self,
        model: torch.nn.Module,
        client_update: ClientUpdate,
        params: Params,
        cohort: Sequence[ClientData],
        client_states: dict[ClientId, Params | None],
        server_extras: Params,
        generators: Sequence[torch.Generator],
    ) -> list[tuple[ClientResult, Params | None]]:
        """Results in cohort order.

        Raises:
            ConfigError: ``cohort`` and ``generators`` differ in length.
        """
        if len(cohort) != len(generators):
            raise ConfigError(f"{len(cohort)} clients but {len(generators)} generators: pass one generator per client")
        return [
            client_update(model, params, data, client_states.get(data.client_id), server_extras, gen)
            for data, gen in zip(cohort, generators)
        ]

    def __repr__(self) -> str:
        return "SequentialEngine()"
