"""Run-folder reports: ``summary.json`` -> a Markdown table and PNG plots.

``write_summary`` is called at the end of every run; ``render`` re-creates the Markdown and
plots of an existing run folder from its JSON (``interlearn report RUN_DIR``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from interlearn.errors import DataError

__all__ = ["write_summary", "render", "markdown_table", "plot_bars", "plot_curves"]

_COLUMNS = ("accuracy", "trainable_params", "train_seconds", "bytes_communicated")


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def markdown_table(rows: Mapping[str, Mapping[str, Any]], columns: tuple[str, ...] | None = None) -> str:
    """A Markdown table with one row per variant; scalar columns only."""
    if columns is None:
        seen: list[str] = [c for c in _COLUMNS if any(c in r for r in rows.values())]
        for r in rows.values():
            seen += [k for k, v in r.items() if k not in seen and isinstance(v, (int, float, str, bool))]
        columns = tuple(seen)
    head = "| variant | " + " | ".join(columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    body = [f"| {name} | " + " | ".join(_fmt(r.get(c, "")) if c in r else "" for c in columns) + " |" for name, r in rows.items()]
    return "\n".join([head, sep, *body])


def plot_bars(rows: Mapping[str, Mapping[str, Any]], metric: str, path: Path, title: str = "") -> Path | None:
    """A bar chart of ``metric`` per variant (skipped when no row has it)."""
    items = [(k, float(r[metric])) for k, r in rows.items() if isinstance(r.get(metric), (int, float))]
    if not items:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(items) + 2), 3.2))
    ax.bar([k for k, _ in items], [v for _, v in items], color="#4477aa")
    for i, (_, v) in enumerate(items):
        ax.text(i, v, _fmt(v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(curves: Mapping[str, tuple[list[float], list[float]]], path: Path, xlabel: str, ylabel: str, title: str = "") -> Path:
    """Line plot of several ``name -> (xs, ys)`` curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_summary(run_dir: str | Path, rows: Mapping[str, Mapping[str, Any]], title: str = "interlearn run") -> Path:
    """Write ``summary.json``, ``summary.md`` and ``summary_<metric>.png`` plots into ``run_dir``."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    clean = {k: {kk: vv for kk, vv in v.items()} for k, v in rows.items()}
    (d / "summary.json").write_text(json.dumps(clean, indent=2, default=float))
    return render(d, title=title)


def render(run_dir: str | Path, title: str | None = None) -> Path:
    """Re-render ``summary.md`` and the summary plots of a run folder from ``summary.json``.

    Raises:
        DataError: the folder has no ``summary.json``.
    """
    d = Path(run_dir)
    src = d / "summary.json"
    if not src.is_file():
        raise DataError(f"{d} is not a run folder: {src} is missing (run `interlearn run RECIPE.yaml` or `interlearn tour` first)")
    rows = json.loads(src.read_text())
    title = title or f"interlearn run {d.name}"
    plots = [p for m in ("accuracy", "train_seconds", "trainable_params") if (p := plot_bars(rows, m, d / f"summary_{m}.png", f"{m} per variant"))]
    lines = [f"# {title}", "", markdown_table(rows), ""]
    if (d / "notes.md").is_file():  # statements a recipe adds (e.g. what a DP epsilon covers)
        lines += [(d / "notes.md").read_text().strip(), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    extra = sorted(p.name for p in d.glob("*.png") if p not in plots)
    lines += [f"![{Path(n).stem}]({n})" for n in extra]
    (d / "summary.md").write_text("\n".join(lines) + "\n")
    return d / "summary.md"
