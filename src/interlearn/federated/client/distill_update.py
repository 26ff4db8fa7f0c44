"""Federated distillation of a small on-device model from a trained global model.

Hinton, Vinyals & Dean 2015 ("Distilling the Knowledge in a Neural Network") on the clients:
every device already holds the trained global model (the *teacher*), so each one distils it
into the small *student* on its own data, with the student's updates averaged as in FedAvg
(McMahan et al. 2017). Raw data stays on the device; only student updates travel. The keyboard
uses it for its on-device character model (:func:`interlearn.recipes.keyboard.distill_ondevice`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from interlearn.distill import kd_loss
from interlearn.errors import ConfigError
from interlearn.federated.client.local_sgd import LocalSGD
from interlearn.types import Params

__all__ = ["FedDistillUpdate"]


@dataclass(frozen=True)
class FedDistillUpdate(LocalSGD):
    """:class:`LocalSGD` whose objective is :func:`~interlearn.distill.kd_loss` of the student
    against the teacher on the client's own data. The local steps are LocalSGD's own (every
    engine runs them, batched included).

    Attributes:
        teacher: the global model with its trained weights loaded (evaluated, never trained).
        temperature, alpha: see :func:`~interlearn.distill.kd_loss`.
        max_steps: cap on local steps per round (``None``: full epochs).
        (and every :class:`LocalSGD` field: epochs, batch_size, lr, ...)

    Raises:
        ConfigError: no teacher, or a value out of range.
    """

    teacher: nn.Module | None = field(default=None, repr=False, compare=False)
    temperature: float = 2.0
    alpha: float = 0.7
    max_steps: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.teacher is None:
            raise ConfigError("FedDistillUpdate needs teacher=<the trained global model>")
        if self.temperature <= 0 or not 0 <= self.alpha <= 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ConfigError(
                f"FedDistillUpdate: temperature={self.temperature}, alpha={self.alpha}, max_steps={self.max_steps}; "
                "need temperature > 0, alpha in [0, 1], max_steps >= 1 or None"
            )

    def schedule(self, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        """The epochs' minibatches, cut at ``max_steps``."""
        return super().schedule(n, generator)[: self.max_steps]

    def objective(self, model: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:func:`~interlearn.distill.kd_loss` of the student (``params``) against the teacher on this batch."""
        teacher = self.teacher
        if teacher is None:  # checked in __post_init__; for the type checker
            raise ConfigError("FedDistillUpdate needs teacher=<the trained global model>")
        teacher.eval()
        with torch.no_grad():
            t = teacher(x)
        return kd_loss(functional_call(model, params, (x,)), t, y, self.temperature, self.alpha)
