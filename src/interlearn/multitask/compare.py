"""Multi-task vs independent models: per-task metrics, Δm%, parameters, weight memory, time, memory.

Δm% is the multi-task literature's relative metric (Maninis et al. 2019, "Attentive Single-Tasking
of Multiple Tasks"; Vandenhende et al. 2021): the mean over tasks of the relative gain over the
single-task baseline, sign-flipped for lower-is-better metrics, in percent.

Peak training memory is measured with ``torch.cuda.max_memory_allocated`` on CUDA. On CPU, torch
keeps no allocator statistics, so the row holds ``est_memory_bytes`` instead: weights + gradients
+ Adam state + the tensors autograd saves for one training step (counted with
``torch.autograd.graph.saved_tensors_hooks``) + the tasks x shared-parameters Jacobian for
gradient-combination methods. Independent models are trained one after the other, so their peak
is the largest of theirs while their weight memory is the sum.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.multitask.methods import method_kind
from interlearn.multitask.model import MultiTaskModel
from interlearn.multitask.targets import TaskSet
from interlearn.multitask.train import evaluate_multitask, model_device, train_independent, train_multitask
from interlearn.plotting import pyplot, save_figure
from interlearn.surgery import count_params
from interlearn.tracking import section
from interlearn.training import resolve_device

__all__ = ["delta_m", "weight_bytes", "training_memory", "compare_methods", "comparison_table", "plot_comparison"]


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def delta_m(multi: Mapping[str, float], single: Mapping[str, float], higher_is_better: Mapping[str, bool]) -> float:
    """Δm% = 100/T · Σ_t (-1)^{l_t} (M_multi,t − M_single,t) / M_single,t (l_t = 1 if lower is better).

    Raises:
        ConfigError: the two dicts do not name the same tasks, or a baseline is 0.
    """
    if set(multi) != set(single):
        raise ConfigError(f"delta_m needs the same tasks on both sides, got {sorted(multi)} and {sorted(single)}")
    total = 0.0
    for t, base in single.items():
        if base == 0:
            raise ConfigError(f"delta_m: the single-task metric of {t!r} is 0; the relative change is undefined")
        sign = 1.0 if higher_is_better[t] else -1.0
        total += sign * (multi[t] - base) / abs(base)
    return 100.0 * total / len(single)


def training_memory(model: MultiTaskModel, batch: TensorData, tasks: TaskSet, gradient_method: bool = False) -> int:
    """Estimated bytes of one training step (see the module docstring); no step is taken."""
    dev = model_device(model)
    saved: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.device.type != "meta" and t.numel():
            saved[(t.untyped_storage().data_ptr(), t.numel())] = t.numel() * t.element_size()
        return t

    params = [p for p in model.parameters() if p.requires_grad]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        losses, _ = tasks.losses(model(batch.x.to(dev)), batch.y.to(dev))
    del losses
    shared = sum(p.numel() * p.element_size() for p in model.shared_parameters())
    trainable = sum(p.numel() * p.element_size() for p in params)
    return weight_bytes(model) + 3 * trainable + sum(saved.values()) + (len(tasks) * shared if gradient_method else 0)


def _measure(run: Callable[[], Any], dev: torch.device, estimate: Callable[[], int]) -> tuple[Any, dict[str, int]]:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        out = run()
        torch.cuda.synchronize(dev)
        return out, {"peak_memory_bytes": int(torch.cuda.max_memory_allocated(dev))}
    return run(), {"est_memory_bytes": estimate()}


def _scores(metrics: Mapping[str, Mapping[str, float]], tasks: TaskSet) -> dict[str, float]:
    return {t.name: metrics[t.name][t.main_metric] for t in tasks.tasks}


def compare_methods(
    build: Callable[[TaskSet], MultiTaskModel],
    train: TensorData,
    test: TensorData,
    tasks: TaskSet,
    methods: Sequence[str] = ("equal",),
    config: FitConfig | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    independent: bool = True,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Train one multi-task model per method (and T independent models) and compare them.

    Args:
        build: makes a fresh model for a task set (a one-task set for the independent models).
        train, test: packed data.
        tasks: the task set.
        methods: registered method names.
        config: the same ``FitConfig`` for every run.
        options: per-method options, ``{method: {option: value}}``.
        independent: also train the single-task baselines (needed for Δm%).
        seed: model initialisation seed (reset before each build).

    Returns:
        ``{row: metrics}`` with rows ``"independent"`` and one per method. Each row holds
        ``<task>_<metric>``, ``accuracy`` (mean over classification tasks), ``trainable_params``,
        ``weight_bytes``, ``train_seconds``, ``peak_memory_bytes`` (CUDA) or ``est_memory_bytes``
        (CPU) and, with baselines, ``delta_m_pct`` and ratios to the independent models.

    Raises:
        ConfigError: an unknown method name (known ones are listed).
    """
    for m in methods:
        method_kind(m)
    cfg = config or FitConfig()
    dev = resolve_device(cfg.device)
    higher = {t.name: t.higher_is_better for t in tasks.tasks}
    probe = TensorData(train.x[: cfg.batch_size], train.y[: cfg.batch_size])
    rows: dict[str, dict[str, Any]] = {}
    if independent:
        torch.manual_seed(seed)
        rows["independent"], single = _independent_row(build, train, test, tasks, cfg, dev, probe)
    for name in methods:
        torch.manual_seed(seed)
        opts = (options or {}).get(name)
        row, metrics = _method_row(build(tasks), name, opts, train, test, tasks, cfg, dev, probe)
        if independent:
            base = rows["independent"]
            row["delta_m_pct"] = delta_m(_scores(metrics, tasks), single, higher)
            row["params_ratio_vs_independent"] = row["trainable_params"] / base["trainable_params"]
            row["time_ratio_vs_independent"] = row["train_seconds"] / max(base["train_seconds"], 1e-9)
        rows[name] = row
    return rows


