"""Population scale: 10,000 simulated clients, 100 per round, a small MLP.

Usage:
    python benchmarks/fl_scale.py --json benchmarks/results/fl_scale.json

Each configuration runs in a fresh subprocess, which reports its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its rounds per second over the timed rounds
(the first round, which warms up, is not timed). Data: a synthetic 10-class Gaussian-mixture
problem (16 examples per client, 32 features, 160,000 examples, 20 MB), split IID by
``interlearn.federated.partition.iid``; clients are index views (``Population``), so only the
cohort's data is materialized per round. A subprocess that only imports torch + interlearn and
builds the data gives the baseline RSS. Model: 32-64-10 MLP, FedAvg, LocalSGD E=1, B=8.
JSON keys: "peak_rss_mb", "rounds_per_second" (the vectorized engine), "engines" (per engine),
"baseline_rss_mb", "clients", "cohort", "rounds".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch


def build(clients: int, per_client: int, dim: int, seed: int):  # type: ignore[no-untyped-def]
    from interlearn.federated.partition import iid
    from interlearn.federated.population import Population

    g = torch.Generator().manual_seed(seed)
    n = clients * per_client
    centers = torch.randn(10, dim, generator=g) * 0.35  # overlapping classes: accuracy is not trivially 100%
    y = torch.randint(0, 10, (n,), generator=g)
    x = centers[y] + torch.randn(n, dim, generator=g)
    return Population(x, y, iid(n, clients, seed=seed)), (x[:2000], y[:2000])


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    from interlearn.federated.client import LocalSGD
    from interlearn.federated.simulation import SimulationConfig, simulate
    from interlearn.federated.strategies.registry import get_strategy
    from interlearn.models.mlp import mlp

    pop, test = build(args.clients, args.per_client, args.dim, args.seed)
    if args.worker == "baseline":
        print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    marks: list[float] = []
    res = simulate(
        mlp(args.dim, [64], 10, seed=args.seed),
        pop,
        LocalSGD(epochs=1, batch_size=8, lr=0.1),
        get_strategy("fedavg"),
        SimulationConfig(
            rounds=args.rounds,
            clients_per_round=args.cohort,
            eval_every=0,
            client_eval_max=1000,
            seed=args.seed,
            progress=False,
        ),
        engine=args.worker,
        test=test,
        on_round=lambda rec: marks.append(time.perf_counter()),
    )
    timed = marks[-1] - marks[0]
    print(
        json.dumps(
            {
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rounds_per_second": (len(marks) - 1) / timed,
                "timed_rounds": len(marks) - 1,
                "final_acc": res.final_accuracy,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="benchmarks/results/fl_scale.json")
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--cohort", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--per-client", type=int, default=16)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", default="vectorized,sequential")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    torch.set_num_threads(1)
    common = [
        "--clients",
        str(args.clients),
        "--cohort",
        str(args.cohort),
        "--rounds",
        str(args.rounds),
        "--per-client",
        str(args.per_client),
        "--dim",
        str(args.dim),
        "--seed",
        str(args.seed),
    ]
    results = {}
    for name in ["baseline", *[e for e in args.engines.split(",") if e]]:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", name, *common],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        if proc.returncode != 0:
            raise SystemExit(f"{name} worker failed:\n{proc.stderr[-3000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    engines = {k: v for k, v in results.items() if k != "baseline"}
    main_engine = "vectorized" if "vectorized" in engines else next(iter(engines))
    out = {
        "peak_rss_mb": engines[main_engine]["peak_rss_mb"],
        "rounds_per_second": engines[main_engine]["rounds_per_second"],
        "engine": main_engine,
        "baseline_rss_mb": results["baseline"]["peak_rss_mb"],
        "engines": engines,
        "clients": args.clients,
        "cohort": args.cohort,
        "rounds": args.rounds,
        "examples_per_client": args.per_client,
        "features": args.dim,
        "model": f"mlp {args.dim}-64-10",
        "under_2gb": engines[main_engine]["peak_rss_mb"] < 2048,
    }
    print(f"{'engine':12s} {'peak RSS MB':>12s} {'rounds/s':>9s} {'final acc':>9s}")
    print(f"{'baseline':12s} {out['baseline_rss_mb']:12.0f} {'-':>9s} {'-':>9s}   (imports + data only)")
    for k, v in engines.items():
        print(f"{k:12s} {v['peak_rss_mb']:12.0f} {v['rounds_per_second']:9.2f} {v['final_acc']:9.4f}")
    print(f"peak RSS under 2 GB: {'yes' if out['under_2gb'] else 'NO'}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
