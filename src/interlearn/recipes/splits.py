"""The class split shared by the transfer and fine-tuning recipes: an abundant source task
(some classes, all labels) and a few-label target task (the other classes, relabelled 0..k-1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from interlearn.budgets import sample_per_class
from interlearn.data import TensorData, load_digits, load_mnist
from interlearn.errors import ConfigError

__all__ = ["DataConfig", "split_classes"]


@dataclass(frozen=True)
class DataConfig:
    """The source/target split.

    Attributes:
        dataset: ``"digits"`` (embedded 8x8), ``"mnist"`` or ``"fashion"`` (IDX files).
        data_dir: folder with the IDX files (default ``$INTERLEARN_DATA``).
        source_classes: classes of the abundant related task (all their training labels).
        target_classes: classes of the task of interest (relabelled ``0..k-1``).
        labels_per_class: labelled training images per target class.
        seed: seeds the label draw.
    """

    dataset: Literal["digits", "mnist", "fashion"] = "digits"
    data_dir: str | None = None
    source_classes: tuple[int, ...] = (0, 1, 2, 3, 4)
    target_classes: tuple[int, ...] = (5, 6, 7, 8, 9)
    labels_per_class: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.source_classes or not self.target_classes:
            raise ConfigError("source_classes and target_classes must both be non-empty")
        for name, classes in (("source_classes", self.source_classes), ("target_classes", self.target_classes)):
            dup = sorted({c for c in classes if classes.count(c) > 1})
            if dup:
                raise ConfigError(f"{name}={list(classes)} lists {dup} more than once; list each class once")
        if set(self.source_classes) & set(self.target_classes):
            raise ConfigError(
                f"source_classes {self.source_classes} and target_classes {self.target_classes} overlap; use disjoint classes"
            )
        if any(c < 0 or c > 9 for c in (*self.source_classes, *self.target_classes)):
            raise ConfigError("classes must be in 0..9 for digits/mnist/fashion")
        if self.labels_per_class < 1:
            raise ConfigError(f"labels_per_class={self.labels_per_class}: must be >= 1")


def _relabel(data: TensorData, classes: tuple[int, ...]) -> TensorData:
    keep = torch.zeros(len(data), dtype=torch.bool)
    y = torch.full_like(data.y, -1)
    for i, c in enumerate(classes):
        hit = data.y == c
        keep |= hit
        y[hit] = i
    return TensorData(data.x[keep], y[keep])


def split_classes(cfg: DataConfig, image: bool = True) -> dict[str, TensorData]:
    """``source``/``source_test`` (all labels), ``target_pool``/``target``/``target_test``."""
    if cfg.dataset == "digits":
        train, test = load_digits(seed=cfg.seed, image=image)
    else:
        kind: Literal["mnist", "fashion"] = "mnist" if cfg.dataset == "mnist" else "fashion"
        train, test = (load_mnist(s, cfg.data_dir, kind=kind, flatten=not image) for s in ("train", "test"))
    pool = _relabel(train, cfg.target_classes)
    return {
        "source": _relabel(train, cfg.source_classes),
        "source_test": _relabel(test, cfg.source_classes),
        "target_pool": pool,
        "target": sample_per_class(pool, cfg.labels_per_class, seed=cfg.seed),
        "target_test": _relabel(test, cfg.target_classes),
    }
