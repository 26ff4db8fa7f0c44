"""Feature caching for transfer learning: run the frozen part once, train the head on its output.

When the frozen part of a model is deterministic (all its parameters frozen, evaluated in eval
mode so dropout is off and BatchNorm uses its running statistics, and no input augmentation),
its output for a given example never changes during training. Forwarding it every epoch is
then wasted work: :func:`fit_head` computes the features once (:func:`extract_features`) and
trains only the head on them, which gives the same result as the uncached path (tested) at a
fraction of the cost (``benchmarks/feature_cache.py``). This is the classic "bottleneck
features" / linear-probe set-up (Donahue et al. 2014, DeCAF; Razavian et al. 2014).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.surgery import check_head_input
from interlearn.tasks import Task
from interlearn.training import FitResult, batches, fit, resolve_device

__all__ = ["extract_features", "cache_status", "fit_head", "HeadFit"]


@torch.no_grad()
def extract_features(
    body: nn.Module, data: TensorData, batch_size: int = 512, device: str | torch.device = "cpu"
) -> TensorData:
    """``body``'s output for every example of ``data``, computed once in eval mode.

    Args:
        body: the frozen part (any module; an empty ``nn.Sequential`` returns the inputs).
        data: examples; targets are carried over unchanged.
        batch_size: examples per forward pass.
        device: where to run ``body``; features are returned on the CPU.

    Returns:
        ``TensorData(features, data.y)``.
    """
    dev = resolve_device(device) if isinstance(device, str) else device
    was_training = body.training
    body.to(dev).eval()
    outs = [body(data.x[idx].to(dev)).cpu() for idx in batches(len(data), batch_size)]
    body.train(was_training)
    feats = torch.cat(outs) if outs else data.x.new_zeros((0,))
    return TensorData(feats, data.y)


def cache_status(
    body: nn.Module, sample: torch.Tensor | None = None, augment: Callable[..., Any] | None = None
) -> tuple[bool, str]:
    """Whether ``body``'s features can be cached, and why not when they cannot.

    Caching is exact only when the body is frozen and deterministic in eval mode and the inputs
    are not augmented. With ``sample``, the body is also run twice on it and must give identical
    outputs (this catches custom modules that are random even in eval mode).

    Returns:
        ``(True, "")`` or ``(False, reason)``.
    """
    if augment is not None:
        return False, "inputs are augmented, so the frozen part sees different inputs every epoch"
    trainable = [n for n, p in body.named_parameters() if p.requires_grad]
    if trainable:
        return (
            False,
            f"the body has trainable parameters ({', '.join(trainable[:3])}{' ...' if len(trainable) > 3 else ''})",
        )
    if sample is not None and len(sample):
        was = body.training
        body.eval()
        with torch.no_grad():
            sample = sample.to(_device_of(body))
            a, b = body(sample), body(sample)
        body.train(was)
        if not torch.equal(a, b):
            return False, "the body gives different outputs for the same input in eval mode (a random layer)"
    return True, ""


@dataclass
class HeadFit:
    """What :func:`fit_head` returns.

    Attributes:
        fit: the :class:`FitResult` of training the head.
        cached: whether the head trained on cached features.
        reason: why caching was not used (empty when it was).
        cache_seconds: time spent computing the features (0 when not cached).
    """

    fit: FitResult
    cached: bool
    reason: str = ""
    cache_seconds: float = 0.0


def _device_of(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


class _FrozenThenHead(nn.Module):
    """``head(body(x))`` with ``body`` kept in eval mode and out of autograd (the uncached path)."""

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body, self.head = body, head

    def train(self, mode: bool = True) -> _FrozenThenHead:
        super().train(mode)
        self.body.eval()  # the frozen part is always evaluated deterministically
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.body(x)
        return self.head(feats)


def fit_head(
    body: nn.Module,
    head: nn.Module,
    train: TensorData,
    task: Task,
    config: FitConfig | None = None,
    *,
    val: TensorData | None = None,
    cache: bool = True,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    features: tuple[TensorData, TensorData | None] | None = None,
) -> HeadFit:
    """Train ``head`` on the output of the frozen ``body``; cache the features when exact.

    Both paths evaluate ``body`` in eval mode and see the same batches in the same order, so
    the cached path trains the same head as forwarding ``body`` every epoch.

    Args:
        body: the frozen part (its parameters must not require gradients).
        head: the new layers, trained in place.
        train: training examples (raw inputs).
        task: loss and metrics.
        config: training settings for the head.
        val: validation examples (raw inputs) for metrics / early stopping.
        cache: use cached features when :func:`cache_status` allows it.
        augment: input augmentation (disables caching).
        features: precomputed ``(train_features, val_features)`` of ``body`` (e.g. shared across
            several heads by :mod:`interlearn.autocut`); used only when caching applies.

    Returns:
        A :class:`HeadFit`.

    Raises:
        ConfigError: ``body`` has trainable parameters (freeze it, or fine-tune instead).
        ShapeError: ``head`` does not accept ``body``'s features (both shapes named).
    """
    trainable = [n for n, p in body.named_parameters() if p.requires_grad]
    if trainable:
        raise ConfigError(
            f"fit_head: the body has trainable parameters {trainable[:3]}; freeze it first "
            "(interlearn.surgery.freeze(body)) or use fit() to fine-tune the whole model"
        )
    cfg = config or FitConfig()
    ok, reason = cache_status(body, train.x[:2], augment) if cache else (False, "caching turned off")
    if ok:
        t0 = time.perf_counter()
        if features is not None:
            ftrain, fval = features
        else:
            ftrain = extract_features(body, train, device=cfg.device)
            fval = extract_features(body, val, device=cfg.device) if val is not None else None
        seconds = time.perf_counter() - t0
        check_head_input(ftrain.x[:2], head)
        result = fit(head, ftrain, task, cfg, val=fval)
        return HeadFit(result, True, "", seconds)
    check_head_input(extract_features(body, train.subset(range(min(2, len(train)))), device=_device_of(body)).x, head)
    model = _FrozenThenHead(body, head)
    result = fit(model, train, task, cfg, val=val, augment=augment)
    return HeadFit(result, False, reason, 0.0)
