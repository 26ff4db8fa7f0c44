"""Markdown tables rendered from benchmarks/results/*.json (used by assemble.py).

Each function takes ``load(name) -> dict`` (the parsed ``results/<name>.json``) and returns a
Markdown table; nothing here is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Load = Callable[[str], Any]

_TOOLS = ["auto", "sequential", "vectorized", "multicore", "ray", "flower", "pfl"]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def fl_matrix(load: Load) -> str:
    """Seconds per round, first round, end to end and accuracy of every tool on every workload."""
    d = load("fl_matrix")
    out = [_row(["workload", "tool", "s / round", "first round s", "end to end s", "final acc", "vs auto (per round)"]),
           _row(["---", "---", "---:", "---:", "---:", "---:", "---:"])]
    for w, res in d["results"].items():
        auto = res.get("auto", {}).get("s_per_round")
        for tool in [t for t in _TOOLS if t in res]:
            r = res[tool]
            if "error" in r:
                out.append(_row([w, tool, "failed", "", "", "", r["error"]]))
                continue
            ratio = f"{r['s_per_round'] / auto:.2f}x" if auto else ""
            name = f"{tool} ({r['engine']})" if tool == "auto" and r.get("engine") else tool
            out.append(_row([w, name, f"{r['s_per_round']:.3f}", f"{r['first_round_s']:.3f}", f"{r['end_to_end_s']:.1f}",
                             f"{r['final_acc']:.4f}", ratio]))
        if w in d.get("floor_s_per_round", {}):
            out.append(_row([w, "compute floor, 2 cores", f"{d['floor_s_per_round'][w]:.3f}", "", "", "", ""]))
    return "\n".join(out)


def fl_matrix_targets(load: Load) -> str:
    """The issue's targets with the measured value and met / not met."""
    d = load("fl_matrix")
    out = [_row(["target", "measured", "met?"]), _row(["---", "---:", "---"])]
    for name, t in d["targets"].items():
        out.append(_row([name, f"{t['value']:.2f}", "**yes**" if t["met"] else "**no**"]))
    return "\n".join(out)


def _curve(curve: list, label: str) -> str:
    step = max(1, len(curve) // 12)
    pts = curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])
    return "\n".join([_row(["round", label]), _row(["---:", "---:"])] + [_row([str(r), f"{100 * a:.1f}"]) for r, a in pts])


def shakespeare_curve(load: Load) -> str:
    """FedAvg's test accuracy on the curve sample against rounds (at most 13 rows)."""
    return _curve(load("shakespeare")["acc_vs_rounds"]["fedavg"], "test accuracy % (curve sample)")


def femnist_curve(load: Load) -> str:
    """FedAvg's FEMNIST test accuracy against rounds (at most 13 rows)."""
    return _curve(load("femnist")["acc_vs_rounds"], "test accuracy %")


def keyboard_words_curve(load: Load) -> str:
    """The word model's top-1 recall against rounds."""
    return _curve(load("keyboard_words")["acc_vs_rounds"], "top-1 recall % (test users)")


def keyboard_words_personalization(load: Load) -> str:
    """Every personalization method: median and mean gain, users improved and worse."""
    d = load("keyboard_words")
    shipped = d["personalization"]["validated_method"]
    out = [_row(["method", "median gain (pts)", "mean gain (pts)", "users improved", "users worse"]),
           _row(["---", "---:", "---:", "---:", "---:"])]
    for name, s in d["personalization"]["summary"].items():
        label = f"{name} (**shipped**)" if name == shipped else name
        out.append(_row([label, f"{100 * s['median_gain']:+.2f}", f"{100 * s['mean_gain']:+.2f}", f"{s['improved_fraction']:.0%}",
                         str(len(s["worse"]))]))
    return "\n".join(out)


def _ondevice(variants: list[dict], budget: int, extra_key: str | None) -> str:
    head = ["encoding", "bytes", "fraction of float32", "accuracy"] + ([extra_key.replace("_", " ")] if extra_key else []) + ["within budget"]
    out = [_row(head), _row(["---"] + ["---:"] * (len(head) - 1))]
    full = max(v["bytes"] for v in variants)
    for v in sorted(variants, key=lambda v: -v["bytes"]):
        cells = [v["name"], f"{v['bytes']:,}", f"{v['bytes'] / full:.1%}", f"{v['accuracy']:.4f}"]
        if extra_key:
            cells.append(f"{v.get('extra', {}).get(extra_key, float('nan')):.4f}")
        out.append(_row([*cells, "yes" if v["bytes"] <= budget else "no"]))
    return "\n".join(out)


def keyboard_words_ondevice(load: Load) -> str:
    """Every on-device encoding of the word model: bytes, top-1 and top-3 recall."""
    d = load("keyboard_words")
    return _ondevice(d["ondevice"], d["ondevice_budget_bytes"], "top3_recall")


def shakespeare_ondevice(load: Load) -> str:
    """Every on-device variant of the character model: bytes and accuracy (curve sample)."""
    d = load("shakespeare")
    return _ondevice(d["ondevice_variants"], d["ondevice_budget_bytes"], None)
