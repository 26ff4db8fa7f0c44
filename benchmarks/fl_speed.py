"""Federated simulation speed: interlearn (vectorized, sequential) vs Flower 1.42 and pfl-research 0.6.

Usage:
    python benchmarks/fl_speed.py --data-dir ../shared/data --json benchmarks/results/fl_speed.json

Workload (McMahan et al. 2017, MNIST 2NN): 784-200-200-10 MLP, 100 clients with pathological
non-IID shards (200 shards of 300 examples sorted by label, 2 per client, interlearn's
``partition.shards``), 10 clients per round, E=1, B=10, client SGD lr 0.1, FedAvg weighted by
examples, 20 rounds. A prep step writes the partition, the cohort schedule (the one interlearn's
``simulate`` draws for the seed) and the initial weights; every tool reads them, so all four
train the same clients in the same rounds from the same start. Each tool runs in a fresh
subprocess (pfl in its own venv, .venv-bench) with one torch thread; Flower uses Ray limited to
2 CPUs. "wall_s" is launch-to-exit of that subprocess (imports, data loading, Ray start-up
included); "per_round_s" is the median round time over rounds 2..R; "final_acc" is the
MNIST test accuracy of each tool's final weights, scored by the same function.
"interlearn_fused_mlp" is the library's ``fused_mlp`` engine (interlearn.federated.engines.fused_mlp:
closed-form batched backward for Linear/ReLU stacks, SGD fused into ``baddbmm_``), the path the
``vectorized`` engine dispatches to for such models once that dispatch is wired in.
JSON keys: "tools" {name: {...}}, "speedup_vs_flower", "speedup_vs_pfl",
"speedup_vs_flower_per_round", "speedup_vs_pfl_per_round" (interlearn vectorized vs peer), "targets";
"<engine>_speedup_vs_<peer>..." for the other interlearn rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fl_peers"))

from common import accuracy, read_mnist  # noqa: E402

from interlearn.federated.params import model_params  # noqa: E402
from interlearn.federated.partition import shards  # noqa: E402
from interlearn.federated.sampling import round_generator, sample_cohort  # noqa: E402
from interlearn.models.mlp import mnist_2nn  # noqa: E402

TOOLS = ("interlearn_vectorized", "interlearn_sequential", "interlearn_fused_mlp", "pfl", "flower")


def prep(folder: Path, data_dir: str, rounds: int, seed: int, clients: int = 100, cohort: int = 10) -> None:
    """Write the shared problem: config, partition + cohort schedule, initial 2NN weights."""
    _, y = read_mnist(data_dir, "train")
    parts = shards(torch.from_numpy(y), clients, shards_per_client=2, seed=seed)
    # shards come sorted by label; shuffle each client's order once (pfl iterates without shuffling)
    g = torch.Generator().manual_seed(seed + 1)
    parts = [p[torch.randperm(len(p), generator=g)] for p in parts]
    schedule = np.array([sample_cohort(clients, cohort, round_generator(seed, r, 0)) for r in range(1, rounds + 1)])
    np.savez(folder / "partition.npz", schedule=schedule, **{f"c{i}": p.numpy() for i, p in enumerate(parts)})
    torch.save([t.clone() for t in model_params(mnist_2nn(seed=seed)).values()], folder / "init.pt")
    cfg = dict(num_clients=clients, rounds=rounds, cohort=cohort, lr=0.1, batch_size=10, local_epochs=1, seed=seed, data_dir=str(Path(data_dir).resolve()))
    (folder / "config.json").write_text(json.dumps(cfg))


def command(tool: str, prep_dir: Path, out: Path, pfl_python: str) -> list[str]:
    if tool.startswith("interlearn_"):
        return [sys.executable, str(HERE / "fl_peers" / "interlearn_worker.py"), str(prep_dir), str(out), tool.split("_", 1)[1]]
    if tool == "pfl":
        return [pfl_python, str(HERE / "fl_peers" / "pfl_worker.py"), str(prep_dir), str(out)]
    return [sys.executable, str(HERE / "fl_peers" / "flower_worker.py"), str(prep_dir), str(out)]


def run_tool(tool: str, prep_dir: Path, work: Path, pfl_python: str, test: tuple[np.ndarray, np.ndarray]) -> dict:
    out = work / tool
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE / "fl_peers"), "RAY_DEDUP_LOGS": "0"}
    log = work / f"{tool}.log"
    t0 = time.time()
    with log.open("w") as fh:
        proc = subprocess.run(command(tool, prep_dir, out, pfl_python), stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=work)
    wall = time.time() - t0
    if proc.returncode != 0:
        tail = log.read_text()[-2000:]
        print(f"{tool} FAILED (exit {proc.returncode}):\n{tail}")
        return {"error": f"exit {proc.returncode}", "log_tail": tail[-500:]}
    tl = json.loads((out / "timeline.json").read_text())
    marks = [tl["round_start"], *tl["round_end"]]
    rounds = np.diff(marks).tolist()
    cpu = np.diff(tl["cpu_marks"]).tolist() if "cpu_marks" in tl else None
    return {
        "wall_s": wall,
        "train_s": marks[-1] - marks[0],
        "startup_s": marks[0] - t0,
        "per_round_s": statistics.median(rounds[1:]) if len(rounds) > 1 else rounds[0],
        "first_round_s": rounds[0],
        # CPU seconds of the process that trains (None for Flower: its clients run in Ray actors)
        "cpu_per_round_s": statistics.median(cpu[1:]) if cpu and len(cpu) > 1 else None,
        "rounds_run": len(rounds),
        "round_s": rounds,
        "final_acc": accuracy(torch.load(out / "final.pt"), *test),
    }


def summarize(res: dict[str, dict], rounds: int, seed: int) -> dict:
    """The JSON: the workload, every tool's numbers, the ratios and the targets.

    Headline ratios ("speedup_vs_flower", ...) are interlearn ``vectorized`` vs the peer;
    "<tool>_speedup_vs_<peer>..." give the same for the other interlearn rows. Targets: 20x
    Flower end to end and 2x pfl per round, each with final accuracies within 1 point.
    """
    out: dict = {"workload": {"model": "mnist_2nn 784-200-200-10", "clients": 100, "partition": "shards 2/client (200x300)", "cohort": 10,
                              "E": 1, "B": 10, "lr": 0.1, "rounds": rounds, "seed": seed, "torch_threads": 1, "ray_cpus": 2},
                 "tools": res}
    targets: dict[str, dict] = {}
    for tool in ("interlearn_vectorized", "interlearn_sequential", "interlearn_fused_mlp"):
        ours = res.get(tool, {})
        prefix = "" if tool == "interlearn_vectorized" else tool.split("_", 1)[1] + "_"
        for peer, need, key in (("flower", 20.0, "wall_s"), ("pfl", 2.0, "per_round_s")):
            theirs = res.get(peer, {})
            if "wall_s" not in ours or "wall_s" not in theirs:
                continue
            out[f"{prefix}speedup_vs_{peer}"] = theirs["wall_s"] / ours["wall_s"]
            out[f"{prefix}speedup_vs_{peer}_per_round"] = theirs["per_round_s"] / ours["per_round_s"]
            if ours.get("cpu_per_round_s") and theirs.get("cpu_per_round_s"):
                out[f"{prefix}speedup_vs_{peer}_cpu_per_round"] = theirs["cpu_per_round_s"] / ours["cpu_per_round_s"]
            if tool == "interlearn_vectorized":
                gap = abs(ours["final_acc"] - theirs["final_acc"]) * 100
                ratio = theirs[key] / ours[key]
                targets[f"{need:g}x_{peer}_{'end_to_end' if key == 'wall_s' else 'per_round'}"] = {
                    "ratio": ratio, "accuracy_gap_points": gap, "met": bool(ratio >= need and gap <= 1.0)}
    out["targets"] = targets
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"), help="folder with mnist/ (default $INTERLEARN_DATA)")
    ap.add_argument("--json", default="benchmarks/results/fl_speed.json")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma list from {TOOLS}")
    ap.add_argument("--pfl-python", default=str(HERE.parent / ".venv-bench" / "bin" / "python"), help="interpreter with pfl 0.6 installed")
    args = ap.parse_args()
    if not args.data_dir:
        ap.error("--data-dir (or INTERLEARN_DATA) is required")
    torch.set_num_threads(1)
    tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        ap.error(f"unknown tools {unknown}; choose from {TOOLS}")
    test = read_mnist(args.data_dir, "test")
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="fl_speed_") as tmp:
        work = Path(tmp)
        prep(work, args.data_dir, args.rounds, args.seed)
        for tool in tools:
            print(f"== {tool}", flush=True)
            res[tool] = run_tool(tool, work, work, args.pfl_python, test)
            if "error" not in res[tool]:
                r = res[tool]
                print(f"   wall {r['wall_s']:.1f}s  per-round {r['per_round_s']:.3f}s  acc {r['final_acc']:.4f}", flush=True)
        ref = work / "interlearn_sequential" / "final.pt"
        for tool in tools:  # same seed and data: how far each tool's final weights are from sequential's
            mine = work / tool / "final.pt"
            if tool != "interlearn_sequential" and ref.exists() and mine.exists():
                diffs = [float((a - b).abs().max()) for a, b in zip(torch.load(ref), torch.load(mine), strict=True)]
                res[tool]["max_abs_param_diff_vs_sequential"] = max(diffs)

    out = summarize(res, args.rounds, args.seed)

    print(f"\n{'tool':24s} {'wall s':>8s} {'startup s':>9s} {'round s':>8s} {'cpu/round':>9s} {'final acc':>9s}")
    for tool, r in res.items():
        if "error" in r:
            print(f"{tool:24s} FAILED: {r['error']}")
        else:
            cpu = "n/a" if r["cpu_per_round_s"] is None else f"{r['cpu_per_round_s']:.3f}"
            print(f"{tool:24s} {r['wall_s']:8.1f} {r['startup_s']:9.1f} {r['per_round_s']:8.3f} {cpu:>9s} {r['final_acc']:9.4f}")
    for k, v in out.items():
        if "speedup" in k:
            print(f"{k:40s} {v:.2f}x")
    for name, t in out["targets"].items():
        print(f"target {name}: {t['ratio']:.2f}x, accuracy gap {t['accuracy_gap_points']:.2f} pt -> {'MET' if t['met'] else 'NOT MET'}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
