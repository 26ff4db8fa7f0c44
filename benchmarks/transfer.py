"""Transfer vs fine-tuning vs scratch on MNIST at 1/5/10/50 labels per class (3 seeds).

Abundant related task: MNIST digits 0-4 (all ~30.6k training images). Task of interest: digits
5-9 with 1/5/10/50 labelled training images per class; accuracy on all test images of 5-9.
All methods share one architecture (interlearn's small CNN) and one fixed training budget
(300 AdamW steps, lr 1e-3, warmup + cosine, batch <= 32); nothing is tuned on the test set:
the transfer cut is chosen by cross-validation on the labelled set only (cut="auto"; with one
label per class CV is impossible and a stated rule picks the middle candidate), fine-tuning
uses the same cut with the pretrained layers at 0.1x the learning rate. The base is
pretrained once per seed (2 epochs) and reused at every budget.

    python benchmarks/transfer.py --data-dir ../shared/data --json benchmarks/results/transfer.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.budgets import BudgetConfig, label_budgets
from interlearn.data import TensorData, load_mnist
from interlearn.models.small_cnn import small_cnn
from interlearn.tasks import classification


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("INTERLEARN_DATA"), help="folder with mnist/ (default $INTERLEARN_DATA)"
    )
    parser.add_argument("--json", default="benchmarks/results/transfer.json", help="where to write the results")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", default="1,5,10,50", help="labels per class, comma separated")
    parser.add_argument("--plot", default=None, help="PNG path (default: next to --json)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    train, test = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    src = train.y < 5
    source = TensorData(train.x[src], train.y[src])
    target = TensorData(train.x[~src], train.y[~src] - 5)
    target_test = TensorData(test.x[test.y >= 5], test.y[test.y >= 5] - 5)
    budgets = tuple(int(b) for b in args.budgets.split(","))
    cfg = BudgetConfig(labels_per_class=budgets, seeds=tuple(range(args.seeds)))
    t0 = time.perf_counter()
    report = label_budgets(
        lambda s: small_cnn(5, image_size=28, seed=s),
        source,
        classification(5),
        target,
        target_test,
        classification(5),
        cfg,
        progress=lambda line: print(line, flush=True),
    )
    seconds = time.perf_counter() - t0

    curve = report.curve()
    at10 = next((r for r in curve if r["labels_per_class"] == 10), curve[-1])
    out = {
        "scratch_acc": at10.get("scratch_mean"),
        "transfer_acc": at10.get("transfer_mean"),
        "finetune_acc": at10.get("finetune_mean"),
        "labels_per_class_of_headline": at10["labels_per_class"],
        "curve": curve,
        "autocuts": report.autocuts,
        "runs": report.runs,
        "seconds": seconds,
        "config": report.to_dict()["config"],
        "torch_threads": torch.get_num_threads(),
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    plot = report.plot(args.plot or path.with_suffix(".png"), title="MNIST 0-4 -> 5-9: accuracy vs labels/class")
    print()
    print(report.table())
    print(
        f"\nat {at10['labels_per_class']} labels/class: scratch {100 * out['scratch_acc']:.1f}%, "
        f"transfer (auto cut) {100 * out['transfer_acc']:.1f}% ({100 * (out['transfer_acc'] - out['scratch_acc']):+.1f}), "
        f"fine-tune {100 * out['finetune_acc']:.1f}% ({100 * (out['finetune_acc'] - out['scratch_acc']):+.1f})"
    )
    print(f"total {seconds:.0f}s; wrote {path} and {plot}")


if __name__ == "__main__":
    main()