def _describe(metrics: Mapping[str, Mapping[str, float]], tasks: TaskSet) -> dict[str, float]:
    """A row's ``<task>_<metric>`` columns (no losses) and ``accuracy``, the mean over classification tasks."""
    row = {f"{t}_{k}": v for t, ms in metrics.items() for k, v in ms.items() if k != "loss"}
    accs = [metrics[t.name]["accuracy"] for t in tasks.tasks if t.kind != "regression" and t.name in metrics]
    if accs:
        row["accuracy"] = sum(accs) / len(accs)
    return row


def _method_row(
    model: MultiTaskModel,
    name: str,
    opts: Mapping[str, Any] | None,
    train: TensorData,
    test: TensorData,
    tasks: TaskSet,
    cfg: FitConfig,
    dev: torch.device,
    probe: TensorData,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Train ``model`` with method ``name``; its row (time and memory measured) and its test metrics."""
    with section(name):
        run = functools.partial(train_multitask, model, train, tasks, name, cfg, options=opts)
        estimate = functools.partial(training_memory, model, probe, tasks, method_kind(name) == "gradient")
        res, mem = _measure(run, dev, estimate)
    metrics = evaluate_multitask(model, test, tasks)
    row = (
        _describe(metrics, tasks)
        | {
            "trainable_params": count_params(model, trainable_only=True),
            "weight_bytes": weight_bytes(model),
            "train_seconds": res.train_seconds,
        }
        | mem
    )
    return row, metrics


def _independent_row(
    build: Callable[[TaskSet], MultiTaskModel],
    train: TensorData,
    test: TensorData,
    tasks: TaskSet,
    cfg: FitConfig,
    dev: torch.device,
    probe: TensorData,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The single-task baselines' row and their per-task scores (for Δm%)."""
    with section("independent"):
        (models, seconds), mem = _measure(lambda: train_independent(build, train, tasks, cfg), dev, lambda: 0)
    if "est_memory_bytes" in mem:
        one = {n: (TensorData(probe.x, probe.y[:, tasks.columns[n]]), TaskSet((tasks[n],))) for n in models}
        mem = {"est_memory_bytes": max(training_memory(m, *one[n]) for n, m in models.items())}
    metrics = {
        n: evaluate_multitask(m, TensorData(test.x, test.y[:, tasks.columns[n]]), TaskSet((tasks[n],)))[n]
        for n, m in models.items()
    }
    row = (
        _describe(metrics, tasks)
        | {
            "trainable_params": sum(count_params(m, trainable_only=True) for m in models.values()),
            "weight_bytes": sum(weight_bytes(m) for m in models.values()),
            "train_seconds": sum(seconds.values()),
        }
        | mem
    )
    return row, _scores(metrics, tasks)


def comparison_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of :func:`compare_methods` rows."""
    if columns is None:
        columns = []
        for r in rows.values():
            columns += [k for k in r if k not in columns]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    lines = ["| row | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [
        f"| {name} | " + " | ".join(fmt(r[c]) if c in r else "" for c in columns) + " |" for name, r in rows.items()
    ]
    return "\n".join(lines)


def plot_comparison(
    rows: Mapping[str, Mapping[str, Any]], tasks: TaskSet, path: str | Path, title: str = "multi-task vs independent"
) -> Path:
    """Bar charts (PNG, Agg backend) per row: per-task metric, trainable parameters, training
    time, and weight / training memory (MB)."""
    plt = pyplot()

    names = list(rows)
    metric = {t.name: t.main_metric for t in tasks.tasks}
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    width = 0.8 / max(len(tasks), 1)
    for i, t in enumerate(tasks.names):
        vals = [float(rows[n].get(f"{t}_{metric[t]}", float("nan"))) for n in names]
        axes[0].bar([j + i * width for j in range(len(names))], vals, width, label=f"{t} {metric[t]}")
    axes[0].set_xticks([j + width * (len(tasks) - 1) / 2 for j in range(len(names))], names, rotation=45, ha="right")
    axes[0].legend(fontsize=8)
    finite = [float(rows[n][f"{t}_{metric[t]}"]) for n in names for t in tasks.names if f"{t}_{metric[t]}" in rows[n]]
    if finite and all(metric[t] == "accuracy" for t in tasks.names):
        axes[0].set_ylim(max(0.0, min(finite) - 0.05), min(1.0, max(finite) + 0.02))
    axes[0].set_title("per-task metric")
    for ax, key in ((axes[1], "trainable_params"), (axes[2], "train_seconds")):
        ax.bar(names, [float(rows[n].get(key, 0)) for n in names], color="tab:gray")
        ax.set_title(key)
        ax.tick_params(axis="x", rotation=45)
    mem_key = "peak_memory_bytes" if any("peak_memory_bytes" in r for r in rows.values()) else "est_memory_bytes"
    xs = range(len(names))
    axes[3].bar(
        [i - 0.2 for i in xs], [float(rows[n].get("weight_bytes", 0)) / 1e6 for n in names], 0.4, label="weights"
    )
    axes[3].bar(
        [i + 0.2 for i in xs],
        [float(rows[n].get(mem_key, 0)) / 1e6 for n in names],
        0.4,
        label=mem_key.replace("_bytes", ""),
    )
    axes[3].set_xticks(list(xs), names, rotation=45, ha="right")
    axes[3].set_title("memory (MB)")
    axes[3].legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=110)
