"""The accuracy-vs-bytes frontier of on-device variants of a model, and the one to ship.

Every variant is an encoding of a model's parameters (float32, float16, int8, int4, low-rank,
pruned, or a distilled smaller model, each optionally combined) whose bytes are measured as one
safetensors file and whose accuracy is measured after decoding it into the model. The shipped
variant is the most accurate one within a byte budget (by default a quarter of the float32
global model's bytes). Latency per suggestion is measured on the decoded model: the encodings
shrink what is downloaded and stored; weights are decoded once when the keyboard loads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.errors import ConfigError, DataError
from interlearn.ondevice.lowrank import defactorize, factorize
from interlearn.ondevice.prune import decode_sparse, encode_sparse, prune_magnitude
from interlearn.ondevice.quantize import dequantize_weights, encoded_bytes, quantize_weights
from interlearn.plotting import pyplot, save_figure
from interlearn.registry import Registry
from interlearn.types import Params

__all__ = ["Variant", "Encoding", "ENCODINGS", "encode", "measure_variants", "choose", "plot_frontier", "latency_ms"]


@dataclass(frozen=True)
class Encoding:
    """A named way to store parameters: ``encode(params) -> tensors`` and its inverse."""

    name: str
    encode: Callable[[Params], dict[str, torch.Tensor]] = field(repr=False)
    decode: Callable[[dict[str, torch.Tensor]], Params] = field(repr=False)


def _fp16(p: Params) -> dict[str, torch.Tensor]:
    return {k: v.detach().half() for k, v in p.items()}


def _from16(e: dict[str, torch.Tensor]) -> Params:
    return {k: v.float() for k, v in e.items()}


def _q(bits: int, group: int | None) -> Encoding:
    name = f"int{bits}" + (f"-g{group}" if group else "")
    return Encoding(name, lambda p: quantize_weights(p, bits, group), dequantize_weights)


def _lowrank(fraction: float, bits: int | None) -> Encoding:
    name = f"lowrank{fraction:g}" + (f"+int{bits}" if bits else "")
    if bits is None:
        return Encoding(name, lambda p: factorize(p, fraction), defactorize)
    return Encoding(
        name, lambda p: quantize_weights(factorize(p, fraction), bits), lambda e: defactorize(dequantize_weights(e))
    )


def _pruned(sparsity: float) -> Encoding:
    return Encoding(
        f"prune{int(sparsity * 100)}+int8", lambda p: encode_sparse(prune_magnitude(p, sparsity)), decode_sparse
    )


ENCODINGS: Registry[Encoding] = Registry("encoding")
"""Encodings by name (``float32``, ``float16``, ``int8``, ``int4``, ``int4-g64``, ``int4-g32``,
``lowrank0.5``, ``lowrank0.5+int8``, ``lowrank0.25+int8``, ``prune50+int8``, ``prune75+int8``)."""

for _encoding in [
    Encoding("float32", lambda p: {k: v.detach().float() for k, v in p.items()}, lambda e: dict(e)),
    Encoding("float16", _fp16, _from16),
    _q(8, None),
    _q(4, None),
    _q(4, 64),
    _q(4, 32),
    _lowrank(0.5, None),
    _lowrank(0.5, 8),
    _lowrank(0.25, 8),
    _pruned(0.5),
    _pruned(0.75),
]:
    ENCODINGS.register(_encoding.name, _encoding)


def encode(params: Params, name: str) -> tuple[dict[str, torch.Tensor], Params, int]:
    """Encode ``params`` with the named encoding.

    Returns:
        ``(stored tensors, decoded float params, bytes as a safetensors file)``.

    Raises:
        ConfigError: unknown encoding name (the message lists the known ones).
    """
    enc = ENCODINGS.get(name)
    stored = enc.encode({k: v.detach().cpu() for k, v in params.items()})
    return stored, enc.decode(stored), encoded_bytes(stored)


@dataclass(frozen=True)
class Variant:
    """One measured on-device variant.

    Attributes:
        name: e.g. ``"global int4-g32"`` or ``"distilled int8"``.
        model: which architecture (``"global"`` or a student's name).
        encoding: the encoding's name.
        bytes: stored size (safetensors file).
        accuracy: the task metric after decoding (top-1 recall for the keyboard).
        extra: other metrics (e.g. top-3 recall).
    """

    name: str
    model: str
    encoding: str
    bytes: int
    accuracy: float
    extra: dict[str, float] = field(default_factory=dict)


def measure_variants(
    models: dict[str, tuple[nn.Module, Params]],
    encodings: Sequence[str],
    metric: Callable[[nn.Module, Params], dict[str, float]],
    key: str,
) -> tuple[list[Variant], dict[str, Params]]:
    """Encode every model with every encoding and measure bytes and the metric.

    Args:
        models: ``{name: (architecture, params)}``, e.g. the global model and a student.
        encodings: names from :data:`ENCODINGS`.
        metric: ``metric(model, decoded_params) -> {metric: value}``.
        key: the metric that ranks variants (e.g. ``"top1_recall"``).

    Returns:
        The variants and their decoded params (by variant name).
    """
    out, decoded = [], {}
    for mname, (model, params) in models.items():
        for ename in encodings:
            _, dec, nbytes = encode(params, ename)
            scores = metric(model, dec)
            if key not in scores:
                raise DataError(f"metric returned {sorted(scores)}, without {key!r}")
            name = f"{mname} {ename}"
            out.append(
                Variant(
                    name, mname, ename, nbytes, float(scores[key]), {k: float(v) for k, v in scores.items() if k != key}
                )
            )
            decoded[name] = dec
    return out, decoded


def choose(variants: Sequence[Variant], budget_bytes: int) -> Variant | None:
    """The most accurate variant within ``budget_bytes`` (fewer bytes breaks ties); ``None``
    when no variant fits."""
    fit = [v for v in variants if v.bytes <= budget_bytes]
    return max(fit, key=lambda v: (v.accuracy, -v.bytes)) if fit else None


def plot_frontier(
    variants: Sequence[Variant],
    path: str | Path,
    reference: Variant,
    budget_bytes: int,
    points: float = 0.02,
    ylabel: str = "accuracy",
    title: str = "On-device variants",
) -> Path:
    """Accuracy against stored bytes (log scale): every variant, the Pareto frontier, the byte
    budget and the accuracy floor ``reference.accuracy - points``. PNG."""
    plt = pyplot()

    if not variants:
        raise DataError("plot_frontier: no variants")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    models = sorted({v.model for v in variants})
    for i, m in enumerate(models):
        vs = [v for v in variants if v.model == m]
        ax.scatter([v.bytes / 1024 for v in vs], [v.accuracy for v in vs], s=22, label=m, color=f"C{i}")
        for v in vs:
            ax.annotate(v.encoding, (v.bytes / 1024, v.accuracy), fontsize=6, xytext=(3, 2), textcoords="offset points")
    front, best = [], -1.0
    for v in sorted(variants, key=lambda v: v.bytes):
        if v.accuracy > best:
            front.append(v)
            best = v.accuracy
    ax.plot([v.bytes / 1024 for v in front], [v.accuracy for v in front], "k-", lw=0.8, alpha=0.6, label="frontier")
    ax.axvline(budget_bytes / 1024, color="r", ls="--", lw=1, label=f"budget {budget_bytes / 1024:.0f} KiB")
    ax.axhline(reference.accuracy - points, color="g", ls=":", lw=1, label=f"{reference.name} - {points * 100:g} pts")
    ax.set_xscale("log")
    ax.set_xlabel("stored size (KiB, safetensors)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)


@torch.no_grad()
def latency_ms(fn: Callable[[], Any], repeats: int = 50, warmup: int = 5) -> dict[str, float]:
    """Median and 90th-percentile wall time of ``fn()`` in milliseconds (this process's threads).

    Raises:
        ConfigError: ``repeats < 1``.
    """
    if repeats < 1:
        raise ConfigError(f"repeats={repeats}: must be >= 1")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
        "threads": float(torch.get_num_threads()),
    }
