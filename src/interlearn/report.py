"""Run-folder reports a person reads: one section per paradigm.

Every section answers one question: what was asked, the baseline, the result with its
difference, a one-line verdict (and why, when the paradigm did not help), one plot and at most
a small table (no more than :data:`MAX_COLUMNS` columns).

A run folder holds ``summary.json`` (every measured row, for ``interlearn compare``) and
``sections.json`` (the report). :func:`render` writes ``summary.md`` from them; a folder without
``sections.json`` (a recipe run, or a run made before sections existed) gets its sections from
its rows and the recipe kind (:func:`sections_from_rows`), so ``interlearn report RUN_DIR`` reads
the same for any run folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from interlearn.errors import DataError
from interlearn.plotting import log_x, pyplot, save_figure

__all__ = [
    "MAX_COLUMNS",
    "Section",
    "verdict",
    "write_summary",
    "render",
    "markdown_table",
    "section_markdown",
    "sections_from_rows",
    "print_sections",
    "plot_bars",
    "plot_curves",
]

MAX_COLUMNS = 8
_COLUMNS = ("accuracy", "trainable_params", "train_seconds", "bytes_communicated")


@dataclass(frozen=True)
class Section:
    """One paradigm's part of a report.

    Attributes:
        paradigm: the heading (``"Transfer learning"``).
        question: what the scenario tests, in one sentence.
        baseline: what the result is compared with (``"scratch, same network"``); empty when
            the run has no baseline.
        baseline_value: the baseline's metric (``None`` without a baseline).
        result: the paradigm's variant (``"transfer, frozen base"``).
        result_value: its metric.
        metric: the metric's name (``"accuracy"``).
        verdict: one line: does the paradigm do what it is for here?
        why: a sentence or two: why it did not help, or what limits it.
        plot: a PNG file name inside the run folder.
        table: small rows (``[{column: value}]``), at most :data:`MAX_COLUMNS` columns shown.
        higher_is_better: whether a larger metric is better.
        seeds: the seeds the values are means over (empty: one run).
        difference_se: the standard error of the paired difference over ``seeds``.
        boundary: where along the section's curve the paradigm stops paying, and why.
        stops: the boundary in a few words, for the terminal table (``"at 30 labels/class"``).
    """

    paradigm: str
    question: str
    baseline: str
    baseline_value: float | None
    result: str
    result_value: float | None
    metric: str = "accuracy"
    verdict: str = ""
    why: str = ""
    plot: str | None = None
    table: list[dict[str, Any]] = field(default_factory=list)
    higher_is_better: bool = True
    seeds: list[int] = field(default_factory=list)
    difference_se: float | None = None
    boundary: str = ""
    stops: str = ""

    @property
    def difference(self) -> float | None:
        """``result - baseline`` (``None`` when either is missing)."""
        if self.baseline_value is None or self.result_value is None:
            return None
        return float(self.result_value) - float(self.baseline_value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Section:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def verdict(difference: float | None, threshold: float = 0.01, higher_is_better: bool = True, what: str = "it") -> str:
    """``"helps"`` / ``"no clear difference"`` / ``"hurts"`` from a difference and a threshold
    (the smallest difference worth a claim on this scenario's test set)."""
    if difference is None or (isinstance(difference, float) and math.isnan(difference)):
        return "no baseline in this run"
    d = difference if higher_is_better else -difference
    if d >= threshold:
        return f"{what} helps"
    if d <= -threshold:
        return f"{what} does not help here: worse than the baseline"
    return f"{what} does not help here: no clear difference"


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


def _value(v: float | None, metric: str) -> str:
    if v is None:
        return "—"
    if any(k in metric for k in ("accuracy", "recall")) and abs(v) <= 1:
        return f"{100 * v:.1f}%"
    return _fmt(v)


def _diff(d: float | None, metric: str) -> str:
    if d is None:
        return "—"
    if any(k in metric for k in ("accuracy", "recall")):
        return f"{100 * d:+.1f} pts"
    return f"{d:+.4g}"


def markdown_table(
    rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str] | None = None, max_columns: int = MAX_COLUMNS
) -> str:
    """A Markdown table with one row per variant and at most ``max_columns`` columns (the row
    name included); scalar columns only, the most common first."""
    if columns is None:
        seen: list[str] = [c for c in _COLUMNS if any(c in r for r in rows.values())]
        for r in rows.values():
            seen += [
                k for k, v in r.items() if k not in seen and isinstance(v, (int, float, str, bool)) and v is not None
            ]
        columns = seen
    columns = list(columns)[: max_columns - 1]
    head = "| variant | " + " | ".join(columns) + " |"
    sep = "|---|" + "---:|" * len(columns)
    body = [
        f"| {name} | " + " | ".join(_fmt(r.get(c, "")) if c in r else "" for c in columns) + " |"
        for name, r in rows.items()
    ]
    return "\n".join([head, sep, *body])


