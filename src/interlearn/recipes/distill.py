"""The ``distill`` recipe: a large teacher -> a small student (Hinton et al. 2015).

Trains the teacher, then the student twice from the same initial weights and with the same batch
order: alone on the hard labels, and with :func:`interlearn.distill.distill`. The summary has
one row per model with accuracy, test errors, parameters, safetensors bytes and CPU latency at
batch 1 and 256 (:func:`interlearn.distill.compare_models`). Its defaults run on the embedded
digits (a 2x256 MLP teacher -> a 16-unit student).
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
from interlearn.data import TensorData, load_digits, load_mnist
from interlearn.distill import compare_models, distill
from interlearn.errors import ConfigError
from interlearn.models.small_cnn import small_cnn
from interlearn.surgery import count_params
from interlearn.tasks import classification
from interlearn.tracking import section
from interlearn.training import fit

__all__ = ["Config", "run", "mlp"]


@dataclass(frozen=True)
class Config:
    """The ``distill`` recipe.

    Attributes:
        dataset: ``"digits"`` (embedded), ``"mnist"`` or ``"fashion"``.
        data_dir: folder with the IDX files (default ``$INTERLEARN_DATA``).
        teacher: ``"mlp"`` (``teacher_hidden`` layers with dropout) or ``"cnn"`` (small CNN).
        teacher_hidden: hidden widths of an MLP teacher.
        teacher_dropout: dropout of the teacher's hidden layers.
        student_hidden: hidden widths of the MLP student.
        temperature: distillation temperature ``T``.
        alpha: weight of the soft term (``1 - alpha`` on the hard labels).
        teacher_fit: the teacher's training.
        student_fit: both students' training (same seed: same batch order).
        latency_repeats: timed forward passes per latency measurement (median reported).
        seed: seeds initial weights (the two students share theirs).
    """

    dataset: Literal["digits", "mnist", "fashion"] = "digits"
    data_dir: str | None = None
    teacher: Literal["mlp", "cnn"] = "mlp"
    teacher_hidden: tuple[int, ...] = (256, 256)
    teacher_dropout: float = 0.2
    student_hidden: tuple[int, ...] = (16,)
    temperature: float = 4.0
    alpha: float = 0.9
    teacher_fit: FitConfig = field(
        default_factory=lambda: FitConfig(epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-4, progress=False)
    )
    student_fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=60, batch_size=64, lr=3e-3, progress=False))
    latency_repeats: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature}: must be > 0")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha={self.alpha}: must be in [0, 1]")
        if any(h < 1 for h in (*self.teacher_hidden, *self.student_hidden)):
            raise ConfigError(
                f"hidden sizes must be >= 1: teacher_hidden={self.teacher_hidden}, student_hidden={self.student_hidden}"
            )
        if not 0 <= self.teacher_dropout < 1:
            raise ConfigError(f"teacher_dropout={self.teacher_dropout}: must be in [0, 1)")
        if self.latency_repeats < 1:
            raise ConfigError(f"latency_repeats={self.latency_repeats}: must be >= 1")


def mlp(inputs: int, hidden: tuple[int, ...], classes: int, dropout: float = 0.0) -> nn.Sequential:
    """``Flatten -> [Linear -> ReLU (-> Dropout)] * len(hidden) -> Linear``."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def _load(cfg: Config) -> tuple[TensorData, TensorData]:
    image = cfg.teacher == "cnn"
    if cfg.dataset == "digits":
        return load_digits(seed=cfg.seed, image=image)
    kind: Literal["mnist", "fashion"] = "mnist" if cfg.dataset == "mnist" else "fashion"
    return load_mnist("train", cfg.data_dir, kind=kind, flatten=not image), load_mnist(
        "test", cfg.data_dir, kind=kind, flatten=not image
    )


def run(config: Config, run_dir: Path, progress: bool = False) -> dict[str, dict[str, Any]]:
    """Run the recipe.

    Returns:
        Rows ``teacher``, ``student_alone`` and ``distilled``: ``accuracy``, ``errors``,
        ``trainable_params``, ``params``, ``bytes``, ``latency_ms_b1``, ``latency_ms_b256``,
        ``train_seconds``.
    """
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    train, test = _load(config)
    task = classification(10)
    d_in = train.x[0].numel()
    torch.manual_seed(config.seed)
    if config.teacher == "cnn":
        teacher: nn.Module = small_cnn(
            10,
            image_size=train.x.shape[-1],
            in_channels=train.x.shape[1],
            dropout=config.teacher_dropout,
            seed=config.seed,
        )
    else:
        teacher = mlp(d_in, config.teacher_hidden, 10, config.teacher_dropout)
    t0 = time.perf_counter()
    with section("teacher"):
        fit(teacher, train, task, config.teacher_fit)
    seconds = {"teacher": time.perf_counter() - t0}

    torch.manual_seed(config.seed + 1)
    init = mlp(d_in, config.student_hidden, 10)
    alone, distilled = copy.deepcopy(init), copy.deepcopy(init)
    t0 = time.perf_counter()
    with section("student_alone"):
        fit(alone, train, task, config.student_fit)
    seconds["student_alone"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with section("distilled"):
        distill(teacher, distilled, train, task, config.student_fit, temperature=config.temperature, alpha=config.alpha)
    seconds["distilled"] = time.perf_counter() - t0

    models = {"teacher": teacher, "student_alone": alone, "distilled": distilled}
    extra = {k: {"train_seconds": seconds[k], "trainable_params": count_params(m)} for k, m in models.items()}
    rows = compare_models(models, test, task, repeats=config.latency_repeats, extra=extra)
    return {
        k: {"accuracy": r.pop("accuracy"), "trainable_params": r.pop("trainable_params"), **r} for k, r in rows.items()
    }
