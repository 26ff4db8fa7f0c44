"""Feature caching: train a new head on cached features vs forwarding the frozen backbone every epoch.

Small CNNs are pretrained (one epoch on 12,000 MNIST images of digits 0-4) and frozen; a fresh
head is then trained on 1,000 images of digits 5-9 for the same number of epochs, with the same
seed, batches and optimizer, twice: (a) ``fit_head(..., cache=False)`` forwards the frozen
backbone every epoch; (b) ``fit_head(..., cache=True)`` computes the features once and trains the
head on them. Reported per configuration: wall time of each (the cached time *includes*
computing the features), the speedup, the largest difference between the two trained heads'
weights and both test accuracies. The speedup grows with the backbone's cost relative to the
head's and with the number of epochs (it can never exceed about ``epochs``, since the cached path
still runs the backbone once), so three configurations are reported: the headline is the wider
CNN (32/64 channels) with a linear head, the usual transfer set-up of a heavier frozen backbone
and a light head.

    python benchmarks/feature_cache.py --data-dir ../shared/data --json benchmarks/results/feature_cache.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.config import FitConfig
from interlearn.data import TensorData, load_mnist
from interlearn.features import fit_head
from interlearn.models.small_cnn import small_cnn
from interlearn.surgery import freeze
from interlearn.tasks import classification
from interlearn.training import evaluate
from interlearn.transfer import fresh_tail, pretrain, split_at


def compare(base: torch.nn.Sequential, cut: int, train: TensorData, test: TensorData, cfg: FitConfig) -> dict:
    body = copy.deepcopy(split_at(base, cut)[0])
    freeze(body)
    task = classification(5)
    head0 = fresh_tail(base, cut, 5, seed=0)
    out = {}
    for name, cache in (("uncached", False), ("cached", True)):
        head = copy.deepcopy(head0)
        t0 = time.perf_counter()
        res = fit_head(body, head, train, task, cfg, cache=cache)
        seconds = time.perf_counter() - t0
        if res.cached != cache:  # the benchmark must measure the path it names
            raise RuntimeError(f"expected cached={cache}, got {res.cached}: {res.reason}")
        acc = evaluate(torch.nn.Sequential(*body, *head), test, task)["accuracy"]
        out[name] = {"seconds": seconds, "cache_seconds": res.cache_seconds, "accuracy": acc, "head": head}
    diff = max(
        float((a - b).detach().abs().max())
        for a, b in zip(out["uncached"]["head"].parameters(), out["cached"]["head"].parameters())
    )
    row = {k: {kk: vv for kk, vv in v.items() if kk != "head"} for k, v in out.items()}
    row["speedup"] = row["uncached"]["seconds"] / row["cached"]["seconds"]
    row["speedup_excluding_cache_build"] = row["uncached"]["seconds"] / max(
        row["cached"]["seconds"] - row["cached"]["cache_seconds"], 1e-9
    )
    row["max_weight_diff"] = diff
    row["same_accuracy"] = row["uncached"]["accuracy"] == row["cached"]["accuracy"]
    row["cut"] = cut
    row["head_layers"] = [n for n, _ in head0.named_children()]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("INTERLEARN_DATA"), help="folder with mnist/ (default $INTERLEARN_DATA)"
    )
    parser.add_argument("--json", default="benchmarks/results/feature_cache.json")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--pretrain-examples", type=int, default=12000, help="images of digits 0-4 to pretrain on")
    parser.add_argument("--test-examples", type=int, default=0, help="test images of digits 5-9 (0: all; smoke tests)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    tr, te = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    src = tr.y < 5
    source = TensorData(tr.x[src], tr.y[src])
    g = torch.Generator().manual_seed(0)
    pool = (~src).nonzero().flatten()
    pick = pool[torch.randperm(len(pool), generator=g)[: args.examples]]
    target = TensorData(tr.x[pick], tr.y[pick] - 5)
    test = TensorData(te.x[te.y >= 5], te.y[te.y >= 5] - 5)
    if args.test_examples:
        test = TensorData(test.x[: args.test_examples], test.y[: args.test_examples])

    cfg = FitConfig(epochs=args.epochs, batch_size=128, lr=1e-3, warmup=0.1, seed=0, device="cpu", restore_best=False)
    pre = FitConfig(epochs=1, batch_size=128, lr=2e-3, warmup=0.05, device="cpu")
    sub = source.subset(torch.randperm(len(source), generator=g)[: args.pretrain_examples])
    rows = {}
    for label, channels, cut in (
        ("CNN 32/64, linear head", (32, 64), 9),
        ("CNN 16/32, linear head", (16, 32), 9),
        ("CNN 16/32, fc1+fc2 head", (16, 32), 7),
    ):
        base = small_cnn(5, channels=channels, seed=0)
        pretrain(base, sub, classification(5), pre)
        rows[label] = compare(base, cut, target, test, cfg)
        print(f"{label}: speedup {rows[label]['speedup']:.1f}x", flush=True)
    head = rows["CNN 32/64, linear head"]
    result = {
        "speedup": head["speedup"],
        "speedup_excluding_cache_build": head["speedup_excluding_cache_build"],
        "max_weight_diff": head["max_weight_diff"],
        "same_accuracy": head["same_accuracy"],
        "min_speedup_over_configs": min(r["speedup"] for r in rows.values()),
        "epochs": args.epochs,
        "examples": args.examples,
        "batch_size": cfg.batch_size,
        "configs": rows,
        "torch_threads": torch.get_num_threads(),
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(
        f"{'configuration':<28} {'uncached s':>10} {'cached s':>9} {'(of which cache)':>16} {'speedup':>8} {'max |dW|':>9} {'acc uncached':>12} {'acc cached':>10}"
    )
    for name, r in rows.items():
        print(
            f"{name:<28} {r['uncached']['seconds']:>10.2f} {r['cached']['seconds']:>9.2f} {r['cached']['cache_seconds']:>16.2f} "
            f"{r['speedup']:>7.1f}x {r['max_weight_diff']:>9.2e} {r['uncached']['accuracy']:>12.4f} {r['cached']['accuracy']:>10.4f}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
