"""Paying one-off costs before round 1: a couple of throwaway local steps.

The first local steps of a process are slower than the rest (first calls into the BLAS and
oneDNN kernels, the allocator growing its pools, lazy imports). An engine's ``start`` runs
:func:`warm_up` so that round 1 costs what a steady round costs; nothing of the run changes
(a copy of the model's weights, a generator of its own, the global RNG restored).
"""

from __future__ import annotations

import logging

import torch

from interlearn.federated.api import EngineSetup
from interlearn.federated.client.step import StepContext, StepUpdate, client_rng, trainable_keys
from interlearn.federated.params import model_params

__all__ = ["warm_up"]

log = logging.getLogger(__name__)


def warm_up(setup: EngineSetup, steps: int = 2) -> None:
    """Take ``steps`` throwaway local steps of ``setup.client_update`` on its largest client.

    Only :class:`~interlearn.federated.client.StepUpdate` updates are warmed up (others may keep
    state between calls); any error is left for round 1 to raise with its full context.
    """
    update, model, pop = setup.client_update, setup.model, setup.population
    if not isinstance(update, StepUpdate) or len(pop) == 0:
        return
    try:
        sizes = pop.sizes
        cid = int(torch.argmax(sizes)) if len(sizes) else 0
        data = pop.client(cid)
        if len(data) == 0:
            return
        params = model_params(model)
        ctx = StepContext(params, {}, trainable_keys(model, params))
        gen = torch.Generator().manual_seed(0)
        local = update.begin(params, None, ctx)
        state = update.init_state(local, None, ctx)
        model.train()
        with client_rng(gen):
            for t, idx in enumerate(update.schedule(len(data), gen)[:steps], start=1):
                local, state, _ = update.step(model, local, state, data.x[idx], data.y[idx], ctx, t)
    except Exception as exc:  # noqa: BLE001  (round 1 reports it properly)
        log.debug("warm-up skipped: %s", exc)
