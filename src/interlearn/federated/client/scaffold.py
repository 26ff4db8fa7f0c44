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
from torch import nn

from interlearn.errors import ConfigError
from interlearn.federated.client.local_sgd import LocalSGD
from interlearn.types import Params

__all__ = ["ScaffoldClient"]


@dataclass(frozen=True)
class ScaffoldClient(LocalSGD):
    """SCAFFOLD's client update: :class:`LocalSGD` (plain SGD) with control variates.

    Raises:
        ConfigError: an optimizer other than plain SGD (option II assumes ``K`` SGD steps of
            size ``lr``), or FedProx on top.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer != "sgd" or self.momentum != 0.0 or self.weight_decay != 0.0 or self.prox_mu != 0.0:
            raise ConfigError(
                "ScaffoldClient needs plain SGD (optimizer='sgd', momentum=0, weight_decay=0, prox_mu=0): "
                f"got optimizer={self.optimizer!r}, momentum={self.momentum}, weight_decay={self.weight_decay}, prox_mu={self.prox_mu}"
            )

    def _correction(self, params: Params, client_state: Params | None, server_extras: Params) -> Params:
        c = server_extras
        if c.keys() != params.keys():
            raise ConfigError("ScaffoldClient got no server control variate: pair it with the 'scaffold' strategy")
        ci = client_state if client_state is not None else {k: torch.zeros_like(v) for k, v in params.items()}
        # the term added to every gradient: c - c_i (and c_i itself, needed by _finish)
        out = {f"corr/{k}": c[k] - ci[k] for k in params}
        out.update({f"ci/{k}": ci[k] for k in params})
        out.update({f"c/{k}": c[k] for k in params})
        return out

    @torch.no_grad()
    def _correct_grads(self, named: list[tuple[str, nn.Parameter]], correction: Params) -> None:
        for k, p in named:
            if p.grad is not None:
                p.grad.add_(correction[f"corr/{k}"])

    def _finish(
        self, params: Params, local: Params, steps: int, client_state: Params | None, correction: Params, trainable: set[str]
    ) -> tuple[Params, Params | None]:
        new_ci: Params = {}
        dc: Params = {}
        for k, x in params.items():
            ci = correction[f"ci/{k}"]
            if k in trainable:
                new_ci[k] = ci - correction[f"c/{k}"] + (x - local[k]) / (steps * self.lr)
            else:
                new_ci[k] = ci
            dc[k] = new_ci[k] - ci
        return dc, new_ci

