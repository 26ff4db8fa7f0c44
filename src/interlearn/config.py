"""The training configuration, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from interlearn.errors import ConfigError

__all__ = ["FitConfig", "check_device", "resolve_device", "step_config", "MAX_LR"]

MAX_LR = 10.0
"""Largest learning rate accepted: a typo guard (``1e12`` is never meant)."""

_OPTIMIZERS = ("sgd", "adamw", "adam")
_SCHEDULES = ("constant", "cosine", "onecycle", "linear")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> the first CUDA device when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_device(device: str) -> None:
    """Raise :class:`ConfigError` unless ``device`` is ``"auto"`` or a device this machine has.

    Raises:
        ConfigError: an unparsable name, or a CUDA/MPS device that is not there (the message
            says what is available and suggests ``auto`` or ``cpu``).
    """
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a device name; use 'auto', 'cpu', 'cuda' or 'cuda:N' ({exc})"
        ) from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if dev.index is None else dev.index
        if index >= count:
            have = f"{count} CUDA device(s) (cuda:0..cuda:{count - 1})" if count else "no CUDA device"
            raise ConfigError(f"device={device!r} is not available: this machine has {have}; use device: auto or cpu")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device!r} is not available on this machine; use device: auto or cpu")


@dataclass(frozen=True)
class FitConfig:
    """How :func:`interlearn.fit` trains.

    Attributes:
        epochs: passes over the training data.
        batch_size: examples per step.
        optimizer: ``"sgd"`` (with ``momentum``), ``"adamw"`` or ``"adam"``.
        lr: peak learning rate (per-group ``lr`` in parameter groups overrides it).
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        momentum: SGD momentum.
        schedule: ``"constant"``, ``"cosine"`` (with linear warmup), ``"linear"`` decay or
            ``"onecycle"`` (Smith 2018, as in fastai's fit_one_cycle).
        warmup: fraction of total steps spent warming up linearly (cosine/linear schedules).
        clip_grad_norm: max global gradient norm, or ``None`` for no clipping.
        amp: mixed precision (float16 autocast + GradScaler) when training on a CUDA device.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        patience: early stopping after this many evaluations without improvement (``None``: off).
        restore_best: at the end, load the weights of the best validation epoch.
        progress: show a progress bar (rich).
        checkpoint_dir: where to save a checkpoint after every epoch (``None``: no checkpoints).
        resume: continue from the checkpoint in ``checkpoint_dir`` if there is one.
        seed: seeds the batch order (per epoch) and torch's RNG.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: Literal["sgd", "adamw", "adam"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: Literal["constant", "cosine", "onecycle", "linear"] = "cosine"
    warmup: float = 0.0
    clip_grad_norm: float | None = None
    amp: bool = True
    device: str = "auto"
    patience: int | None = None
    restore_best: bool = True
    progress: bool = False
    checkpoint_dir: str | None = None
    resume: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs}: must be >= 1")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size}: must be >= 1")
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r}: choose one of {_OPTIMIZERS}")
        if self.schedule not in _SCHEDULES:
            raise ConfigError(f"schedule={self.schedule!r}: choose one of {_SCHEDULES}")
        if not 0 < self.lr <= MAX_LR:
            raise ConfigError(
                f"lr={self.lr:g}: must be in (0, {MAX_LR:g}]; typical values are 1e-4 to 1e-1 (Adam) or 1e-2 to 1 (SGD)"
            )
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed}: must be a non-negative integer")
        check_device(self.device)
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay}: must be >= 0")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup={self.warmup}: a fraction of the steps in [0, 1)")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ConfigError(f"clip_grad_norm={self.clip_grad_norm}: must be > 0 or None")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience={self.patience}: must be >= 1 or None")
        if self.resume and not self.checkpoint_dir:
            raise ConfigError("resume=True needs checkpoint_dir")


def step_config(n: int, steps: int, batch_size: int, lr: float, weight_decay: float = 0.0, seed: int = 0) -> FitConfig:
    """A :class:`FitConfig` giving about ``steps`` optimizer steps over ``n`` examples (AdamW,
    10% warm-up then cosine decay; the budget :func:`interlearn.transfer.transfer` and the
    label-budget comparisons train with)."""
    bs = max(1, min(batch_size, n))
    per_epoch = -(-n // bs)
    return FitConfig(
        epochs=max(1, round(steps / per_epoch)),
        batch_size=bs,
        lr=lr,
        weight_decay=weight_decay,
        warmup=0.1,
        schedule="cosine",
        seed=seed,
        restore_best=False,
    )
