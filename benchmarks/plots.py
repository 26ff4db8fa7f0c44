"""Overview plots for the README from the benchmark JSON in benchmarks/results/.

    python benchmarks/plots.py            # writes benchmarks/results/overview.png (--out elsewhere)

Each panel is drawn only when its JSON exists; nothing here is measured, only re-plotted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def fl_matrix(ax) -> bool:
    d = _load("fl_matrix")
    if not d or "floor" not in d:
        return False
    workloads = list(d["results"])
    tools = ["auto", "sequential", "vectorized", "multicore", "plain", "flower", "pfl"]
    width = 0.8 / len(tools)
    for i, tool in enumerate(tools):
        rates = [d["results"][w].get(tool, {}).get("us_per_example") for w in workloads]
        # per workload, relative to the roofline floor: one scale for microseconds and milliseconds
        ys = [r["median"] / d["floor"][w]["us_per_example"] if r else float("nan") for r, w in zip(rates, workloads)]
        lo = [(r["median"] - r["min"]) / d["floor"][w]["us_per_example"] if r else 0 for r, w in zip(rates, workloads)]
        hi = [(r["max"] - r["median"]) / d["floor"][w]["us_per_example"] if r else 0 for r, w in zip(rates, workloads)]
        xs = [j + (i - len(tools) / 2) * width for j in range(len(workloads))]
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=1, label=tool)
    ax.axhline(1.0, color="k", ls="dashed", lw=1)
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(range(len(workloads)), [w.replace("_", " ") for w in workloads], fontsize=7)
    ax.set_ylabel("time per example / roofline floor (log)")
    ax.set_title("FL simulation speed, 2 cores (median, range)")
    ax.legend(fontsize=6, ncol=2)
    return True


def transfer(ax) -> bool:
    d = _load("transfer")
    if not d:
        return False
    xs = [c["labels_per_class"] for c in d["curve"]]
    for key, label in (("scratch", "scratch"), ("transfer", "transfer (auto cut)"), ("finetune", "fine-tune")):
        ys = [100 * c[f"{key}_mean"] for c in d["curve"]]
        es = [100 * c[f"{key}_std"] for c in d["curve"]]
        ax.errorbar(xs, ys, yerr=es, marker="o", ms=3, capsize=2, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("labels per class (MNIST 5-9)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("transfer from digits 0-4")
    ax.legend(fontsize=7)
    return True


def privacy(ax) -> bool:
    d = _load("fl_privacy")
    if not d:
        return False
    pts = sorted(d["points"], key=lambda p: p["epsilon"])
    ax.plot([p["epsilon"] for p in pts], [100 * p["accuracy"] for p in pts], marker="o")
    ax.set_xscale("log")
    ax.set_xlabel("ε (δ from the run, Opacus RDP)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("central DP-FedAvg on MNIST")
    return True


def distill(ax) -> bool:
    d = _load("distill")
    if not d:
        return False
    names = ["teacher", "student alone", "distilled"]
    vals = [d["teacher_errors"], d["student_errors"], d["distilled_errors"]]
    ax.bar(names, vals, color=["#777777", "#cc6677", "#117733"])
    for i, v in enumerate(vals):
        ax.text(i, v, str(v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("MNIST test errors")
    ax.set_title("distillation (Hinton 2015)")
    return True


def multimnist(ax) -> bool:
    """Left vs right accuracy of every 100-epoch MultiMNIST row, with the 97/96 target."""
    files = sorted(RESULTS.glob("multitask_100epochs*.json"))
    if not files:
        return False
    style = {"hard": ("o", "#4477aa"), "soft": ("^", "#117733"), "independent": ("*", "#cc6677")}
    seen = set()
    for f in files:
        arch = "soft" if ("cross_stitch" in f.stem or "mmoe" in f.stem) else "hard"
        tag = "cross-stitch " if "cross_stitch" in f.stem else "MMoE " if "mmoe" in f.stem else ""
        seed = " (seed 1)" if "seed1" in f.stem else ""
        for name, row in json.loads(f.read_text()).items():
            kind = "independent" if name == "independent" else arch
            marker, color = style[kind]
            label = {"hard": "hard sharing", "soft": "soft sharing", "independent": "independent"}[kind]
            ax.scatter(
                100 * row["left_acc"],
                100 * row["right_acc"],
                marker=marker,
                color=color,
                s=60 if kind == "independent" else 25,
                label=None if label in seen else label,
            )
            seen.add(label)
            ax.annotate(
                (tag + name if kind != "independent" else "independent") + seed,
                (100 * row["left_acc"], 100 * row["right_acc"]),
                fontsize=6,
                textcoords="offset points",
                **({"xytext": (-4, -2), "ha": "right"} if kind == "independent" else {"xytext": (3, 2)}),
            )
    ax.scatter(
        [97.23, 97.26, 96.47], [95.90, 95.90, 95.29], marker="x", color="#777777", s=25, label="Sener & Koltun 2018"
    )
    ax.axvline(97.0, color="#999999", lw=0.8, ls="--")
    ax.axhline(96.0, color="#999999", lw=0.8, ls="--")
    ax.set_xlabel("left digit accuracy %")
    ax.set_ylabel("right digit accuracy %")
    ax.set_title("MultiMNIST LeNet, 100 epochs (target: top right of the dashes)")
    ax.legend(fontsize=7, loc="upper left")
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Overview plots from the benchmark JSON in benchmarks/results/.")
    ap.add_argument("--out", default=str(RESULTS / "overview.png"), help="the PNG to write")
    args = ap.parse_args(argv)
    panels = [transfer, distill, fl_matrix, privacy, multimnist]
    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    drawn = [p(ax) for p, ax in zip(panels, axes.flat)]
    drawn += [False] * (axes.size - len(drawn))
    for ok, ax in zip(drawn, axes.flat):
        if not ok:
            ax.axis("off")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
