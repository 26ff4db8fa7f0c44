"""The same FedAvg workload on the vectorized, sequential, Ray and Flower engines.

Workload (``interlearn.federated.flower.demo``): an MLP (784-64-10) on MNIST, N clients with an
IID shard each, every client in every round, LocalSGD (1 epoch, batch 32, lr 0.05), FedAvg, one
seed. The Flower engine is a real deployment on this machine: ``flower-superlink`` plus one
``flower-supernode`` per client on loopback, the run submitted with ``flwr run``.

Reports per engine: wall seconds per round (the round loop's own ``round_seconds``: the mean over
all rounds, and the steady state over rounds 2..R, which excludes first-call warm-up), start-up
seconds paid once per run (Ray's ``ray.init`` and first workers; Flower's processes, app
install and node discovery), the final test accuracy, and ``max_param_diff``: the largest
absolute difference between the engine's final params and the sequential engine's.

    python benchmarks/fl_engines.py --data-dir ../shared/data --json benchmarks/results/fl_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.checkpoint import load_checkpoint
from interlearn.federated.engines import get_engine
from interlearn.federated.flower import FINAL, LocalFederation, demo, run_job, write_flower_app

ENGINES = ("auto", "vectorized", "sequential", "multicore", "ray", "flower")
APP_MODULE = """from interlearn.federated.flower import demo

server_app = demo.server_app
client_app = demo.client_app
"""


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def run_in_process(name: str, run_config: dict, num_cpus: int) -> dict:
    job = demo.job(types.SimpleNamespace(run_config=run_config))
    pop = demo.population(run_config)
    kwargs = {"num_cpus": num_cpus} if name == "ray" else {}
    engine = get_engine(name, **kwargs)
    t0 = time.perf_counter()
    try:
        res = run_job(job, engine, pop, None)  # simulate starts the engine (workers, warm-up, Ray) once
    finally:
        engine.stop()
    total = time.perf_counter() - t0
    rounds = [float(h["round_seconds"]) for h in res.history]
    return {
        "params": res.params,
        "round_seconds": rounds,
        "startup_seconds": total - sum(rounds),
        "total_seconds": total,
        "final_accuracy": res.final_accuracy,
        "engine": res.engine,
    }


def run_flower(run_config: dict, workdir: Path) -> dict:
    app = write_flower_app(workdir / "app", APP_MODULE, dict(demo.DEFAULTS), name="interlearndemo")
    run_dir = workdir / "run"
    t0 = time.perf_counter()
    nodes = [{"partition-id": i} for i in range(int(run_config["num-clients"]))]
    with LocalFederation(workdir / "deploy", nodes) as fed:
        fed.run(app, {**run_config, "run-dir": str(run_dir)}, timeout_s=1800)
    total = time.perf_counter() - t0
    params, meta = load_checkpoint(run_dir / FINAL)
    records = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines() if s.strip()]
    rounds = [float(r["round_seconds"]) for r in records]
    return {
        "params": params,
        "round_seconds": rounds,
        "startup_seconds": total - sum(rounds),
        "total_seconds": total,
        "final_accuracy": meta.get("final_accuracy"),
        "reported": [r.get("reported") for r in records],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA", "../shared/data"))
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--examples-per-client", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ray-cpus", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engines {unknown}; choose from {list(ENGINES)}")
    if "sequential" not in engines:
        engines.insert(0, "sequential")  # the reference for max_param_diff
    run_config = {
        **demo.DEFAULTS,
        "data-dir": str(Path(args.data_dir).resolve()),
        "num-clients": args.clients,
        "clients-per-round": args.clients,
        "examples-per-client": args.examples_per_client,
        "num-rounds": args.rounds,
    }
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="fl_engines_") as tmp:
        for name in engines:
            print(f"running {name} ...", flush=True)
            out[name] = (
                run_flower(run_config, Path(tmp) / name)
                if name == "flower"
                else run_in_process(name, run_config, args.ray_cpus)
            )
    ref = out["sequential"]["params"]
    rows = {}
    for name, r in out.items():
        rows[name] = {
            "wall_seconds_per_round": statistics.fmean(r["round_seconds"]),
            "steady_seconds_per_round": statistics.fmean(r["round_seconds"][1:] or r["round_seconds"]),
            "round_seconds": r["round_seconds"],
            "startup_seconds": r["startup_seconds"],
            "total_seconds": r["total_seconds"],
            "final_accuracy": r["final_accuracy"],
            "max_param_diff": _max_diff(r["params"], ref),
            "engine": r.get("engine", name),
        }
        if "reported" in r:
            rows[name]["reported"] = r["reported"]
    seq = rows["sequential"]["steady_seconds_per_round"]
    print(
        f"\nFedAvg, MNIST MLP, {args.clients} clients x {args.examples_per_client} examples, {args.rounds} rounds, 1 thread"
    )
    print(
        f"{'engine':<11}{'s/round':>9}{'steady':>9}{'vs seq':>9}{'startup s':>11}{'total s':>9}{'test acc':>10}{'max_param_diff':>16}"
    )
    for name, r in rows.items():
        print(
            f"{name:<11}{r['wall_seconds_per_round']:>9.3f}{r['steady_seconds_per_round']:>9.3f}"
            f"{r['steady_seconds_per_round'] / seq:>8.1f}x{r['startup_seconds']:>11.2f}{r['total_seconds']:>9.2f}"
            f"{r['final_accuracy']:>10.4f}{r['max_param_diff']:>16.2e}"
        )
    result = {
        "workload": {
            "dataset": "mnist",
            "model": "mlp 784-64-10",
            "clients": args.clients,
            "examples_per_client": args.examples_per_client,
            "rounds": args.rounds,
            "clients_per_round": args.clients,
            "local_epochs": demo.DEFAULTS["local-epochs"],
            "batch_size": demo.DEFAULTS["batch-size"],
            "lr": demo.DEFAULTS["lr"],
            "ray_cpus": args.ray_cpus,
            "torch_threads": 1,
            "machine_cpus": os.cpu_count(),
        },
        "engines": rows,
        "max_param_diff": {k: v["max_param_diff"] for k, v in rows.items()},
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
