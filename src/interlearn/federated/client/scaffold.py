"""SCAFFOLD, client side (Karimireddy et al. 2020, "SCAFFOLD: Stochastic Controlled Averaging
for Federated Learning", ICML, Algorithm 1, control-variate option II).

Each local step uses the corrected gradient ``g(y) - c_i + c`` (``c`` arrives from the server
as ``server_extras``; ``c_i`` is the client's private state, zeros before its first round).
After ``K`` steps with learning rate ``lr``::

    c_i+ = c_i - c + (x - y) / (K * lr)        (option II)
    upload (y - x, c_i+ - c_i); keep c_i+ as the new client state

Control variates cover the trainable parameters; other entries (buffers, frozen weights) get
zero control-variate deltas.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interlearn.errors import ConfigError
from interlearn.federated.client.local_sgd import LocalSGD
from interlearn.federated.client.step import StepContext
from interlearn.types import Params

__all__ = ["ScaffoldClient", "scaffold_control_update"]


def scaffold_control_update(
    ci: Params, c: Params, start: Params, end: Params, steps: int, lr: float, trainable: set[str]
) -> Params:
    """Option II of SCAFFOLD: ``c_i+ = c_i - c + (x - y) / (K lr)`` for trainable entries
    (``x`` = ``start``, the global params; ``y`` = ``end``, the local ones); others keep ``c_i``."""
    return {k: ci[k] - c[k] + (start[k] - end[k]) / (steps * lr) if k in trainable else ci[k] for k in start}


@dataclass(frozen=True)
class ScaffoldClient(LocalSGD):
    """SCAFFOLD's client update: :class:`LocalSGD` (plain SGD) with control variates.

    Raises:
        ConfigError: an optimizer other than plain SGD (option II assumes ``K`` SGD steps of
            size ``lr``), or FedProx on top; no server control variate (use the ``scaffold``
            strategy).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer != "sgd" or self.momentum != 0.0 or self.weight_decay != 0.0 or self.prox_mu != 0.0:
            raise ConfigError(
                "ScaffoldClient needs plain SGD (optimizer='sgd', momentum=0, weight_decay=0, prox_mu=0): "
                f"got optimizer={self.optimizer!r}, momentum={self.momentum}, weight_decay={self.weight_decay}, prox_mu={self.prox_mu}"
            )

    def _ci(self, client_state: Params | None, ctx: StepContext) -> Params:
        if ctx.server_extras.keys() != ctx.global_params.keys():
            raise ConfigError("ScaffoldClient got no server control variate: pair it with the 'scaffold' strategy")
        if client_state is None:
            return {k: torch.zeros_like(v) for k, v in ctx.global_params.items()}
        return client_state

    def init_state(self, params: Params, client_state: Params | None, ctx: StepContext) -> Params:
        """The correction ``c - c_i`` added to every step's gradient."""
        ci = self._ci(client_state, ctx)
        return {f"corr/{k}": ctx.server_extras[k] - ci[k] for k in ctx.trainable}

    def apply(self, params: Params, grads: Params, state: Params, ctx: StepContext, t: int) -> tuple[Params, Params]:
        """Plain SGD on the corrected gradient ``g - c_i + c``."""
        return super().apply(params, {k: g + state[f"corr/{k}"] for k, g in grads.items()}, state, ctx, t)

    def finish(
        self, params: Params, state: Params, client_state: Params | None, ctx: StepContext, steps: int
    ) -> tuple[Params, Params, Params | None]:
        """Upload ``(y - x, c_i+ - c_i)`` and keep ``c_i+``."""
        ci = self._ci(client_state, ctx)
        new_ci = scaffold_control_update(
            ci, ctx.server_extras, ctx.global_params, params, steps, self.round_lr, set(ctx.trainable)
        )
        update = {k: params[k] - v for k, v in ctx.global_params.items()}
        return update, {k: new_ci[k] - ci[k] for k in new_ci}, new_ci
