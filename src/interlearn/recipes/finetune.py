"""The ``finetune`` recipe: pretrain on source classes, fine-tune on a few labels of new classes.

A base model learns the source classes from all their training images; its head is replaced by
a new one for the target classes, and each listed strategy fine-tunes a copy of it on
``labels_per_class`` images per target class. The summary has one row per strategy: accuracy
on the new task, forgetting on the source task (:mod:`interlearn.forgetting`), trainable
parameters and train time. With its defaults it runs on the embedded digits.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.errors import ConfigError
from interlearn.finetune import FinetuneSpec, finetune
from interlearn.forgetting import forgetting_table, measure_forgetting
from interlearn.lora import save_adapter
from interlearn.models.small_cnn import small_cnn
from interlearn.recipes.splits import DataConfig
from interlearn.recipes.splits import split_classes as _split_classes
from interlearn.surgery import count_params, replace_module
from interlearn.tasks import classification
from interlearn.tracking import section
from interlearn.training import evaluate, fit

__all__ = ["DataConfig", "Config", "run", "split_classes"]


@dataclass(frozen=True)
class Config:
    """The ``finetune`` recipe.

    Attributes:
        data: the source/target split.
        model: ``"mlp"`` (64/784-128-64-k) or ``"cnn"`` (:func:`interlearn.models.small_cnn.small_cnn`).
        pretrain: training of the base model on the source task.
        finetune: training on the target task (shared by all strategies).
        strategies: the strategies compared (:class:`interlearn.finetune.FinetuneSpec`).
        seed: seeds model initialisation.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: Literal["mlp", "cnn"] = "mlp"
    pretrain: FitConfig = field(default_factory=lambda: FitConfig(epochs=20, batch_size=64, lr=3e-3, progress=False))
    finetune: FitConfig = field(default_factory=lambda: FitConfig(epochs=60, batch_size=16, lr=3e-3, progress=False))
    strategies: tuple[FinetuneSpec, ...] = (FinetuneSpec("full"), FinetuneSpec("lora"))
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.strategies:
            raise ConfigError("strategies is empty: list at least one, e.g. [{strategy: full}]")


def split_classes(cfg: DataConfig, image: bool = False) -> dict[str, TensorData]:
    """The shared class split (see :mod:`interlearn.recipes.splits`), flat inputs by default."""
    return _split_classes(cfg, image=image)


def _model(kind: str, inputs: torch.Tensor, classes: int, seed: int) -> tuple[nn.Module, str]:
    """The base model and the name of its head."""
    torch.manual_seed(seed)
    if kind == "cnn":
        return small_cnn(classes, image_size=inputs.shape[-1], in_channels=inputs.shape[1], seed=seed), "fc2"
    d = inputs[0].numel()
    return nn.Sequential(
        nn.Flatten(), nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, classes)
    ), "5"


def run(config: Config, run_dir: Path, progress: bool = False) -> dict[str, dict[str, Any]]:
    """Run the recipe; write ``forgetting.md`` (and LoRA adapters) into ``run_dir``.

    Progress bars follow the ``progress`` fields of the recipe's fit configs.

    Returns:
        Summary rows: ``pretrained`` (source task) and ``finetune_<strategy>`` per strategy, each
        with ``accuracy`` (new task), ``trainable_params``, ``train_seconds``, ``source_before``,
        ``source_after`` and ``forgetting``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = split_classes(config.data, image=config.model == "cnn")
    src_task, tgt_task = (
        classification(len(config.data.source_classes)),
        classification(len(config.data.target_classes)),
    )
    base, head = _model(config.model, data["source"].x, src_task.num_outputs, config.seed)
    t0 = time.perf_counter()
    with section("pretrain"):
        fit(base, data["source"], src_task, config.pretrain)
    rows: dict[str, dict[str, Any]] = {
        "pretrained": {
            "accuracy": evaluate(base, data["source_test"], src_task)["accuracy"],
            "trainable_params": count_params(base),
            "train_seconds": time.perf_counter() - t0,
            "note": "source task",
        }
    }
    reports = []
    for i, spec in enumerate(config.strategies):
        name = (
            f"finetune_{spec.strategy}" if f"finetune_{spec.strategy}" not in rows else f"finetune_{spec.strategy}_{i}"
        )
        model = copy.deepcopy(base)
        hidden = dict(model.named_modules())[head].in_features
        torch.manual_seed(config.seed + 1)  # the same new head for every strategy
        replace_module(model, head, nn.Linear(hidden, tgt_task.num_outputs))
        with section(name):
            result = finetune(model, data["target"], tgt_task, config.finetune, spec)
        rep = measure_forgetting(
            name,
            result.model,
            base,
            head,
            data["target_test"],
            tgt_task,
            data["source_test"],
            src_task,
            result.trainable_params,
        )
        reports.append(rep)
        rows[name] = {**rep.as_row(), "train_seconds": result.train_seconds}
        if spec.strategy == "lora":
            save_adapter(result.model, run_dir / f"{name}.adapter.safetensors")
    (run_dir / "forgetting.md").write_text(forgetting_table(reports) + "\n")
    return rows
