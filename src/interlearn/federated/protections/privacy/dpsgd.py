"""Sample-level DP-SGD for a client's local training, through Opacus.

DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy", CCS): Poisson-sampled
batches, per-example gradient clipping to ``max_grad_norm`` and Gaussian noise of std
``noise_multiplier * max_grad_norm`` on the summed gradient. Opacus (Yousefpour et al. 2021)
does all three and accounts for them; each client keeps its own Opacus ``PrivacyEngine`` so its
epsilon (over its own examples) accumulates across the rounds it takes part in.

Runs on the sequential engine (Opacus hooks a real ``nn.Module``), not inside a vmap.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData, ClientResult
from interlearn.federated.protections.privacy.accounting import ACCOUNTANTS
from interlearn.types import ClientId, Params

__all__ = ["DPSGDClientUpdate"]


class DPSGDClientUpdate:
    """A ``ClientUpdate`` that trains locally with Opacus DP-SGD.

    Args:
        epochs: local epochs (each is ``len(data) / batch_size`` Poisson-sampled steps).
        batch_size: expected batch size (sampling rate = batch_size / client examples).
        lr: SGD learning rate.
        noise_multiplier: DP-SGD noise multiplier (> 0).
        max_grad_norm: per-example gradient clip norm (> 0).
        delta: delta used to report the client's epsilon (metric ``dpsgd/epsilon``).
        accountant: Opacus accountant, ``"rdp"``, ``"prv"`` or ``"gdp"``.
        loss_fn: ``loss_fn(output, target)`` with mean reduction; cross-entropy by default.

    Raises:
        ConfigError: a value out of range, or a model Opacus cannot make private (e.g. with
            BatchNorm; ``opacus.validators.ModuleValidator.fix(model)`` swaps it for GroupNorm).
    """

    def __init__(
        self,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        lr: float = 0.05,
        noise_multiplier: float = 1.0,
        max_grad_norm: float = 1.0,
        delta: float = 1e-5,
        accountant: str = "rdp",
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if epochs < 1 or batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        if not lr > 0 or not noise_multiplier > 0 or not max_grad_norm > 0:
            raise ConfigError(
                f"lr, noise_multiplier and max_grad_norm must be > 0, got {lr}, {noise_multiplier}, {max_grad_norm}"
            )
        if not 0 < delta < 1:
            raise ConfigError(f"delta must lie in (0, 1), got {delta}")
        if accountant not in ACCOUNTANTS:
            raise ConfigError(f"unknown accountant {accountant!r}; use one of {ACCOUNTANTS}")
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.noise_multiplier, self.max_grad_norm = noise_multiplier, max_grad_norm
        self.delta, self.accountant = delta, accountant
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        self._engines: dict[ClientId, Any] = {}  # Opacus PrivacyEngines (Opacus has no type information)
        self._datasets: dict[ClientId, TensorDataset] = {}

    def epsilon(self, client_id: ClientId) -> float:
        """Epsilon spent so far on ``client_id``'s examples (0.0 if it never trained)."""
        engine = self._engines.get(client_id)
        return 0.0 if engine is None else float(engine.get_epsilon(self.delta))

    def __call__(
        self,
        model: torch.nn.Module,
        params: Params,
        data: ClientData,
        client_state: Params | None,
        server_extras: Params,
        generator: torch.Generator,
    ) -> tuple[ClientResult, Params | None]:
        _check_private(model)
        local = copy.deepcopy(model)
        _load(local, params)
        cid = data.client_id
        module, opt, loader = self._make_private(local, data, generator)
        total, steps = self._train(module, opt, loader)
        trained = dict(local.named_parameters())
        update = {k: (trained[k].detach() - v) if k in trained else torch.zeros_like(v) for k, v in params.items()}
        metrics = {
            "loss": total / max(steps, 1),
            "steps": float(steps),  # non-empty batches
            "dpsgd/epsilon": float(self._engines[cid].get_epsilon(self.delta)),
        }
        return ClientResult(cid, update, float(len(data)), metrics), client_state

    def _make_private(self, local: torch.nn.Module, data: ClientData, generator: torch.Generator) -> tuple[Any, ...]:
        """``(module, optimizer, loader)`` wrapped by the client's own Opacus ``PrivacyEngine``."""
        from opacus import PrivacyEngine

        cid = data.client_id
        if cid not in self._engines:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Secure RNG turned off")
                self._engines[cid] = PrivacyEngine(accountant=self.accountant)
        ds = self._datasets.get(cid)
        if ds is None or len(ds) != len(data):
            ds = TensorDataset(data.x, data.y)
            self._datasets[cid] = ds
        loader = DataLoader(ds, batch_size=min(self.batch_size, len(data)), generator=generator)
        opt = torch.optim.SGD(local.parameters(), lr=self.lr)
        return tuple(
            self._engines[cid].make_private(
                module=local,
                optimizer=opt,
                data_loader=loader,
                noise_multiplier=self.noise_multiplier,
                max_grad_norm=self.max_grad_norm,
                poisson_sampling=True,
                noise_generator=generator,
            )
        )

    def _train(self, module: Any, opt: Any, loader: Any) -> tuple[float, int]:
        """The local epochs of DP-SGD; the summed loss and the count of non-empty batches."""
        module.train()
        total, steps = 0.0, 0
        for _ in range(self.epochs):
            for xb, yb in loader:
                opt.zero_grad()
                out = module(xb)
                # an empty Poisson batch still takes a (noise-only) step, as DP-SGD requires
                loss = self.loss_fn(out, yb) if len(xb) else out.sum() * 0.0
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    loss.backward()
                opt.step()
                if len(xb):
                    total += float(loss.detach())
                    steps += 1
        return total, steps


def _check_private(model: torch.nn.Module) -> None:
    """Refuse a model Opacus cannot make private (BatchNorm, ...), naming the fix."""
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise ConfigError(
            f"Opacus cannot make this model private: {errors[0]}. "
            "Call opacus.validators.ModuleValidator.fix(model) first (BatchNorm -> GroupNorm)."
        )


def _load(module: torch.nn.Module, params: Params) -> None:
    """Copy ``params`` into ``module``'s parameters/buffers of the same name."""
    named = dict(module.named_parameters()) | dict(module.named_buffers())
    unknown = [k for k in params if k not in named]
    if unknown:
        raise ConfigError(f"params has names the model does not: {unknown[:5]}")
    with torch.no_grad():
        for k, v in params.items():
            named[k].copy_(v)
