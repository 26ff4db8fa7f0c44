"""Population scale: 10,000 clients held in memory, then up to a million generated lazily.

Usage:
    python benchmarks/fl_scale.py --json benchmarks/results/fl_scale.json
    python benchmarks/fl_scale.py --synthetic 1000000:1000 --json /tmp/one_row.json   # one row

Part 1, a population held in memory (10,000 clients, 100 per round, a small MLP).

Each configuration runs in a fresh subprocess, which reports its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its rounds per second over the timed rounds
(the first round, which warms up, is not timed). Data: a synthetic 10-class Gaussian-mixture
problem (16 examples per client, 32 features, 160,000 examples, 20 MB), split IID by
``interlearn.federated.partition.iid``; clients are index views (``Population``), so only the
cohort's data is materialized per round. A subprocess that only imports torch + interlearn and
builds the data gives the baseline RSS. Model: 32-64-10 MLP, FedAvg, LocalSGD E=1, B=8.
JSON keys: "peak_rss_mb", "rounds_per_second" (the vectorized engine), "engines" (per engine:
"peak_rss_mb", "rounds_per_second", "timed_rounds", "final_acc"), "baseline_rss_mb", "clients",
"cohort", "rounds", "examples_per_client", "features", "model", "under_2gb".

Part 2, a population generated lazily (``SyntheticPopulation``: Synthetic(α=1, β=1) of Li et al.
2020, FedProx §5.1, 60 features, 10 classes, client sizes ``5 + ⌊LogNormal(2, 1)⌋`` capped at 100,
so about 16 examples a client; a client's data is generated from ``(seed, client id)`` when it is
sampled). One fresh subprocess per row ``clients:cohort`` (default 10⁴, 10⁵, 10⁶ clients with
cohorts of 1,000, and 10⁶ with a cohort of 100): multinomial logistic regression (60-10, the
paper's model), FedAvg, ``LocalSGD(epochs=1, batch_size=10, lr=0.05)``, the vectorized engine,
``--synthetic-rounds`` rounds of which the first warms up and is not timed, per-client evaluation
off. The rows run ``--repeats`` times, interleaved (all rows, then all rows again), each time in a
fresh subprocess. JSON key "synthetic": "rows" (one per ``clients:cohort``: "clients", "cohort",
"peak_rss_mb" (the largest of its passes), "s_per_round" (the median over passes of each pass's
median timed round, wall clock, from ``round_seconds``), "s_per_round_of_each_pass",
"s_per_round_min", "s_per_round_max" (over every timed round of every pass), "timed_rounds",
"repeats", "examples_per_round" (mean),
"build_s" (building the population: its sizes), "generate_s_per_cohort" (generating one cohort's
data, timed once after the run), "sample_ms" (drawing one cohort), "final_loss"), "model",
"update", "engine", "sizes", "rounds", "repeats", "under_2gb" (every row), "round_time_ratio" (s_per_round at
the largest population over the smallest, same cohort), "cohort_time_ratio" (at the largest
population: the largest cohort's s_per_round over the smallest's).
The JSON is written only when every subprocess has finished.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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


SYNTHETIC = dict(alpha=1.0, beta=1.0, size_mu=2.0, size_sigma=1.0, min_size=5, max_size=100)


def synthetic_worker(args: argparse.Namespace) -> None:
    """One row of part 2: a lazily generated population of ``args.clients``, cohorts of ``args.cohort``."""
    torch.set_num_threads(1)
    from interlearn.federated.client import LocalSGD
    from interlearn.federated.server.sampling import sample_cohort
    from interlearn.federated.server.simulation import SimulationConfig, simulate
    from interlearn.federated.strategies.registry import get_strategy
    from interlearn.federated.synthetic import SyntheticPopulation
    from interlearn.models.mlp import mlp

    t0 = time.perf_counter()
    pop = SyntheticPopulation(args.clients, seed=args.seed, **SYNTHETIC)  # type: ignore[arg-type]
    build_s = time.perf_counter() - t0
    res = simulate(
        mlp(60, [], 10, seed=args.seed),
        pop,
        LocalSGD(epochs=1, batch_size=10, lr=0.05),
        get_strategy("fedavg"),
        SimulationConfig(
            rounds=args.rounds, clients_per_round=args.cohort, client_eval=False, seed=args.seed, progress=False
        ),
        engine="vectorized",
    )
    timed = sorted(h["round_seconds"] for h in res.history[1:])
    cohort = sample_cohort(args.clients, args.cohort, torch.Generator().manual_seed(args.seed))
    t0 = time.perf_counter()
    examples = sum(len(pop.client(c)) for c in cohort)
    generate_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(args.seed + 1)
    t0 = time.perf_counter()
    for _ in range(10):
        sample_cohort(args.clients, args.cohort, g)
    sample_ms = (time.perf_counter() - t0) / 10 * 1e3
    sizes = pop.sizes.float()
    print(
        json.dumps(
            {
                "clients": args.clients,
                "cohort": args.cohort,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "s_per_round": statistics.median(timed),
                "s_per_round_min": timed[0],
                "s_per_round_max": timed[-1],
                "timed_rounds": len(timed),
                "examples_per_round": float(sizes.mean()) * args.cohort,
                "examples_in_timed_cohort": examples,
                "build_s": build_s,
                "generate_s_per_cohort": generate_s,
                "sample_ms": sample_ms,
                "final_loss": res.history[-1]["train_loss"],
            }
        )
    )


def worker(args: argparse.Namespace) -> None:
    if args.worker == "synthetic":
        synthetic_worker(args)
        return
    torch.set_num_threads(1)
    from interlearn.federated.client import LocalSGD
    from interlearn.federated.server.simulation import SimulationConfig, simulate
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
    ap.add_argument(
        "--synthetic",
        default="10000:1000,100000:1000,1000000:1000,1000000:100",
        help="part 2's rows, clients:cohort, comma-separated ('' skips part 2)",
    )
    ap.add_argument("--synthetic-rounds", type=int, default=11)
    ap.add_argument("--repeats", type=int, default=3, help="part 2: passes over the rows, interleaved")
    ap.add_argument("--skip-part1", action="store_true", help="only part 2 (the JSON then lacks part 1's keys)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    torch.set_num_threads(1)
    out: dict[str, object] = {} if args.skip_part1 else part1(args)
    rows = [r for r in args.synthetic.split(",") if r]
    if rows:
        out["synthetic"] = part2(args, rows)
    if not out:
        raise SystemExit("nothing to run: drop --skip-part1 or give --synthetic rows")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


def _subprocess(name: str, argv: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def part1(args: argparse.Namespace) -> dict[str, object]:
    """10,000 clients held in memory: the baseline and every engine, each in its own process."""
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
    results: dict[str, dict[str, float]] = {}
    for name in ["baseline", *[e for e in args.engines.split(",") if e]]:
        results[name] = _subprocess(name, common)  # type: ignore[assignment]
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
    return out


def part2(args: argparse.Namespace, rows: list[str]) -> dict[str, object]:
    """Lazily generated populations: one process per ``clients:cohort`` row."""
    runs: dict[str, list[dict[str, float]]] = {row: [] for row in rows}
    print(f"{'clients':>9s} {'cohort':>6s} {'peak RSS MB':>12s} {'s/round':>8s} {'min-max':>13s} {'sample ms':>9s}")
    for rep in range(args.repeats):  # interleaved: A B C D, A B C D, ... so load drifts hit every row
        for row in rows:
            clients, cohort = (int(v) for v in row.split(":"))
            argv = ["--clients", str(clients), "--cohort", str(cohort), "--rounds", str(args.synthetic_rounds)]
            r: dict[str, float] = _subprocess("synthetic", [*argv, "--seed", str(args.seed)])  # type: ignore[assignment]
            runs[row].append(r)
            print(
                f"{clients:9d} {cohort:6d} {r['peak_rss_mb']:12.0f} {r['s_per_round']:8.3f} "
                f"{r['s_per_round_min']:6.3f}-{r['s_per_round_max']:.3f} {r['sample_ms']:9.2f}   (pass {rep + 1})",
                flush=True,
            )
    got = []
    for row in rows:
        reps = runs[row]
        merged = dict(reps[0])
        merged.update(
            peak_rss_mb=max(r["peak_rss_mb"] for r in reps),
            s_per_round=statistics.median(r["s_per_round"] for r in reps),
            s_per_round_min=min(r["s_per_round_min"] for r in reps),
            s_per_round_max=max(r["s_per_round_max"] for r in reps),
            timed_rounds=sum(r["timed_rounds"] for r in reps),
            sample_ms=statistics.median(r["sample_ms"] for r in reps),
            generate_s_per_cohort=statistics.median(r["generate_s_per_cohort"] for r in reps),
            repeats=len(reps),
            s_per_round_of_each_pass=[r["s_per_round"] for r in reps],  # type: ignore[dict-item]
        )
        got.append(merged)
    big_cohort = max(r["cohort"] for r in got)
    same = sorted((r for r in got if r["cohort"] == big_cohort), key=lambda r: r["clients"])
    largest = max(r["clients"] for r in got)
    at_largest = sorted((r for r in got if r["clients"] == largest), key=lambda r: r["cohort"])
    out = {
        "rows": got,
        "model": "logistic regression 60-10",
        "update": "LocalSGD(epochs=1, batch_size=10, lr=0.05)",
        "engine": "vectorized",
        "sizes": "5 + floor(LogNormal(2, 1)), at most 100",
        "alpha": SYNTHETIC["alpha"],
        "beta": SYNTHETIC["beta"],
        "rounds": args.synthetic_rounds,
        "repeats": args.repeats,
        "under_2gb": all(r["peak_rss_mb"] < 2048 for r in got),
        "round_time_ratio": same[-1]["s_per_round"] / same[0]["s_per_round"],
        "cohort_time_ratio": at_largest[-1]["s_per_round"] / at_largest[0]["s_per_round"],
    }
    print(
        f"s/round at {int(same[-1]['clients']):,} vs {int(same[0]['clients']):,} clients (cohort {int(big_cohort)}): "
        f"{out['round_time_ratio']:.2f}x; peak RSS under 2 GB: {'yes' if out['under_2gb'] else 'NO'}"
    )
    return out


if __name__ == "__main__":
    main()