def _small_table(table: Sequence[Mapping[str, Any]]) -> str:
    cols: list[str] = []
    for r in table:
        cols += [k for k in r if k not in cols]
    cols = cols[:MAX_COLUMNS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in table]
    return "\n".join(lines)


def section_markdown(s: Section) -> str:
    """The Markdown of one section (heading, question, baseline, result, verdict, table, plot)."""
    lines = [f"## {s.paradigm}", "", f"**Question.** {s.question}", ""]
    if s.baseline:
        lines.append(f"**Baseline.** {s.baseline}: {_value(s.baseline_value, s.metric)} {s.metric}")
        lines.append("")
    res = f"**Result.** {s.result}: {_value(s.result_value, s.metric)} {s.metric}"
    if s.difference is not None:
        spread = ""
        if s.difference_se is not None and s.seeds:
            spread = (
                f", standard error {_diff(s.difference_se, s.metric).lstrip('+')}, seeds {', '.join(map(str, s.seeds))}"
            )
        res += f" ({_diff(s.difference, s.metric)} vs the baseline{spread})"
    lines += [res, "", f"**Verdict.** {s.verdict}", ""]
    if s.why:
        lines += [f"*Why.* {s.why}", ""]
    if s.boundary:
        lines += [f"**Boundary.** {s.boundary}", ""]
    if s.table:
        lines += [_small_table(s.table), ""]
    if s.plot:
        lines += [f"![{s.paradigm}]({s.plot})", ""]
    return "\n".join(lines)


