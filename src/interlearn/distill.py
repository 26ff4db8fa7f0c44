"""Knowledge distillation: a small student learns from a large teacher's softened outputs.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", arXiv:1503.02531.
The student minimises ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)``:
the teacher's probabilities at a high temperature ``T`` carry its "dark knowledge" (which wrong
classes look alike); the ``T^2`` factor keeps the soft term's gradients on the same scale as the
hard term's when ``T`` changes (the gradients of the soft term scale as ``1/T^2``).

:func:`distill` trains the student with :func:`interlearn.fit` through its ``compute_loss``
hook. When the student sees no augmentation the teacher's logits are fixed, so they are computed
once (in eval mode) and looked up by example index instead of running the teacher every step.
:func:`compare_models` measures what distillation is for: parameters, size on disk
(:func:`~interlearn.ondevice.quantize.model_bytes`), accuracy and CPU latency at batch 1 and 256.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError, ShapeError
from interlearn.ondevice.quantize import model_bytes
from interlearn.surgery import count_params
from interlearn.tasks import Task
from interlearn.training import FitResult, batches, evaluate, fit, resolve_device

__all__ = ["kd_loss", "teacher_logits", "distill", "cpu_latency", "compare_models"]


def _check_hparams(temperature: float, alpha: float) -> None:
    if not temperature > 0:
        raise ConfigError(f"temperature={temperature}: must be > 0 (Hinton et al. use 1..20; 4 is a common default)")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha={alpha}: the weight of the soft (teacher) term must be in [0, 1]")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Hinton et al.'s distillation loss (mean over the predictions).

    ``alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(student_logits, targets)``.

    The class dimension is 1, as in ``F.cross_entropy``: (batch, classes) logits with (batch,)
    targets, or (batch, classes, time) logits with (batch, time) targets (a next-token model's
    prediction at every position), flattened to one row per prediction.

    Args:
        student_logits: (batch, classes[, time]) raw student outputs.
        teacher_logits: the teacher's, same shape (no gradient flows into them).
        targets: (batch[, time]) integer labels, or ``None`` for an unlabelled transfer set
            (needs ``alpha=1``).
        temperature: softening temperature ``T > 0``.
        alpha: weight of the soft term, in [0, 1]; ``1 - alpha`` weighs the hard labels.

    Returns:
        A scalar loss.

    Raises:
        ConfigError: bad ``temperature``/``alpha``, or no targets with ``alpha < 1``.
        ShapeError: student and teacher logits differ in shape.

    Example:
        >>> s, t = torch.randn(8, 10), torch.randn(8, 10)
        >>> float(kd_loss(t, t, None, temperature=4.0, alpha=1.0)) < 1e-6
        True
    """
    _check_hparams(temperature, alpha)
    if student_logits.shape != teacher_logits.shape:
        raise ShapeError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ; "
            "both models must output one logit per class of the same task"
        )
    s, t_logits = _rows(student_logits), _rows(teacher_logits)
    t = float(temperature)
    log_p_student = F.log_softmax(s / t, dim=-1)
    log_p_teacher = F.log_softmax(t_logits.detach() / t, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * (t * t)
    if alpha == 1.0:
        return soft
    if targets is None:
        raise ConfigError(f"alpha={alpha} < 1 weighs the hard labels, but targets=None; pass labels or set alpha=1.0")
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(s, targets.reshape(-1).long())


def _rows(logits: torch.Tensor) -> torch.Tensor:
    """(batch, classes) logits as they are; (batch, classes, ...) as one row per prediction."""
    return logits if logits.dim() <= 2 else logits.movedim(1, -1).reshape(-1, logits.shape[1])


@torch.no_grad()
def teacher_logits(
    teacher: nn.Module, x: torch.Tensor, batch_size: int = 512, device: str | torch.device = "auto"
) -> torch.Tensor:
    """The teacher's logits for every row of ``x``, in eval mode, returned on the CPU."""
    dev = resolve_device(device) if isinstance(device, str) else device
    was = teacher.training
    teacher.to(dev).eval()
    out = torch.cat([teacher(x[idx].to(dev)).float().cpu() for idx in batches(len(x), batch_size)])
    teacher.train(was)
    return out


def distill(
    teacher: nn.Module,
    student: nn.Module,
    train: TensorData,
    task: Task,
    config: FitConfig | None = None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    val: TensorData | None = None,
    cache: bool | Literal["auto"] = "auto",
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> FitResult:
    """Train ``student`` on ``train`` with :func:`kd_loss` against ``teacher`` (Hinton et al. 2015).

    The teacher stays frozen and in eval mode (dropout off). Student and teacher take the same
    inputs (give an MLP student an ``nn.Flatten`` first layer to learn from a CNN teacher).

    Args:
        teacher: the trained large model.
        student: the model to train (in place).
        train: the transfer set with hard labels (``alpha=1`` ignores them).
        task: a classification task (its metrics score ``val``).
        config: the student's :class:`FitConfig`; the batch order depends only on its seed,
            so a student trained alone with the same config and initial weights sees the same
            batches.
        temperature: softening temperature ``T``.
        alpha: weight of the soft term (``1 - alpha`` on the hard labels).
        val: validation data for per-epoch metrics / early stopping.
        cache: compute the teacher's logits once (exact when the inputs are not augmented);
            ``"auto"`` caches unless ``augment`` is given. Caching with ``augment`` is refused.
        augment: ``(x, generator) -> x`` applied to the student's batches; the teacher then
            runs on the same augmented batch every step.

    Returns:
        The :class:`FitResult` of the student's training.

    Raises:
        ConfigError: bad hyper-parameters, a non-classification task, or ``cache=True`` with ``augment``.
        ShapeError: teacher and student output shapes differ.
        DataError: labels out of range for ``task``.
    """
    _check_args(train, task, temperature, alpha, cache, augment)
    cfg = config or FitConfig()
    dev = resolve_device(cfg.device)
    use_cache = augment is None if cache == "auto" else bool(cache)
    _check_outputs(teacher, student, train.x[:2].to(dev), task, dev)
    for p in teacher.parameters():
        p.requires_grad_(False)
    if use_cache:
        indexed, loss_cached = _cached_kd(teacher, train, dev, temperature, alpha)
        return fit(student, indexed, task, cfg, val=val, compute_loss=loss_cached)
    loss_live = _live_kd(teacher, temperature, alpha)
    return fit(student, train, task, cfg, val=val, compute_loss=loss_live, augment=augment)


def _check_args(
    train: TensorData,
    task: Task,
    temperature: float,
    alpha: float,
    cache: bool | Literal["auto"],
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None,
) -> None:
    """:func:`distill`'s arguments, checked before any model runs."""
    _check_hparams(temperature, alpha)
    if task.kind != "classification":
        raise ConfigError(f"distill needs a classification task, got kind={task.kind!r}")
    if cache is True and augment is not None:
        raise ConfigError(
            "cache=True with augment: the teacher's logits change with every augmented batch; use cache='auto' or False"
        )
    task.check_targets(train.y, "train.y")


def _check_outputs(teacher: nn.Module, student: nn.Module, probe: torch.Tensor, task: Task, dev: torch.device) -> None:
    """Move both models to ``dev`` (the teacher in eval mode) and check their outputs have one shape."""
    teacher.to(dev).eval()
    was_student = student.training
    student.to(dev).eval()
    with torch.no_grad():
        t_shape, s_shape = tuple(teacher(probe).shape), tuple(student(probe).shape)
    student.train(was_student)
    if t_shape != s_shape:
        raise ShapeError(
            f"teacher outputs {t_shape} but student outputs {s_shape} for the same inputs; give both {task.num_outputs} outputs"
        )


def _cached_kd(
    teacher: nn.Module, train: TensorData, dev: torch.device, temperature: float, alpha: float
) -> tuple[TensorData, Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The teacher's logits computed once: the data ``fit`` sees (targets: example indices) and its loss."""
    cached = teacher_logits(teacher, train.x, device=dev).to(dev)  # (N, classes)
    labels = train.y.to(dev)
    # The targets fit() sees are example indices, so each batch finds its cached logits;
    # the batch order is unchanged (it depends only on len(train) and the seed).
    indexed = TensorData(train.x, torch.arange(len(train)))

    def loss_cached(model: nn.Module, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return kd_loss(model(x), cached[idx], labels[idx], temperature, alpha)

    return indexed, loss_cached


def _live_kd(
    teacher: nn.Module, temperature: float, alpha: float
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The distillation loss with the teacher run on every (possibly augmented) batch."""

    def loss_live(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t_logits = teacher(x)
        return kd_loss(model(x), t_logits, y, temperature, alpha)

    return loss_live


@torch.no_grad()
def cpu_latency(model: nn.Module, example: torch.Tensor, repeats: int = 30, warmup: int = 3) -> float:
    """Median wall time in milliseconds of one forward pass of ``example`` on the CPU (eval mode).

    Runs on a CPU copy of ``model`` with the current ``torch.get_num_threads()``.
    """
    if repeats < 1:
        raise ConfigError(f"repeats={repeats}: must be >= 1")
    m = copy.deepcopy(model).cpu().eval()
    x = example.cpu()
    with torch.inference_mode():
        for _ in range(warmup):
            m(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            m(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def compare_models(
    models: Mapping[str, nn.Module],
    test: TensorData,
    task: Task,
    repeats: int = 30,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """One row per model: parameters, safetensors bytes, accuracy, test errors, CPU latency.

    Args:
        models: name -> trained model.
        test: test data (the first 256 examples time the batch-256 latency).
        task: classification task used for accuracy.
        repeats: timed forward passes per latency (median reported).
        extra: name -> additional columns (e.g. ``train_seconds``) merged into each row.

    Returns:
        ``{name: {"params", "bytes", "accuracy", "errors", "latency_ms_b1", "latency_ms_b256"}}``.

    Raises:
        DataError: ``test`` is empty (with fewer than 256 examples the batch-256 latency is
            timed on all of them).
    """
    if len(test) == 0:
        raise DataError("test is empty: compare_models needs examples to score and time")
    rows: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        acc = evaluate(model, test, task)["accuracy"]
        rows[name] = {
            "params": count_params(model),
            "bytes": model_bytes(model),
            "accuracy": acc,
            "errors": int(round((1.0 - acc) * len(test))),
            "latency_ms_b1": cpu_latency(model, test.x[:1], repeats),
            "latency_ms_b256": cpu_latency(model, test.x[:256], max(3, repeats // 3)),
            **(dict(extra[name]) if extra and name in extra else {}),
        }
    return rows
