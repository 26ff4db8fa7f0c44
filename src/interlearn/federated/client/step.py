"""One client step for every engine.

A client's local training is a loop of one pure step (DESIGN.md, "One client step, many
schedulers"; optax's ``update`` and pfl-research's backends are the models)::

    grads  = d objective(model, params, x, y) / d params       # the client's loss on one batch
    params, state = apply(params, grads, state, ctx, t)          # the optimizer's math, written once

A :class:`StepUpdate` supplies the pieces: ``schedule`` (which examples each step sees),
``begin`` (the client's starting params), ``init_state`` (its optimizer state), ``objective``,
``apply`` and ``finish`` (the upload and the client's new private state). :func:`run_client`
drives them one step after another; it is what the ``sequential`` engine, the multi-core
workers, Ray tasks and Flower nodes run. The ``vectorized`` engine runs the same pieces on a
stack of clients (the objective under ``torch.func.vmap``; ``apply`` on the stacked tensors).
No engine contains optimizer math.

Writing your own client update:

* override ``objective`` for another loss (it must be a mean over the batch's examples);
* override ``apply`` for another optimizer. ``apply`` may update ``params`` and ``state`` in
  place (the engines hand it tensors it owns, like JAX's donated buffers) and returns them. Set
  ``elementwise = True`` when it acts on each tensor entry by entry (then the batched engine
  runs it directly on the clients' stacked tensors; otherwise it is ``vmap``-ed);
* or override ``step`` itself (write it with ``torch.func`` so it can be ``vmap``-ed).

State that lives in ``state`` is per client (stacked along a leading client dimension in the
batched engine); what every client of a round shares (the global params, the server's extras,
the trainable names) comes in the :class:`StepContext`; the step index ``t`` (1-based) is shared
by the clients a batched step advances together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.func import functional_call

from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData, ClientResult
from interlearn.types import Params

__all__ = ["StepContext", "StepUpdate", "run_client", "batch_schedule", "client_rng"]


@dataclass(frozen=True)
class StepContext:
    """What every client of a round shares while it steps.

    Attributes:
        global_params: the params the server sent (FedProx's anchor; the update's reference).
        server_extras: tensors the strategy sent with the model (SCAFFOLD's control variate).
        trainable: names of the params that get gradients (the model's ``requires_grad``
            parameters); the others (frozen weights, float buffers) ride along unchanged.
    """

    global_params: Params
    server_extras: Params
    trainable: tuple[str, ...]


def batch_schedule(
    n: int, batch_size: int | None, epochs: int, steps: int | None, generator: torch.Generator
) -> list[torch.Tensor]:
    """The minibatches (example indices) of one client's local training.

    Each epoch is a fresh permutation of ``range(n)`` drawn from ``generator``, cut into batches
    of ``batch_size`` (the last one may be smaller; ``None`` = the whole local set). With
    ``steps`` set, epochs are drawn until exactly ``steps`` batches exist.
    """
    b = n if batch_size is None else min(batch_size, n)
    out: list[torch.Tensor] = []
    e = 0
    while steps is not None or e < epochs:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, b):
            if steps is not None and len(out) >= steps:
                return out
            out.append(perm[start : start + b])
        e += 1
    return out


class StepUpdate:
    """Base class of client updates written as one step (see the module docstring).

    Subclasses define ``schedule``, ``objective`` and ``apply`` (and, when they need them,
    ``begin``, ``init_state`` and ``finish``); calling the update runs :func:`run_client`.
    """

    elementwise: ClassVar[bool] = False
    """True when ``apply`` acts entry by entry on each tensor (safe on stacked clients)."""

    def at_round(self, round_: int) -> StepUpdate:
        """This update as round ``round_`` runs it: every
        :class:`~interlearn.federated.schedule.Schedule` among its values resolved (default:
        nothing is scheduled, ``self``). The round loop hands the result to the engine."""
        return self

    def schedule(self, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        """The example indices of each local step, drawn from the client's ``generator``."""
        raise NotImplementedError

    def begin(self, params: Params, client_state: Params | None, ctx: StepContext) -> Params:
        """The client's starting params: a private copy of the global ones (FedPer swaps in
        the client's own head here)."""
        return {k: v.detach().clone() for k, v in params.items()}

    def init_state(self, params: Params, client_state: Params | None, ctx: StepContext) -> Params:
        """The optimizer state at the first step, one tensor per entry (none for plain SGD)."""
        return {}

    def objective(self, model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss of ``params`` on one batch (a scalar)."""
        raise NotImplementedError

    def apply(self, params: Params, grads: Params, state: Params, ctx: StepContext, t: int) -> tuple[Params, Params]:
        """The optimizer's step: new params and state from the gradients of the trainable entries."""
        raise NotImplementedError

    def step(
        self,
        model: nn.Module,
        params: Params,
        state: Params,
        x: torch.Tensor,
        y: torch.Tensor,
        ctx: StepContext,
        t: int,
    ) -> tuple[Params, Params, torch.Tensor]:
        """One local step: ``apply`` on the gradients of ``objective``; returns the batch loss too."""
        if not all(params[k].requires_grad for k in ctx.trainable):  # apply returned fresh tensors
            params = {k: v.detach().requires_grad_(True) if k in ctx.trainable else v for k, v in params.items()}
        loss = self.objective(model, params, x, y)
        grads = torch.autograd.grad(loss, [params[k] for k in ctx.trainable], allow_unused=True)
        with torch.no_grad():
            params, state = self.apply(params, used_grads(ctx.trainable, grads), state, ctx, t)
        return params, state, loss.detach()

    def finish(
        self, params: Params, state: Params, client_state: Params | None, ctx: StepContext, steps: int
    ) -> tuple[Params, Params, Params | None]:
        """After the last step: ``(update, extras, new_client_state)``; by default the update is
        ``params - global_params``, no extras, and the client state is kept."""
        update = {k: params[k].detach() - v for k, v in ctx.global_params.items()}
        return update, {}, client_state

    def __call__(
        self,
        model: nn.Module,
        params: Params,
        data: ClientData,
        client_state: Params | None,
        server_extras: Params,
        generator: torch.Generator,
    ) -> tuple[ClientResult, Params | None]:
        """Train on ``data`` from ``params`` (the ``ClientUpdate`` protocol; see :func:`run_client`)."""
        return run_client(self, model, params, data, client_state, server_extras, generator)


def used_grads(names: Sequence[str], grads: Sequence[torch.Tensor | None]) -> Params:
    """The gradients of the parameters the forward used, by name.

    A trainable parameter that the loss never touches (a pooler the classifier ignores, an
    unused head, a switched-off branch) has no gradient; like ``torch.optim``, which skips a
    parameter whose ``.grad`` is None, the step leaves it (and its optimizer state) unchanged.
    """
    return {k: g for k, g in zip(names, grads) if g is not None}


def functional_objective(model: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    """``model``'s output with ``params`` swapped in (``torch.func.functional_call``)."""
    return functional_call(model, params, (x,))


def trainable_keys(model: nn.Module, params: Params) -> tuple[str, ...]:
    """The names in ``params`` that local training changes: the model's ``requires_grad``
    parameters, in ``params``' order.

    Raises:
        ConfigError: a trainable parameter is missing from ``params``.
    """
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(names - set(params))
    if missing:
        raise ConfigError(
            f"trainable parameters {missing[:3]} are not in the global params; build params with model_params(model)"
        )
    return tuple(k for k in params if k in names)


@contextmanager
def client_rng(generator: torch.Generator) -> Iterator[None]:
    """The torch global RNG (dropout, random layers) seeded from the client's generator for the
    duration of its local training, and restored afterwards, so a client's randomness does not
    depend on which engine runs it or which clients ran before it."""
    seed = (generator.initial_seed() * 0x9E3779B97F4A7C15 + 0x632BE5AB) & 0x7FFFFFFFFFFFFFFF
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def run_client(
    update: StepUpdate,
    model: nn.Module,
    params: Params,
    data: ClientData,
    client_state: Params | None,
    server_extras: Params,
    generator: torch.Generator,
) -> tuple[ClientResult, Params | None]:
    """One client's local training: ``update``'s steps one after another (the reference every
    engine is tested against).

    Raises:
        DataError: the client has no examples.
        ConfigError: a trainable parameter of ``model`` is missing from ``params``.
    """
    n = len(data)
    if n == 0:
        raise DataError(f"client {data.client_id} has no training examples; drop empty clients from the partition")
    ctx = StepContext(params, server_extras, trainable_keys(model, params))
    local = update.begin(params, client_state, ctx)
    state = update.init_state(local, client_state, ctx)
    batches = update.schedule(n, generator)
    if not batches:
        raise ConfigError(
            f"{type(update).__name__}.schedule gave no batches for client {data.client_id} ({n} examples)"
        )
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    with client_rng(generator):
        for t, idx in enumerate(batches, start=1):
            local, state, loss = update.step(model, local, state, data.x[idx], data.y[idx], ctx, t)
            loss_sum += loss
    local = {k: v.detach() for k, v in local.items()}
    delta, extras, new_state = update.finish(local, state, client_state, ctx, len(batches))
    metrics = {"loss": float(loss_sum) / len(batches), "steps": float(len(batches)), "examples": float(n)}
    return ClientResult(data.client_id, delta, float(n), metrics, extras), new_state


def step_sizes(schedules: Sequence[Sequence[torch.Tensor]]) -> list[list[int]]:
    """The batch size of every step of every client (the batched engine groups by it)."""
    return [[int(b.shape[0]) for b in sch] for sch in schedules]