def plot_bars(rows: Mapping[str, Mapping[str, Any]], metric: str, path: Path, title: str = "") -> Path | None:
    """A bar chart of ``metric`` per variant (skipped when no row has it)."""
    items = [
        (k, float(r[metric]))
        for k, r in rows.items()
        if isinstance(r.get(metric), (int, float)) and not isinstance(r.get(metric), bool)
    ]
    if not items:
        return None
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(items) + 2), 3.2))
    ax.bar([k for k, _ in items], [v for _, v in items], color="#4477aa")
    for i, (_, v) in enumerate(items):
        ax.text(i, v, _fmt(v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.tick_params(axis="x", rotation=30)
    return save_figure(fig, path, dpi=110)


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hlines: Mapping[str, float] | None = None,
    xlog: bool = False,
) -> Path:
    """Line plot of several ``name -> (xs, ys)`` curves, with optional horizontal reference lines."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    for name, (xs, ys) in curves.items():
        ax.plot(list(xs), list(ys), marker="o", ms=3, label=name)
    for i, (name, y) in enumerate((hlines or {}).items()):
        ax.axhline(y, ls="--", lw=1, color=f"C{len(curves) + i}", label=name)
    if xlog:
        log_x(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)


# --- sections for run folders without sections.json ------------------------------------------

# kind -> (paradigm, question, baseline row, result row(s), metric, existing plot file)
_KINDS: dict[str, tuple[str, str, str | None, tuple[str, ...], str, str | None]] = {
    "transfer": (
        "Transfer learning",
        "Does a base pretrained on the related task beat training from scratch on the few target labels?",
        "scratch",
        ("transfer", "finetune"),
        "accuracy",
        "budgets.png",
    ),
    "finetune": (
        "Fine-tuning",
        "Which fine-tuning strategy learns the new classes best, and what does it forget?",
        None,
        (),
        "accuracy",
        None,
    ),
    "distill": (
        "Knowledge distillation",
        "Does the teacher's soft output make the small student better than training it alone?",
        "student_alone",
        ("distilled",),
        "accuracy",
        None,
    ),
    "multitask": (
        "Multi-task learning",
        "Does one shared model beat one model per task?",
        "independent",
        (),
        "accuracy",
        "multitask.png",
    ),
    "federated": (
        "Federated learning",
        "How accurate is the model trained without moving the clients' data?",
        None,
        ("federated",),
        "accuracy",
        "accuracy.png",
    ),
    "keyboard": (
        "Keyboard (next character)",
        "How good is the federated keyboard model, and its on-device and personalized versions?",
        "global",
        ("ondevice_int8", "personalized"),
        "accuracy",
        "personalization.png",
    ),
    "keyboard_words": (
        "Keyboard (next word)",
        "Does personalization help the federated next-word model, and what does the device model keep?",
        "global",
        ("personalized", "ondevice"),
        "top1_recall",
        "personalization.png",
    ),
}


def _metric_of(row: Mapping[str, Any], metric: str) -> float | None:
    v = row.get(metric)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def sections_from_rows(
    rows: Mapping[str, Mapping[str, Any]], kind: str | None, run_dir: str | Path | None = None
) -> list[Section]:
    """Sections for a run folder that has rows but no ``sections.json``: per recipe kind, the
    baseline row against the result row (or the best row), the rows as a small table, the
    run's own plot when it made one (else a bar chart written into ``run_dir``)."""
    d = Path(run_dir) if run_dir is not None else None
    spec = _KINDS.get(kind or "")
    metric = (
        spec[4]
        if spec
        else (
            "accuracy"
            if any("accuracy" in r for r in rows.values())
            else next(iter(next(iter(rows.values()), {})), "value")
        )
    )
    names = list(rows)
    base_name = spec[2] if spec and spec[2] in rows else None
    candidates = [n for n in (spec[3] if spec else ()) if n in rows] or [n for n in names if n != base_name]
    scored = [n for n in candidates if _metric_of(rows[n], metric) is not None]
    res_name = (
        (scored[0] if spec and spec[3] else max(scored, key=lambda n: _metric_of(rows[n], metric) or 0.0))
        if scored
        else None
    )
    bval = _metric_of(rows[base_name], metric) if base_name else None
    rval = _metric_of(rows[res_name], metric) if res_name else None
    plot = None
    if d is not None:
        if spec and spec[5] and (d / spec[5]).is_file():
            plot = spec[5]
        elif plot_bars(rows, metric, d / f"summary_{metric}.png", f"{metric} per variant"):
            plot = f"summary_{metric}.png"
    table = []
    for n, r in rows.items():
        row: dict[str, Any] = {"variant": n}
        row.update({k: v for k, v in r.items() if isinstance(v, (int, float, str, bool)) and v is not None})
        table.append(dict(list(row.items())[:MAX_COLUMNS]))
    if spec and kind in ("keyboard", "keyboard_words") and base_name:
        return [_keyboard_section(spec[0], n, rows, base_name, metric, plot, table) for n in spec[3] if n in rows]
    diff = None if bval is None or rval is None else rval - bval
    return [
        Section(
            paradigm=spec[0] if spec else f"Run {d.name if d else ''}".strip(),
            question=spec[1] if spec else "What did this run measure?",
            baseline=base_name or "",
            baseline_value=bval,
            result=res_name or "",
            result_value=rval,
            metric=metric,
            verdict=verdict(diff, what=res_name or "the result"),
            plot=plot,
            table=table,
        )
    ]


def _keyboard_section(
    title: str,
    name: str,
    rows: Mapping[str, Mapping[str, Any]],
    base: str,
    metric: str,
    plot: str | None,
    table: list[dict[str, Any]],
) -> Section:
    """Keyboard runs: personalization is compared with the same users' global median, the
    on-device model with the global model on the same test text."""
    row = rows[name]
    personal = "global_median" in row
    bval = _metric_of(row, "global_median") if personal else _metric_of(rows[base], metric)
    rval = _metric_of(row, metric)
    diff = None if bval is None or rval is None else rval - bval
    question = (
        "Does each user's personalized model beat the global model on their own test text (median over users)?"
        if personal
        else "How much accuracy does the smaller on-device model keep?"
    )
    if personal:
        say = verdict(diff, 0.01, what="personalization")
    elif diff is None:
        say = verdict(None)
    else:
        size = f" at {row['bytes']:,} bytes" if isinstance(row.get("bytes"), int) else ""
        say = (
            f"the on-device model keeps the global model's {metric} within 2 points{size}"
            if diff >= -0.02
            else f"the on-device model loses {100 * -diff:.1f} points{size}: more than the 2 a keyboard can spare"
        )
    return Section(
        paradigm=f"{title}: {name}",
        question=question,
        baseline=f"{base} (same users)" if personal else base,
        baseline_value=bval,
        result=name,
        result_value=rval,
        metric=metric,
        verdict=say,
        plot=plot if personal else None,
        table=table,
    )


def write_summary(
    run_dir: str | Path,
    rows: Mapping[str, Mapping[str, Any]],
    title: str = "interlearn run",
    sections: Sequence[Section] | None = None,
) -> Path:
    """Write ``summary.json`` (rows), ``sections.json`` (when given) and ``summary.md``.

    Returns:
        The path of ``summary.md``.
    """
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "summary.json").write_text(json.dumps({k: dict(v) for k, v in rows.items()}, indent=2, default=float))
    if sections is not None:
        (d / "sections.json").write_text(
            json.dumps({"title": title, "sections": [s.to_dict() for s in sections]}, indent=2, default=float)
        )
    return render(d, title=title)


