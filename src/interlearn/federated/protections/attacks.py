"""Simulated attacks: a fraction of clients behave maliciously, to measure robust aggregation.

Update (model) poisoning, applied by :class:`AttackStep` to the attackers' results on the client
side (put it FIRST in the step list, so the server-side protections see what an attacker would
send):

- ``sign_flip``: send ``-scale * update`` (Damaskinos et al. 2018; Li et al. 2019, RSA).
- ``scaling``: model replacement, send ``factor * update`` (Bagdasaryan et al. 2020, "How To
  Backdoor Federated Learning", AISTATS: boosting by ~n/eta replaces the global model).
- ``gaussian``: send pure noise ``N(0, std**2)`` instead of an update (Blanchard et al. 2017).

Data poisoning, applied to the attackers' local data by :func:`flip_labels` (works on every
engine, as the attacker's ClientUpdate is the honest one on bad data; :func:`poison_labels` does
the same to a whole :class:`~interlearn.federated.Population`):

- ``label_flip``: ``y -> num_classes - 1 - y`` (Tolpegin et al. 2020, "Data Poisoning Attacks
  Against Federated Learning Systems").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

import torch

from interlearn.errors import ConfigError, closest
from interlearn.federated.api import ClientData, ClientResult, RoundContext, UpdateStep
from interlearn.federated.population import Population
from interlearn.types import ClientId, Params

__all__ = [
    "ATTACKS",
    "UPDATE_ATTACKS",
    "choose_attackers",
    "sign_flip",
    "scale_update",
    "gaussian_update",
    "flip_labels",
    "poison_labels",
    "AttackStep",
]

UPDATE_ATTACKS = ("sign_flip", "scaling", "gaussian")
ATTACKS = UPDATE_ATTACKS + ("label_flip",)


def choose_attackers(num_clients: int, fraction: float, seed: int = 0) -> frozenset[ClientId]:
    """Pick ``round(fraction * num_clients)`` attacker ids among ``0..num_clients-1``.

    Raises:
        ConfigError: ``fraction`` outside [0, 1] or ``num_clients < 1``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"attacker fraction must lie in [0, 1], got {fraction!r}")
    if num_clients < 1:
        raise ConfigError(f"num_clients must be >= 1, got {num_clients}")
    g = torch.Generator().manual_seed(seed)
    k = round(fraction * num_clients)
    return frozenset(int(i) for i in torch.randperm(num_clients, generator=g)[:k])


def sign_flip(update: Params, scale: float = 1.0) -> Params:
    """``-scale * update``."""
    return {k: -scale * v for k, v in update.items()}


def scale_update(update: Params, factor: float) -> Params:
    """``factor * update`` (model replacement when ``factor`` ~ clients / server lr)."""
    return {k: factor * v for k, v in update.items()}


def gaussian_update(update: Params, std: float, generator: torch.Generator) -> Params:
    """A random update ``N(0, std**2)`` of the same shapes (the honest update is discarded)."""
    return {
        k: torch.randn(v.shape, generator=generator, dtype=torch.float32).to(v.dtype) * std for k, v in update.items()
    }


def flip_labels(clients: Sequence[ClientData], attackers: Iterable[ClientId], num_classes: int) -> list[ClientData]:
    """Return ``clients`` with the attackers' labels mapped ``y -> num_classes - 1 - y``.

    Raises:
        ConfigError: ``num_classes < 2`` or an attacker's label outside ``0..num_classes-1``.
    """
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    bad = set(attackers)
    out = []
    for c in clients:
        if c.client_id in bad:
            if len(c.y) and (int(c.y.min()) < 0 or int(c.y.max()) >= num_classes):
                raise ConfigError(
                    f"client {c.client_id} has labels outside 0..{num_classes - 1}; pass the right num_classes"
                )
            c = replace(c, y=num_classes - 1 - c.y)
        out.append(c)
    return out


def poison_labels(population: Population, attackers: Iterable[ClientId], num_classes: int) -> Population:
    """A copy of ``population`` whose attackers' examples have labels ``num_classes - 1 - y``
    (the label-flip attack for :func:`~interlearn.federated.simulate`; honest clients and the
    shared inputs are untouched).

    Raises:
        ConfigError: ``num_classes < 2``, or labels outside ``0..num_classes-1``.
    """
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    y = population.y.clone()
    for c in set(attackers):
        idx = population.indices(c)
        if len(idx) and (int(y[idx].min()) < 0 or int(y[idx].max()) >= num_classes):
            raise ConfigError(f"client {c} has labels outside 0..{num_classes - 1}; pass the right num_classes")
        y[idx] = num_classes - 1 - y[idx]
    return Population(population.x, y, population.parts())


class AttackStep(UpdateStep):
    """Client-side update poisoning by the attacker clients (identity for honest ones).

    Args:
        kind: ``"sign_flip"``, ``"scaling"`` or ``"gaussian"`` (label flipping is data-level:
            :func:`flip_labels`).
        attackers: ids of the malicious clients (see :func:`choose_attackers`).
        scale: sign-flip magnitude, scaling factor, or the Gaussian std, by kind (defaults 1.0,
            10.0, 1.0); a positive finite number.

    Raises:
        ConfigError: unknown kind (the message lists the known ones) or a scale that is not a
            positive finite number.
    """

    name = "attack"

    def __init__(self, kind: str, attackers: Iterable[ClientId], *, scale: float | None = None) -> None:
        if kind not in UPDATE_ATTACKS:
            hint = " (label_flip poisons data: use flip_labels)" if kind == "label_flip" else ""
            raise ConfigError(f"unknown update attack {kind!r}{hint}; did you mean {closest(kind, UPDATE_ATTACKS)}?")
        if scale is not None and (
            isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0
        ):
            raise ConfigError(
                f"AttackStep(scale={scale!r}): must be a positive finite number (the {kind} magnitude), or None for the default"
            )
        self.kind = kind
        self.attackers = frozenset(attackers)
        self.scale = float(scale) if scale is not None else {"sign_flip": 1.0, "scaling": 10.0, "gaussian": 1.0}[kind]

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        if result.client_id not in self.attackers:
            return result
        if self.kind == "sign_flip":
            bad = sign_flip(result.update, self.scale)
        elif self.kind == "scaling":
            bad = scale_update(result.update, self.scale)
        else:
            bad = gaussian_update(result.update, self.scale, ctx.generator)
        ctx.notes["attack/count"] = int(ctx.notes.get("attack/count", 0)) + 1
        return replace(result, update=bad)

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        return list(results)

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        return new
