"""Fine-tuning strategies: which parameters learn, at which learning rate, and when they unfreeze.

Every strategy is a small registered function over a model whose head already fits the new task
(see :func:`interlearn.surgery.replace_module`); each runs :func:`interlearn.fit`:

- ``full``: every parameter trains at one learning rate.
- ``last_n``: only the last ``n`` blocks train (``n=1``: the head alone, a linear probe).
- ``discriminative``: every block trains, block ``i`` of ``L`` at ``lr * decay**(L-1-i)``
  (layer-wise learning-rate decay; Howard & Ruder 2018, ULMFiT, use ``decay = 1/2.6``).
- ``gradual``: ULMFiT's gradual unfreezing: epoch ``e`` trains the last ``e + 1`` blocks, with
  discriminative learning rates (Howard & Ruder 2018, arXiv:1801.06146).
- ``freeze_then_unfreeze``: fastai's ``fine_tune`` schedule: ``freeze_epochs`` with only the
  head training at ``lr``, then everything at ``lr / 2`` spread geometrically from
  ``lr / 2 / lr_mult`` (first block) to ``lr / 2`` (head) for ``config.epochs``.
- ``lora``: LoRA adapters through HF PEFT (:mod:`interlearn.lora`); by default on every
  Linear/Conv2d of the body, with the head trained in full.

"Blocks" are the top-level children that own parameters, input side first (for a flat
``nn.Sequential`` of layers, the layers), unless given by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.lora import LoraSpec, apply_lora
from interlearn.registry import Registry
from interlearn.surgery import count_params, freeze, layerwise_groups, leaf_layers, select_params, unfreeze
from interlearn.tasks import Task
from interlearn.training import FitResult, fit

__all__ = [
    "FinetuneSpec",
    "FinetuneResult",
    "FINETUNE_STRATEGIES",
    "register_finetune_strategy",
    "finetune",
    "blocks_of",
]


@dataclass(frozen=True)
class FinetuneSpec:
    """A fine-tuning strategy and its options (options other strategies ignore).

    Attributes:
        strategy: a registered name (see :data:`FINETUNE_STRATEGIES`).
        last_n: ``last_n``: how many blocks (from the output side) train.
        decay: ``discriminative`` / ``gradual``: learning-rate ratio between a block and the
            next one towards the output, in (0, 1]; ULMFiT's 1/2.6 by default.
        freeze_epochs: ``freeze_then_unfreeze``: epochs with only the head training.
        lr_mult: ``freeze_then_unfreeze``: ratio of the head's to the first block's learning
            rate after unfreezing (fastai's default 100).
        blocks: block names (module names or globs, input side first); default: the top-level
            children owning parameters, or the leaf layers when there is only one such child.
        lora: ``lora``: the adapter spec; default: adapters (r=8) on every Linear/Conv2d of the
            body, the last block trained in full.
    """

    strategy: str = "full"
    last_n: int = 1
    decay: float = 1 / 2.6
    freeze_epochs: int = 1
    lr_mult: float = 100.0
    blocks: tuple[str, ...] | None = None
    lora: LoraSpec | None = None

    def __post_init__(self) -> None:
        FINETUNE_STRATEGIES.get(self.strategy)  # an unknown name lists the known ones
        if self.last_n < 1:
            raise ConfigError(f"last_n={self.last_n}: must be >= 1 (1 trains the head only)")
        if not 0 < self.decay <= 1:
            raise ConfigError(f"decay={self.decay}: must be in (0, 1] (1 = the same learning rate everywhere)")
        if self.freeze_epochs < 0:
            raise ConfigError(f"freeze_epochs={self.freeze_epochs}: must be >= 0")
        if not self.lr_mult >= 1:
            raise ConfigError(f"lr_mult={self.lr_mult}: must be >= 1")
        if self.blocks is not None and (isinstance(self.blocks, str) or not self.blocks):
            raise ConfigError(f"blocks={self.blocks!r}: give a non-empty list of module names, input side first")


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes:
        model: the fine-tuned model (a ``peft.PeftModel`` for ``lora``; use
            :func:`interlearn.lora.merge_lora` to export it).
        fit: the training history (phases concatenated for multi-phase strategies).
        strategy: the strategy name.
        trainable_params: parameters trainable at the end of training.
        train_seconds: training wall time.
    """

    model: nn.Module
    fit: FitResult
    strategy: str
    trainable_params: int
    train_seconds: float


StrategyFn = Callable[
    [nn.Module, TensorData, Task, FitConfig, "TensorData | None", FinetuneSpec], "tuple[nn.Module, FitResult]"
]
FINETUNE_STRATEGIES: Registry[StrategyFn] = Registry("fine-tuning strategy", "fine-tuning strategies")
"""Fine-tuning strategies: name -> ``fn(model, train, task, config, val, spec) -> (model, FitResult)``."""


def register_finetune_strategy(name: str) -> Callable[[StrategyFn], StrategyFn]:
    """Register a strategy ``fn(model, train, task, config, val, spec) -> (model, FitResult)``.

    Raises:
        ConfigError: ``name`` is already registered.
    """
    return FINETUNE_STRATEGIES.decorator(name)


def blocks_of(model: nn.Module, names: tuple[str, ...] | None = None) -> list[str]:
    """The model's blocks, input side first (see :class:`FinetuneSpec`).

    Raises:
        ConfigError: a given name matches no parameter (closest names listed), or the model has
            fewer than one block.
    """
    if names is not None:
        for n in names:
            select_params(model, n)  # raises with the closest names
        return list(names)
    top = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
    found = top if len(top) >= 2 else leaf_layers(model)
    if not found:
        raise ConfigError(f"{type(model).__name__} has no parameters to fine-tune")
    return found


def _groups(model: nn.Module, blocks: list[str], lr: float, decay: float) -> list[dict[str, Any]]:
    return layerwise_groups(model, lr, decay, blocks)


@register_finetune_strategy("full")
def _full(
    model: nn.Module, train: TensorData, task: Task, config: FitConfig, val: TensorData | None, spec: FinetuneSpec
) -> tuple[nn.Module, FitResult]:
    unfreeze(model)
    return model, fit(model, train, task, config, val=val)


@register_finetune_strategy("last_n")
def _last_n(
    model: nn.Module, train: TensorData, task: Task, config: FitConfig, val: TensorData | None, spec: FinetuneSpec
) -> tuple[nn.Module, FitResult]:
    blocks = blocks_of(model, spec.blocks)
    if spec.last_n > len(blocks):
        raise ConfigError(
            f"last_n={spec.last_n} but the model has {len(blocks)} blocks {blocks}; use last_n <= {len(blocks)} or strategy='full'"
        )
    freeze(model)
    unfreeze(model, blocks[-spec.last_n :])
    return model, fit(model, train, task, config, val=val)


@register_finetune_strategy("discriminative")
def _discriminative(
    model: nn.Module, train: TensorData, task: Task, config: FitConfig, val: TensorData | None, spec: FinetuneSpec
) -> tuple[nn.Module, FitResult]:
    unfreeze(model)
    groups = _groups(model, blocks_of(model, spec.blocks), config.lr, spec.decay)
    return model, fit(model, train, task, config, val=val, param_groups=groups)


@register_finetune_strategy("gradual")
def _gradual(
    model: nn.Module, train: TensorData, task: Task, config: FitConfig, val: TensorData | None, spec: FinetuneSpec
) -> tuple[nn.Module, FitResult]:
    blocks = blocks_of(model, spec.blocks)
    # The groups include the frozen blocks: a parameter without a gradient is skipped by the
    # optimizer, so unfreezing later needs no new optimizer (and keeps the schedule).
    groups = _groups(model, blocks, config.lr, spec.decay)

    def unfreeze_next(epoch: int, m: nn.Module) -> None:
        freeze(m)
        unfreeze(m, blocks[-min(epoch + 1, len(blocks)) :])

    return model, fit(model, train, task, config, val=val, param_groups=groups, on_epoch_start=unfreeze_next)


@register_finetune_strategy("freeze_then_unfreeze")
def _freeze_then_unfreeze(
    model: nn.Module, train: TensorData, task: Task, config: FitConfig, val: TensorData | None, spec: FinetuneSpec
) -> tuple[nn.Module, FitResult]:
    blocks = blocks_of(model, spec.blocks)
    ckpt = config.checkpoint_dir
    history: list[dict[str, float]] = []
    seconds = 0.0
    if spec.freeze_epochs:
        freeze(model)
        unfreeze(model, blocks[-1])
        head_cfg = dataclasses.replace(
            config, epochs=spec.freeze_epochs, checkpoint_dir=f"{ckpt}/frozen" if ckpt else None
        )
        r1 = fit(model, train, task, head_cfg, val=val)
        history += [{**h, "phase": 0.0} for h in r1.history]
        seconds += r1.train_seconds
    unfreeze(model)
    lr = config.lr / 2  # fastai halves the base learning rate after unfreezing
    # geometric spread from lr / lr_mult (first block) to lr (last block)
    decay = (1.0 / spec.lr_mult) ** (1.0 / max(len(blocks) - 1, 1))
    groups = _groups(model, blocks, lr, decay)
    all_cfg = dataclasses.replace(config, lr=lr, checkpoint_dir=f"{ckpt}/unfrozen" if ckpt else None)
    r2 = fit(model, train, task, all_cfg, val=val, param_groups=groups)
    offset = len(history)
    history += [{**h, "epoch": h["epoch"] + offset, "phase": 1.0} for h in r2.history]
    best = r2.best_epoch + offset if r2.best_epoch >= 0 else -1
    return model, FitResult(history, best, r2.best_metric, seconds + r2.train_seconds, r2.stopped_early)


@register_finetune_strategy("lora")
def _lora(
    model: nn.Module, train: TensorData, task: Task, config: FitConfig, val: TensorData | None, spec: FinetuneSpec
) -> tuple[nn.Module, FitResult]:
    lspec = spec.lora
    if lspec is None:
        blocks = blocks_of(model, spec.blocks)
        if len(blocks) < 2:
            raise ConfigError(
                "strategy='lora' without a LoraSpec needs at least two blocks (a body to adapt and a head); pass lora=LoraSpec(targets=...)"
            )
        lspec = LoraSpec(targets=tuple(blocks[:-1]), modules_to_save=(blocks[-1],))
    peft_model = apply_lora(model, lspec)
    return peft_model, fit(peft_model, train, task, config, val=val)


def finetune(
    model: nn.Module,
    train: TensorData,
    task: Task,
    config: FitConfig | None = None,
    spec: FinetuneSpec | str = "full",
    *,
    val: TensorData | None = None,
) -> FinetuneResult:
    """Fine-tune a pretrained ``model`` (whose head fits ``task``) on ``train``.

    Args:
        model: the pretrained model with its new head in place; trained in place (``lora``
            wraps it in a ``peft.PeftModel``).
        train: the new task's training data.
        task: the new task.
        config: the :class:`FitConfig` (``lr`` is the head's peak learning rate).
        spec: a :class:`FinetuneSpec` or just a strategy name.
        val: validation data (per-epoch metrics, early stopping, best-epoch restore).

    Returns:
        A :class:`FinetuneResult`.

    Raises:
        ConfigError: an unknown strategy (the message lists the known ones) or a bad option.

    Example:
        >>> from interlearn.tasks import classification
        >>> import torch
        >>> m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> data = TensorData(torch.randn(16, 4), torch.randint(0, 2, (16,)))
        >>> r = finetune(m, data, classification(2), FitConfig(epochs=1, device="cpu"), "last_n")
        >>> r.trainable_params
        18
    """
    spec = FinetuneSpec(strategy=spec) if isinstance(spec, str) else spec
    cfg = config or FitConfig()
    trained, result = FINETUNE_STRATEGIES.get(spec.strategy)(model, train, task, cfg, val, spec)
    return FinetuneResult(
        trained, result, spec.strategy, count_params(trained, trainable_only=True), result.train_seconds
    )