def load_sections(run_dir: str | Path) -> tuple[str | None, list[Section]]:
    """The title and sections of a run folder (from ``sections.json``, else derived from rows).

    Raises:
        DataError: the folder has no ``summary.json`` and no ``sections.json``.
    """
    d = Path(run_dir)
    sec = d / "sections.json"
    if sec.is_file():
        payload = json.loads(sec.read_text())
        return payload.get("title"), [Section.from_dict(s) for s in payload.get("sections", [])]
    src = d / "summary.json"
    if not src.is_file():
        raise DataError(
            f"{d} is not a run folder: {src} is missing (run `interlearn run RECIPE.yaml` or `interlearn tour` first)"
        )
    rows = json.loads(src.read_text())
    kind = None
    if (d / "recipe.json").is_file():
        kind = json.loads((d / "recipe.json").read_text()).get("kind")
    return None, sections_from_rows(rows, kind, d)


def render(run_dir: str | Path, title: str | None = None) -> Path:
    """Re-render ``summary.md`` of a run folder: one section per paradigm.

    Raises:
        DataError: the folder has no ``summary.json`` (nor ``sections.json``).
    """
    d = Path(run_dir)
    stored_title, sections = load_sections(d)
    title = title or stored_title or f"interlearn run {d.name}"
    lines = [f"# {title}", ""]
    if len(sections) > 1 and any(s.seeds for s in sections):  # gains over seeds, with where they stop
        lines += [
            "| paradigm | baseline | result | gain ± SE | seeds | verdict | stops paying |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for s in sections:
            se = f" ± {_diff(s.difference_se, s.metric).lstrip('+')}" if s.difference_se is not None else ""
            lines.append(
                f"| {s.paradigm} | {_value(s.baseline_value, s.metric)} | {_value(s.result_value, s.metric)} | "
                f"{_diff(s.difference, s.metric)}{se} | {len(s.seeds)} | {s.verdict.split(':')[0]} | {s.stops or '—'} |"
            )
        lines.append("")
    elif len(sections) > 1:
        lines += ["| paradigm | baseline | result | difference | verdict |", "|---|---:|---:|---:|---|"]
        for s in sections:
            lines.append(
                f"| {s.paradigm} | {_value(s.baseline_value, s.metric)} | {_value(s.result_value, s.metric)} | "
                f"{_diff(s.difference, s.metric)} | {s.verdict} |"
            )
        lines.append("")
    lines += [section_markdown(s) for s in sections]
    if (d / "notes.md").is_file():  # statements a recipe adds (e.g. what a DP epsilon covers)
        lines += [(d / "notes.md").read_text().strip(), ""]
    (d / "summary.md").write_text("\n".join(lines).rstrip() + "\n")
    return d / "summary.md"


def print_sections(sections: Sequence[Section], title: str) -> None:
    """The report's overview as a terminal table (paradigm, baseline, result, difference, verdict)."""
    table = Table(title=title, show_lines=False)
    stops = any(s.stops for s in sections)
    seeds = any(s.seeds for s in sections)
    cols = ("paradigm", "baseline", "result", "gain ± SE" if seeds else "difference", "verdict") + (
        ("stops paying",) if stops else ()
    )
    for col in cols:
        table.add_column(
            col, justify="right" if col in ("baseline", "result", "difference") else "left", overflow="fold"
        )
    for s in sections:
        diff = _diff(s.difference, s.metric)
        if s.difference_se is not None and s.seeds:
            diff += f" ± {_diff(s.difference_se, s.metric).lstrip('+')}"
        table.add_row(
            s.paradigm,
            f"{s.baseline}: {_value(s.baseline_value, s.metric)}" if s.baseline else "—",
            f"{s.result}: {_value(s.result_value, s.metric)}",
            diff,
            s.verdict.split(":")[0] if seeds else s.verdict,  # the gain is in its own column
            *((s.stops or "—",) if stops else ()),
        )
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: no terminal width to fit
        console = Console(width=140)
    console.print(table)
