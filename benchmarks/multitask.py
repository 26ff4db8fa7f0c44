"""MultiMNIST left/right accuracy: independent LeNets vs one shared LeNet under each MTL method.

Usage:
    python benchmarks/multitask.py --data-dir ../shared/data --json benchmarks/results/multitask.json

Data: MultiMNIST (interlearn.multitask.data) generated from MNIST train (training set, 60,000 by
default) and MNIST test (10,000 test images), seeded and cached; digits placed as in Sener &
Koltun's loader (left at (0,0), right at (6,6) on the 36x36 canvas; ``--layout random`` for
random 4-8 px offsets, the harder variant our earlier runs used). Model: the LeNet trunk of Sener
& Koltun 2018 (2 conv + fc 50) with a fc-50-ReLU-fc-10 head per task. Every row is trained with
the same FitConfig (Adam, cosine schedule) and the same seed; the final model is scored on test.
Published reference (Sener & Koltun 2018, 100 epochs): single-task 97.23/95.90, uncertainty
96.47/95.29, MGDA-UB 97.26/95.90. JSON: {row: {"left_acc", "right_acc", ...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.config import FitConfig
from interlearn.multitask import CrossStitch, MMoE, MultiTaskModel, TaskSet, heads_for, lenet_stages, lenet_trunk
from interlearn.multitask.compare import compare_methods, comparison_table, plot_comparison
from interlearn.multitask.data import MULTIMNIST_TASKS, load_multimnist

DEFAULT_METHODS = ("equal", "uncertainty", "gradnorm", "mgda_ub", "pcgrad", "upgrad", "famo")


def lenet(dropout: float, arch: str = "hard", experts: int = 2) -> Callable[[TaskSet], MultiTaskModel]:
    """LeNet trunk (fc 50) + a 50-50-10 head per task, as in Sener & Koltun 2018 (their code
    uses channel dropout 0.5 after the second convolution and dropout 0.5 in the heads).

    ``arch``: ``hard`` (one shared LeNet trunk), ``cross_stitch`` (one LeNet column per task,
    stitched after each stage) or ``mmoe`` (``experts`` LeNet trunks, a softmax gate per task).
    A one-task set (the independent baselines) gets a plain LeNet in every case."""

    def build(tasks: TaskSet) -> MultiTaskModel:
        heads = heads_for(tasks.tasks, 50, hidden=50, dropout=dropout)
        if arch == "cross_stitch" and len(tasks) > 1:
            return CrossStitch(lambda: lenet_stages(28, 50, dropout=dropout), heads)
        if arch == "mmoe" and len(tasks) > 1:
            return MMoE(lambda: lenet_trunk(28, 50, dropout=dropout), heads, experts, 28 * 28)
        return MultiTaskModel(lenet_trunk(28, 50, dropout=dropout), heads)

    return build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data-dir", default=os.environ.get("INTERLEARN_DATA"), help="folder with mnist/ (default $INTERLEARN_DATA)"
    )
    ap.add_argument("--json", default="benchmarks/results/multitask.json")
    ap.add_argument("--train-size", type=int, default=60000)
    ap.add_argument("--test-size", type=int, default=None, help="test images (default: all 10,000; smoke tests)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated; empty (--methods '') trains only the independent models",
    )
    ap.add_argument(
        "--layout",
        default="sener_koltun",
        choices=["sener_koltun", "random"],
        help="digit placement: Sener & Koltun's fixed (0,0)/(6,6) layout, or random 4-8 px offsets",
    )
    ap.add_argument(
        "--dropout", type=float, default=0.5, help="trunk and head dropout (Sener & Koltun: 0.5; 0 before 2026-11-27)"
    )
    ap.add_argument(
        "--arch",
        default="hard",
        choices=["hard", "cross_stitch", "mmoe"],
        help="hard sharing (one LeNet trunk), cross-stitch (a LeNet column per task) or MMoE (LeNet experts)",
    )
    ap.add_argument("--experts", type=int, default=2, help="MMoE experts (with --arch mmoe)")
    ap.add_argument("--no-independent", action="store_true", help="skip the single-task baselines (no delta_m_pct)")
    ap.add_argument(
        "--seed", type=int, default=0, help="model initialisation and training seed (the data stay the same)"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--plot", default=None, help="PNG path (default: next to --json)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    train = load_multimnist("train", args.data_dir, n=args.train_size, layout=args.layout)
    test = load_multimnist("test", args.data_dir, n=args.test_size, layout=args.layout)
    print(f"MultiMNIST: {len(train)} train, {len(test)} test ({time.perf_counter() - t0:.1f}s to load/generate)")
    cfg = FitConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer="adam",
        schedule="cosine",
        device=args.device,
        amp=False,
        seed=args.seed,
    )
    methods = [m for m in args.methods.split(",") if m]
    if not methods and args.no_independent:
        ap.error("nothing to train: give --methods or drop --no-independent")
    rows = compare_methods(
        lenet(args.dropout, args.arch, args.experts),
        train,
        test,
        MULTIMNIST_TASKS,
        methods,
        cfg,
        independent=not args.no_independent,
        seed=args.seed,
    )
    out = {
        name: {"left_acc": r["left_accuracy"], "right_acc": r["right_accuracy"]}
        | {k: v for k, v in r.items() if k not in ("left_accuracy", "right_accuracy")}
        for name, r in rows.items()
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    plot = Path(args.plot) if args.plot else Path(args.json).with_suffix(".png")
    plot_comparison(
        rows,
        MULTIMNIST_TASKS,
        plot,
        title=f"MultiMNIST ({args.arch}, {len(train)} train, {args.epochs} epochs, dropout {args.dropout})",
    )
    cols = ["left_acc", "right_acc", "delta_m_pct", "trainable_params", "train_seconds"]
    print(comparison_table(out, cols))
    best = max(
        (n for n in out if n != "independent"), key=lambda n: out[n]["left_acc"] + out[n]["right_acc"], default=None
    )
    if best is not None:
        print(
            f"best method: {best} {100 * out[best]['left_acc']:.2f}/{100 * out[best]['right_acc']:.2f} (target >= 97/96)"
        )
    print(f"total {time.perf_counter() - t0:.0f}s; wrote {args.json} and {plot}")


if __name__ == "__main__":
    main()
