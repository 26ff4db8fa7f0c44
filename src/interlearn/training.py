"""The one training loop: :func:`fit` and :func:`evaluate`, used by every centralized paradigm.

One epoch of :func:`fit`, in order: seeded batch order -> forward (autocast on CUDA) -> loss
(NaN/Inf stops the run) -> backward -> clip -> step -> schedule; then evaluation, early
stopping and an atomic checkpoint (safetensors + JSON) from which ``resume=True`` continues.
Hooks let paradigms change one move without forking the loop: ``compute_loss`` (distillation,
multi-task), ``backward`` (gradient combination), ``on_epoch_start`` (gradual unfreezing).

Under ``accelerate launch`` the same loop runs data-parallel (:mod:`interlearn.parallel`): each
process takes its slice of every global batch, the gradients are averaged, losses and metrics
reduced, and process 0 alone checkpoints, shows progress and tracks (:mod:`interlearn.tracking`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from interlearn.checkpoint import has_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from interlearn.config import FitConfig, resolve_device
from interlearn.data.tensors import TensorData
from interlearn.errors import CheckpointError, ConfigError, DataError, TrainingDivergedError
from interlearn.optim import build_optimizer, build_scheduler
from interlearn.parallel import Replicas, sum_metric_dicts
from interlearn.state import flatten_state, unflatten_state
from interlearn.tasks import ScoredTask, Task, sum_tensors
from interlearn.tracking import NULL, Tracker, TrackingSpec, open_tracker

__all__ = ["fit", "evaluate", "metric_sums", "finish_metrics", "FitResult", "resolve_device", "batches"]

ComputeLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], "torch.Tensor | dict[str, torch.Tensor]"]
BackwardFn = Callable[["torch.Tensor | dict[str, torch.Tensor]", nn.Module], None]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: one dict of metrics per epoch (``train_loss``, ``val_accuracy``, ``lr`` ...).
        best_epoch: epoch (0-based) with the best validation metric (last epoch without val).
        best_metric: that metric's value, or ``None`` without validation data.
        train_seconds: wall time spent in training epochs (evaluation included).
        stopped_early: whether early stopping ended the run.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_metric: float | None = None
    train_seconds: float = 0.0
    stopped_early: bool = False


def batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index batches over ``n`` examples, shuffled with ``generator`` when given."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)


def _default_loss(task: Task) -> ComputeLoss:
    return lambda model, x, y: task.loss(model(x), y)


def _total(loss: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    return sum_tensors(loss.values()) if isinstance(loss, dict) else loss


@torch.no_grad()
def metric_sums(
    model: nn.Module, data: TensorData, task: ScoredTask, batch_size: int = 512, device: str | torch.device = "auto"
) -> dict[str, float]:
    """Per-example metric *sums* of ``model`` on ``data`` (with the count ``"n"``), in eval mode.

    Sums add up across shards of a dataset (processes of a data-parallel run); :func:`finish_metrics`
    turns them into means.
    """
    if isinstance(device, str):
        # "auto" follows the model: a model trained on the CPU is evaluated there even on a GPU machine
        dev = next(model.parameters(), torch.empty(0)).device if device == "auto" else resolve_device(device)
    else:
        dev = device
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for idx in batches(len(data), batch_size):
        out = model(data.x[idx].to(dev))
        for k, v in task.metric_sums(out, data.y[idx].to(dev)).items():
            sums[k] = sums.get(k, 0.0) + v
    model.train(was_training)
    return sums


def finish_metrics(sums: dict[str, float], task: ScoredTask) -> dict[str, float]:
    """Means from :func:`metric_sums` (a task may give a metric its own count ``"n/<metric>"``)."""
    sums = dict(sums)
    n = max(sums.pop("n", 0.0), 1.0)
    # a task may give a metric its own denominator ("n/<metric>": e.g. the rows labelled for it)
    counts = {k[2:]: sums.pop(k) for k in list(sums) if k.startswith("n/")}
    out = {k: v / max(counts.get(k, n), 1.0) for k, v in sums.items()}
    finalize = getattr(task, "finalize_metrics", None)
    return finalize(out) if finalize is not None else out


def evaluate(
    model: nn.Module, data: TensorData, task: ScoredTask, batch_size: int = 512, device: str | torch.device = "auto"
) -> dict[str, float]:
    """Metrics of ``model`` on ``data`` (mean over examples), in eval mode.

    Returns:
        e.g. ``{"accuracy": 0.97, "loss": 0.09}`` for classification.
    """
    return finish_metrics(metric_sums(model, data, task, batch_size, device), task)


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _save(
    ckpt: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    scaler: Any,
    epoch: int,
    result: FitResult,
    best_state: dict[str, Any] | None,
    extra_state: nn.Module | None = None,
    rngs: list[torch.Tensor] | None = None,
) -> None:
    opt_skel, opt_t = flatten_state(opt.state_dict(), "optim")
    extra_skel, extra_t = flatten_state(extra_state.state_dict(), "extra") if extra_state is not None else (None, {})
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()} | opt_t | extra_t | rng_state()
    # the other processes' RNG states (dropout differs per process), restored by rank on resume
    tensors |= {f"rng.cpu.{r}": s for r, s in enumerate(rngs or []) if r > 0}
    if best_state is not None:
        tensors |= {f"best.{k}": v for k, v in best_state.items()}
    meta = {
        "epoch": epoch,
        "optimizer": opt_skel,
        "extra_state": extra_skel,
        "scheduler": sched.state_dict()
        if not callable(getattr(sched, "lr_lambdas", None))
        else {"last_epoch": sched.last_epoch},
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "train_seconds": result.train_seconds,
    }
    save_checkpoint(ckpt, tensors, json.loads(json.dumps(meta, default=float)))


def fit(
    model: nn.Module,
    train: TensorData,
    task: ScoredTask,
    config: FitConfig | None = None,
    *,
    val: TensorData | None = None,
    param_groups: Iterable[dict[str, Any]] | None = None,
    compute_loss: ComputeLoss | None = None,
    backward: BackwardFn | None = None,
    on_epoch_start: Callable[[int, nn.Module], None] | None = None,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    extra_state: nn.Module | None = None,
    tracking: TrackingSpec = None,
) -> FitResult:
    """Train ``model`` on ``train`` for ``task``; the one loop every centralized paradigm uses.

    Under ``accelerate launch`` the same call trains data-parallel (:mod:`interlearn.parallel`):
    each process takes its slice of every global batch; only the main one checkpoints, shows
    progress and tracks. N processes train the same model as one (same seed and global batch;
    without dropout or BatchNorm, whose statistics are per process).

    Args:
        model: any module; trained in place (frozen parameters stay frozen).
        train: training data.
        task: loss and metrics (also used to score ``val``).
        config: a :class:`FitConfig` (defaults when ``None``).
        val: validation data for per-epoch metrics, early stopping and best-epoch restore.
        param_groups: optimizer parameter groups (e.g. from
            :func:`interlearn.surgery.param_groups`); default: all trainable parameters.
        compute_loss: ``(model, x, y) -> loss`` or a dict of losses (summed unless ``backward``
            combines them), a mean over the batch. Default: ``task.loss(model(x), y)``.
        backward: ``(loss, model) -> None`` replacing ``loss.backward()`` (gradient combination).
        on_epoch_start: ``(epoch, model)`` called before each epoch (gradual unfreezing).
        augment: ``(x, generator) -> x`` applied to each training batch.
        extra_state: a module whose ``state_dict()`` (with ``get_extra_state()``) is saved in
            the checkpoint and restored on resume, e.g. a multi-task method's task weights.
        tracking: per-epoch metrics, the config and the final checkpoint and summary to
            TensorBoard and/or MLflow: ``{"tensorboard": DIR}``, ``{"mlflow": URI}``, a
            :class:`interlearn.tracking.TrackingConfig`, or an open tracker (see
            :mod:`interlearn.tracking`). ``None``: no tracking.

    Returns:
        A :class:`FitResult`; the model holds the trained (or best, with ``val``) weights.

    Raises:
        TrainingDivergedError: the loss became NaN/Inf (the last epoch's checkpoint is kept).
        DataError: empty training data, or targets that do not fit the task.
        CheckpointError: resuming where some processes see the checkpoint and others do not.
    """
    cfg = config or FitConfig()
    hooks = _Hooks(_checked_loss(train, task, compute_loss), backward, on_epoch_start, augment, extra_state)
    loop = _prepare(model, cfg, param_groups, len(train), hooks)
    _resume(loop, model)
    par = loop.par
    tracker = open_tracker(tracking, "fit", fit_params(cfg, model, train, task, par.world)) if par.is_main else NULL
    with tracker:
        _run_epochs(loop, model, train, task, val, tracker)
        _track_end(tracker, model, loop.result, loop.ckpt)
    return loop.result


class _Hooks(NamedTuple):
    """The moves a paradigm changes in :func:`fit` (see its arguments of the same names)."""

    loss_fn: ComputeLoss
    backward: BackwardFn | None
    on_epoch_start: Callable[[int, nn.Module], None] | None
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None
    extra_state: nn.Module | None


@dataclass
class _Loop:
    """What one :func:`fit` trains with (built by :func:`_prepare`) and where it stands."""

    cfg: FitConfig
    par: Replicas
    opt: torch.optim.Optimizer
    sched: Any
    scaler: torch.amp.GradScaler | None
    use_amp: bool
    amp_dtype: torch.dtype
    ckpt: Path | None
    steps_per_epoch: int
    hooks: _Hooks
    result: FitResult = field(default_factory=FitResult)
    best_state: dict[str, Any] | None = None
    start: int = 0  # the first epoch to train (after the resumed ones)


def _checked_loss(train: TensorData, task: ScoredTask, compute_loss: ComputeLoss | None) -> ComputeLoss:
    """``compute_loss``, or the task's own loss once the targets are checked against it."""
    if len(train) == 0:
        raise DataError("train is empty: fit() needs at least one example")
    if compute_loss is not None:
        return compute_loss
    if not isinstance(task, Task):
        raise ConfigError(f"fit with a {type(task).__name__} needs compute_loss= (the default loss is a single Task's)")
    task.check_targets(train.y, "train.y")
    return _default_loss(task)


def _prepare(
    model: nn.Module, cfg: FitConfig, param_groups: Iterable[dict[str, Any]] | None, n_train: int, hooks: _Hooks
) -> _Loop:
    """Place the model, seed, and build the optimizer, schedule and mixed precision of a run."""
    par = Replicas(cfg.device)
    dev = par.device
    model.to(dev)
    # model-internal randomness (dropout) differs per process; process 0 matches a single process
    torch.manual_seed(cfg.seed + 1_000_003 * par.rank)
    groups = list(param_groups) if param_groups is not None else _trainable(model)
    if not groups:
        raise DataError("the model has no trainable parameters: unfreeze something (interlearn.surgery.unfreeze)")
    opt = build_optimizer(groups, cfg)
    steps_per_epoch = -(-n_train // cfg.batch_size)
    sched = build_scheduler(opt, cfg, cfg.epochs * steps_per_epoch)
    # Mixed precision is torch.autocast chosen per call, not Accelerate's `mixed_precision`:
    # Accelerate's choice is process-wide (a second Accelerator may not change it), while fit
    # runs many times per process with different needs. `accelerate launch --mixed_precision`
    # still turns it on for every fit of the launch.
    use_amp = dev.type == "cuda" and (cfg.amp or par.precision != "no")
    # A custom ``backward`` (gradient combination) produces gradients the GradScaler never
    # scaled, so it gets bfloat16 autocast, which needs no loss scaling, instead of float16.
    amp_dtype = torch.bfloat16 if hooks.backward is not None or par.precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    ckpt = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    return _Loop(cfg, par, opt, sched, scaler, use_amp, amp_dtype, ckpt, steps_per_epoch, hooks)


def _resume(loop: _Loop, model: nn.Module) -> None:
    """Load the checkpoint in ``checkpoint_dir`` (with ``resume``): weights, optimizer, RNG, history."""
    cfg, par, ckpt, opt, sched = loop.cfg, loop.par, loop.ckpt, loop.opt, loop.sched
    found = ckpt is not None and cfg.resume and has_checkpoint(ckpt)
    if len(set(par.gather(found))) > 1:
        raise CheckpointError(
            f"resume: only some of the {par.world} processes see a checkpoint in {ckpt}; put checkpoint_dir on storage every machine shares"
        )
    if not found or ckpt is None:
        return
    tensors, meta = load_checkpoint(ckpt)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt.load_state_dict(unflatten_state(meta["optimizer"], tensors))
    extra_state = loop.hooks.extra_state
    if extra_state is not None and meta.get("extra_state") is not None:
        extra_state.load_state_dict(unflatten_state(meta["extra_state"], tensors))
    sched.load_state_dict(meta["scheduler"]) if "lr_lambdas" not in meta["scheduler"] else None
    if "last_epoch" in meta["scheduler"] and hasattr(sched, "lr_lambdas"):
        sched.last_epoch = meta["scheduler"]["last_epoch"]
        for g, lam in zip(opt.param_groups, sched.lr_lambdas):
            g["lr"] = g["initial_lr"] * lam(sched.last_epoch)
    if loop.scaler is not None and meta.get("scaler"):
        loop.scaler.load_state_dict(meta["scaler"])
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    loop.best_state = best or None
    loop.result = FitResult(meta["history"], meta["best_epoch"], meta["best_metric"], meta["train_seconds"])
    loop.start = meta["epoch"] + 1
    set_rng_state(tensors | {"rng.cpu": tensors.get(f"rng.cpu.{par.rank}", tensors["rng.cpu"])})


def _run_epochs(
    loop: _Loop, model: nn.Module, train: TensorData, task: ScoredTask, val: TensorData | None, tracker: Tracker
) -> None:
    """The epochs: seeded global batches through :func:`_train_step`, then score, log, checkpoint, stop early.

    Ends with the model holding the best epoch's weights when ``restore_best`` kept them.
    """
    cfg, par, result, hooks = loop.cfg, loop.par, loop.result, loop.hooks
    net = par.wrap(model) if hooks.backward is None else model
    wrapped = _trainable_ids(model)
    params = [p for g in loop.opt.param_groups for p in g["params"]]
    total_steps, done_steps = cfg.epochs * loop.steps_per_epoch, loop.start * loop.steps_per_epoch
    bad_epochs = (
        sum(1 for h in result.history[result.best_epoch + 1 :]) if result.best_epoch >= 0 and val is not None else 0
    )
    with _progress(cfg.progress and par.is_main, total_steps, done_steps) as bar:
        for epoch in range(loop.start, cfg.epochs):
            if hooks.on_epoch_start is not None:
                hooks.on_epoch_start(epoch, model)
                if (
                    hooks.backward is None and _trainable_ids(model) != wrapped
                ):  # DDP syncs only what was trainable when wrapped
                    net, wrapped = par.wrap(par.unwrap(net)), _trainable_ids(model)
            t0 = time.perf_counter()
            net.train()
            gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
            loss_sum, n_seen = 0.0, 0
            for idx in batches(len(train), cfg.batch_size, gen):  # the global batch: the same on every process
                loss_sum += _train_step(loop, net, model, params, train, idx, gen, epoch, n_seen)
                n_seen += len(idx)
                bar.advance()
            row = {"epoch": epoch, "train_loss": loss_sum / n_seen, "lr": loop.opt.param_groups[0]["lr"]}
            bad_epochs = _score_epoch(loop, model, task, val, row, bad_epochs)
            result.train_seconds += time.perf_counter() - t0
            result.history.append(row)
            bar.describe(row)
            tracker.log_metrics(row, step=epoch)
            _checkpoint(loop, model, epoch)
            if cfg.patience is not None and val is not None and bad_epochs >= cfg.patience:
                result.stopped_early = True
                break
        par.unwrap(net)
        if loop.best_state is not None and cfg.restore_best:
            model.load_state_dict(loop.best_state)


def _train_step(
    loop: _Loop,
    net: nn.Module,
    model: nn.Module,
    params: list[nn.Parameter],
    train: TensorData,
    idx: torch.Tensor,
    gen: torch.Generator,
    epoch: int,
    n_seen: int,
) -> float:
    """One global batch ``idx``: forward (autocast), loss, backward, clip, step, schedule.

    Returns:
        The batch's loss sum (over all processes); NaN/Inf raises (see :func:`_reduced_loss_sum`).
    """
    par, dev, opt, scaler, hooks = loop.par, loop.par.device, loop.opt, loop.scaler, loop.hooks
    local, n_local, weight = par.shard(idx)
    x, y = train.x[local].to(dev, non_blocking=True), train.y[local].to(dev, non_blocking=True)
    if hooks.augment is not None:
        x = hooks.augment(x, gen)
    with torch.autocast(dev.type, dtype=loop.amp_dtype, enabled=loop.use_amp):
        loss = hooks.loss_fn(net, x, y)
    total = _total(loss)
    part = _reduced_loss_sum(loop, total, n_local, epoch, n_seen)
    opt.zero_grad(set_to_none=True)
    if hooks.backward is not None:
        hooks.backward(loss, model)
        par.average_grads([p for p in params if p.requires_grad], weight)
    else:
        scaled = total * weight if weight != 1.0 else total  # this slice's share of the global mean
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
    if scaler is not None:
        scaler.unscale_(opt)
    if loop.cfg.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, loop.cfg.clip_grad_norm)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    loop.sched.step()
    return part


def _reduced_loss_sum(loop: _Loop, total: torch.Tensor, n_local: int, epoch: int, n_seen: int) -> float:
    """The batch's loss sum over all processes; raises on every process at once if any saw NaN/Inf."""
    par = loop.par
    part, bad = (float(total.detach()) * n_local, not bool(torch.isfinite(total))) if n_local else (0.0, False)
    if par.world > 1:  # (loss sum, non-finite flag) over all processes: all raise at the same step
        part, flag = par.sum(torch.tensor([part, float(bad)], dtype=torch.float64, device=par.device)).tolist()
        bad = flag > 0
    if bad:
        raise TrainingDivergedError(
            f"loss became {total.item() if n_local else 'NaN/Inf on another process'} at epoch {epoch}, after {n_seen} examples; "
            f"lower the learning rate (lr={loop.cfg.lr}) or enable clip_grad_norm"
            + (f"; the last good checkpoint is kept in {loop.ckpt}" if loop.ckpt else "")
        )
    return part


def _score_epoch(
    loop: _Loop, model: nn.Module, task: ScoredTask, val: TensorData | None, row: dict[str, float], bad_epochs: int
) -> int:
    """Add the ``val_`` metrics to ``row`` and keep the best epoch; returns the epochs since the best."""
    result, epoch = loop.result, int(row["epoch"])
    if val is None:
        result.best_epoch = epoch
        return bad_epochs
    row |= {f"val_{k}": v for k, v in _evaluate_replicas(model, val, task, loop.par.device, loop.par).items()}
    metric = row[f"val_{task.main_metric}"]
    sign = 1.0 if task.higher_is_better else -1.0
    if result.best_metric is None or sign * metric > sign * result.best_metric:
        result.best_metric, result.best_epoch = metric, epoch
        loop.best_state = copy.deepcopy(model.state_dict()) if loop.cfg.restore_best else None
        return 0
    return bad_epochs + 1


def _checkpoint(loop: _Loop, model: nn.Module, epoch: int) -> None:
    """Save the resumable checkpoint after ``epoch`` (process 0 writes; every process waits)."""
    ckpt, r = loop.ckpt, loop
    if ckpt is None:
        return
    rngs = loop.par.gather(torch.get_rng_state())
    if loop.par.is_main:
        _save(ckpt, model, r.opt, r.sched, r.scaler, epoch, r.result, r.best_state, r.hooks.extra_state, rngs)
    loop.par.barrier()  # no process resumes or reads a half-written checkpoint


def fit_params(cfg: FitConfig, model: nn.Module, train: TensorData, task: ScoredTask, processes: int) -> dict[str, Any]:
    """What a tracked ``fit`` logs as its parameters."""
    return {
        "fit": dataclasses.asdict(cfg),
        "model": type(model).__name__,
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_examples": len(train),
        "task": getattr(task, "name", type(task).__name__),
        "processes": processes,
    }


def _track_end(tracker: Tracker, model: nn.Module, result: FitResult, ckpt: Path | None) -> None:
    """The summary and the final weights (and the resumable checkpoint, if any) as artifacts."""
    if not tracker.active:
        return
    summary = {
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "train_seconds": result.train_seconds,
        "stopped_early": result.stopped_early,
        "epochs": len(result.history),
        "history": result.history,
    }
    tracker.log_text(json.dumps(summary, indent=2, default=float), "summary.json")
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(
            Path(tmp) / "final",
            {f"model.{k}": v for k, v in model.state_dict().items()},
            {"best_epoch": result.best_epoch},
        )
        tracker.log_artifact(Path(tmp) / "final", "final")
    if ckpt is not None:
        tracker.log_artifact(ckpt, "checkpoint")


def _trainable_ids(model: nn.Module) -> tuple[int, ...]:
    return tuple(id(p) for p in model.parameters() if p.requires_grad)


def _evaluate_replicas(
    model: nn.Module, data: TensorData, task: ScoredTask, dev: torch.device, par: Replicas
) -> dict[str, float]:
    """:func:`evaluate`, each process scoring its share of ``data`` and the sums added up."""
    if par.world == 1:
        return evaluate(model, data, task, device=dev)
    mine = metric_sums(model, data.subset(par.shard_of(len(data))), task, device=dev)
    return finish_metrics(sum_metric_dicts(par.gather(mine)), task)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self) -> None:
        return None

    def describe(self, row: dict[str, float]) -> None:
        return None


class _RichBar(_NoBar):
    def __init__(self, total: int, done: int) -> None:
        self._p = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False
        )
        self._t = self._p.add_task("training", total=total, completed=done)

    def __enter__(self) -> _RichBar:
        self._p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._p.__exit__(*exc)

    def advance(self) -> None:
        self._p.advance(self._t)

    def describe(self, row: dict[str, float]) -> None:
        text = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "lr")
        self._p.update(self._t, description=text)


def _progress(enabled: bool, total: int, done: int) -> _NoBar | _RichBar:
    return _RichBar(total, done) if enabled else _NoBar()
