"""Federated simulation speed on three workloads, per training example: every interlearn engine
vs a plain PyTorch loop, Flower 1.42 and pfl 0.6, against a roofline floor.

Usage:
    python benchmarks/fl_matrix.py --data-dir ../shared/data --json benchmarks/results/fl_matrix.json
        [--repeats 3] [--rounds R] [--workloads mnist_2nn,femnist_cnn,shakespeare_lstm]
        [--tools auto,sequential,...] [--flower-check]

Workloads (McMahan et al. 2017; LEAF, Caldas et al. 2018), each with 10 clients per round, one
local epoch of batch-10 SGD, FedAvg weighted by examples:
* ``mnist_2nn``: the 784-200-200-10 MLP, 100 clients with pathological non-IID shards (200
  shards of 300 examples sorted by label, 2 per client), client lr 0.1, 20 rounds;
* ``femnist_cnn``: LEAF's CNN on the LEAF FEMNIST subset (105 writers = clients), client lr
  0.06, 10 rounds;
* ``shakespeare_lstm``: the 8-dim embedding + 2 x 256 LSTM character model on LEAF's
  Shakespeare roles (793 clients, non-overlapping 80-character chunks, a label at every
  position: an "example" is a chunk), client lr 1.0, 10 rounds.

A prep step writes, per workload, the training and test arrays, the partition, the cohort
schedule (the one interlearn's ``simulate`` draws for the seed) and the initial weights; every
tool reads them, so all train the same clients in the same rounds from the same start. Each
tool runs in a fresh subprocess with one torch thread per worker, on this machine's 2 cores:
interlearn ``auto``, ``sequential``, ``vectorized``, ``multicore`` (2 workers) and ``ray`` (a
local Ray with 2 CPUs; not in the default list); ``plain``, the FedAvg loop a user writes in
plain PyTorch on one thread (fl_peers/plain_worker.py: ``nn.Module``, the fused ``nn.LSTM``,
``torch.optim.SGD``); Flower's simulation runtime (Ray backend, 2 ClientApp actors, the app
written the way Flower's quickstart is, fl_peers/flower_app); pfl's simulator (one process: its
multi-process mode needs Horovod/MPI; own venv, .venv-bench). ``--flower-check`` also runs the
Flower app through ``flwr run`` on a local SuperLink, Flower's own documented path, to check
that the harness gives Flower its full speed.

**The statistic.** Cohorts of ragged clients differ in size from round to round, so a tool's
rate is its total time over rounds 2..R divided by the training examples of those rounds (the
same rounds for every tool; round 1, the warm-up, is reported on its own): microseconds per
example. Every tool runs ``--repeats`` times, interleaved (repeat k of every tool before repeat
k + 1 of any; the order rotates by one tool each repeat), and the JSON holds the median and the
min-max. A ratio between two tools is
taken per repeat (repeat k against repeat k); a target is met only when its whole min-max range
clears it. Seconds per round are kept as information.

**The floor** (fl_peers/roofline.py): per training example, max(FLOPs / this machine's measured
GEMM rate for each product's own shapes, bytes an SGD step moves / measured bandwidth), for
2 cores.

JSON keys: ``results[workload][tool] = {"us_per_example": {median, min, max, runs}, "s_per_round",
"first_round_us_per_example", "end_to_end_s", "final_acc", "engine", ...}``, ``floor[workload]``
(``us_per_example``, ``bound``, its compute and memory terms), ``ratios[workload]``,
``targets`` (each with ``value`` (median), ``min``, ``max``, ``bound``, ``met``), ``flower_check``,
``repeats``, ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fl_peers"))

from common import accuracy, load_prep, test_arrays  # noqa: E402
from interlearn_worker import interlearn_model, to_peer  # noqa: E402
from roofline import floor  # noqa: E402

from interlearn.federated.params import model_params  # noqa: E402
from interlearn.federated.server.sampling import round_generator, sample_cohort  # noqa: E402

INTERLEARN_TOOLS = ("auto", "sequential", "vectorized", "multicore", "ray")
PEERS = ("flower", "pfl")
TOOLS = (*INTERLEARN_TOOLS, "plain", *PEERS)
DEFAULT_TOOLS = ("auto", "sequential", "vectorized", "multicore", "plain", *PEERS)
FORMAT = "per-example-v2"  # results of the older per-round format are not merged into a new file
WORKLOADS = {
    "mnist_2nn": {"model": "2nn", "lr": 0.1, "rounds": 20},
    "femnist_cnn": {"model": "femnist_cnn", "lr": 0.06, "rounds": 10},
    "shakespeare_lstm": {"model": "char_lstm", "lr": 1.0, "rounds": 10},
}
COHORT, BATCH, EPOCHS = 10, 10, 1


# ------------------------------------------------------------------------------------ prep
def _data(
    workload: str, data_dir: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], dict]:
    """Training/test arrays, the per-client index partition and model kwargs of a workload."""
    if workload == "mnist_2nn":
        from interlearn.data.mnist import load_mnist
        from interlearn.federated.partition import shards

        train, test = load_mnist("train", data_dir, flatten=True), load_mnist("test", data_dir, flatten=True)
        parts = shards(train.y, 100, shards_per_client=2, seed=seed)
        g = torch.Generator().manual_seed(seed + 1)  # shards come sorted by label: shuffle each client once
        parts = [p[torch.randperm(len(p), generator=g)] for p in parts]
        return train.x.numpy(), train.y.numpy(), test.x.numpy(), test.y.numpy(), [p.numpy() for p in parts], {}
    if workload == "femnist_cnn":
        from interlearn.data.femnist import load_femnist

        train = load_femnist("train", data_dir)
        test = load_femnist("test", data_dir).pooled()
        xs = [d.x.reshape(len(d), -1) for d in train.data]
        ys = [d.y for d in train.data]
    else:
        from interlearn.data.shakespeare import load_shakespeare
        from interlearn.recipes.keyboard import held_out_set

        data = load_shakespeare(data_dir, source="complete", mode="sequence")
        xs, ys = [u.train.x for u in data.users], [u.train.y for u in data.users]
        tx, ty = held_out_set(data.users, 40, 10)
        test = type("T", (), {"x": tx, "y": ty})()
    sizes = np.cumsum([0] + [len(y) for y in ys])
    parts = [np.arange(sizes[i], sizes[i + 1]) for i in range(len(ys))]
    kwargs = {"vocab": len(data.vocab)} if workload == "shakespeare_lstm" else {}
    x = torch.cat(xs).numpy()
    return (
        x,
        torch.cat(ys).numpy(),
        test.x.reshape(len(test.y), -1).numpy() if workload == "femnist_cnn" else test.x.numpy(),
        test.y.numpy(),
        parts,
        kwargs,
    )


def prep(folder: Path, workload: str, data_dir: str, rounds: int, seed: int) -> dict:
    """Write one workload's shared problem into ``folder``; return its config."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y, tx, ty, parts, kwargs = _data(workload, data_dir, seed)
    for name, arr in (("train_x", x), ("train_y", y), ("test_x", tx), ("test_y", ty)):
        np.save(folder / f"{name}.npy", arr)
    n = len(parts)
    schedule = np.array([sample_cohort(n, COHORT, round_generator(seed, r, 0)) for r in range(1, rounds + 1)])
    np.savez(folder / "partition.npz", schedule=schedule, **{f"c{i}": p for i, p in enumerate(parts)})
    spec = WORKLOADS[workload]
    cfg = {
        "workload": workload,
        "model": spec["model"],
        "model_kwargs": kwargs,
        "num_clients": n,
        "rounds": rounds,
        "cohort": COHORT,
        "lr": spec["lr"],
        "batch_size": BATCH,
        "local_epochs": EPOCHS,
        "seed": seed,
    }
    torch.manual_seed(seed)
    torch.save(to_peer(spec["model"], model_params(interlearn_model(cfg))), folder / "init.pt")
    (folder / "config.json").write_text(json.dumps(cfg))
    return cfg


# ------------------------------------------------------------------------------------ tools
def command(tool: str, prep_dir: Path, out: Path, pfl_python: str) -> list[str]:
    if tool in INTERLEARN_TOOLS:
        return [sys.executable, str(HERE / "fl_peers" / "interlearn_worker.py"), str(prep_dir), str(out), tool]
    if tool == "pfl":
        return [pfl_python, str(HERE / "fl_peers" / "pfl_worker.py"), str(prep_dir), str(out)]
    if tool == "plain":
        return [sys.executable, str(HERE / "fl_peers" / "plain_worker.py"), str(prep_dir), str(out)]
    return [sys.executable, str(HERE / "fl_peers" / "flower_worker.py"), str(prep_dir), str(out)]


def run_tool(tool: str, prep_dir: Path, work: Path, pfl_python: str, timeout: float) -> dict:
    """One run of ``tool`` in a fresh subprocess; its timeline (or the error and the log's tail)."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / tool
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE / "fl_peers"), os.environ.get("PYTHONPATH", "")]),
        "RAY_DEDUP_LOGS": "0",
    }
    log = work / f"{tool}.log"
    t0 = time.time()
    try:
        with log.open("w") as fh:
            proc = subprocess.run(
                command(tool, prep_dir, out, pfl_python),
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work,
                timeout=timeout,
            )
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    wall = time.time() - t0
    if code != 0:
        tail = log.read_text()[-2000:]
        print(f"{tool} FAILED ({code}):\n{tail}", flush=True)
        return {"error": f"exit {code}", "log_tail": tail[-600:]}
    return _timeline(out, t0, wall)


def _timeline(out: Path, t0: float, wall: float) -> dict:
    tl = json.loads((out / "timeline.json").read_text())
    marks = [tl["round_start"], *tl["round_end"]]
    rounds = np.diff(marks).tolist()
    return {
        "end_to_end_s": wall,
        "s_per_round": statistics.median(rounds[1:]) if len(rounds) > 1 else rounds[0],
        "first_round_s": rounds[0],
        "startup_s": marks[0] - t0,
        "rounds_run": len(rounds),
        "round_s": rounds,
        "engine": tl.get("engine"),
    }


def flower_check(prep_dir: Path, work: Path, timeout: float) -> dict:
    """The Flower app through ``flwr run`` on a local SuperLink (Flower's own path)."""
    home = work / "flwr-home"
    home.mkdir(exist_ok=True)
    cfg = json.loads((prep_dir / "config.json").read_text())
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'
        f"options.num-supernodes = {cfg['num_clients']}\n"
        "options.backend.client-resources.num-cpus = 1\noptions.backend.client-resources.num-gpus = 0\n"
        "options.backend.init-args.num-cpus = 2\noptions.backend.init-args.num-gpus = 0\n"
    )
    out = work / "flower_flwr_run"
    flwr = str(Path(sys.executable).parent / "flwr")
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(
            [str(HERE / "fl_peers"), str(HERE / "fl_peers" / "flower_app"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    run_config = f'prep="{prep_dir.resolve()}" out="{out.resolve()}"'
    log = work / "flower_flwr_run.log"
    before = _superlinks()
    t0 = time.time()
    env["FL_MATRIX_START"] = repr(t0)
    with log.open("w") as fh:
        try:
            proc = subprocess.run(
                [flwr, "run", str(HERE / "fl_peers" / "flower_app"), "local", "--stream", "--run-config", run_config],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work,
                timeout=timeout,
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.time() - t0
    for pid in _superlinks() - before:  # the managed local SuperLink `flwr run` started (flwr 1.42 has no stop command)
        os.kill(pid, 15)
    if code != 0 or not (out / "timeline.json").exists():
        return {"error": f"exit {code}", "log_tail": log.read_text()[-1500:]}
    return _timeline(out, t0, wall)


def _superlinks() -> set[int]:
    """PIDs of running ``flower-superlink`` processes (Linux /proc)."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"flower-superlink" in (d / "cmdline").read_bytes():
                    out.add(int(d.name))
            except OSError:
                continue
    return out


# ------------------------------------------------------------------------------------ rates
def round_examples(parts: list, schedule: np.ndarray) -> list[int]:
    """Training examples of each round's cohort (one local epoch): rounds differ when clients do."""
    return [int(sum(len(parts[c]) for c in row)) * EPOCHS for row in schedule]


def us_per_example(round_s: list[float], examples: list[int]) -> float:
    """Microseconds per training example pooled over rounds 2..R: their total time over their
    total examples (round 1, the warm-up, is reported on its own)."""
    rounds = range(1, len(round_s)) if len(round_s) > 1 else range(len(round_s))
    return 1e6 * sum(round_s[r] for r in rounds) / sum(examples[r] for r in rounds)


def spread(values: list[float]) -> dict:
    """Median and min-max of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def pool(repeats: list[dict], examples: list[int]) -> dict:
    """One tool's repeats on one workload -> its per-example rate (median, range) and the rest."""
    ok = [r for r in repeats if "error" not in r]
    if not ok:
        return repeats[-1]
    rates = [us_per_example(r["round_s"], examples) for r in ok]
    first = [1e6 * r["round_s"][0] / examples[0] for r in ok]
    return {
        "us_per_example": spread(rates),
        "first_round_us_per_example": spread(first),
        "s_per_round": statistics.median(statistics.median(r["round_s"][1:] or r["round_s"]) for r in ok),
        "end_to_end_s": spread([r["end_to_end_s"] for r in ok]),
        "final_acc": ok[0].get("final_acc"),
        "engine": ok[0].get("engine"),
        "repeats": len(ok),
        "failed_repeats": len(repeats) - len(ok),
        "round_s": [r["round_s"] for r in ok],
    }


def ratio_range(num: dict, den: dict) -> dict:
    """``num / den`` per interleaved repeat (repeat k against repeat k): median and min-max."""
    a, b = num["us_per_example"]["runs"], den["us_per_example"]["runs"]
    return spread([x / y for x, y in zip(a, b)])


def picked_tool(description: str | None) -> str | None:
    """The engine ``auto`` chose, as a tool of the matrix (``"multicore (2 workers x ...)"`` -> multicore)."""
    if not description:
        return None
    head = description.split("->", 1)[-1].split()[0].strip("(:,")
    return head if head in INTERLEARN_TOOLS else None


def _target(value: dict, bound: float, at_most: bool) -> dict:
    """A target is met only when the whole min-max range clears it."""
    met = value["max"] <= bound if at_most else value["min"] >= bound
    return {"value": value["median"], "min": value["min"], "max": value["max"], "bound": bound, "met": met}


def summarize(results: dict, floors: dict, check: dict | None) -> dict:
    """The issue's targets from pooled results (each with median, range and ``met``) and ratios."""
    targets: dict = {}
    ratios: dict = {}
    for w, res in results.items():
        ok = {t: r for t, r in res.items() if "us_per_example" in r}
        if "sequential" in ok and "plain" in ok:
            r = ratio_range(ok["sequential"], ok["plain"])
            ratios.setdefault(w, {})["sequential_vs_plain"] = r
            targets[f"{w}: sequential <= 1.1x plain PyTorch loop"] = _target(r, 1.1, at_most=True)
        auto = ok.get("auto")
        if auto is None:
            continue
        picked = picked_tool(auto.get("engine"))
        if picked in ok and picked != "auto":
            ratios.setdefault(w, {})["auto_vs_picked"] = r = ratio_range(auto, ok[picked]) | {"picked": picked}
            targets[f"{w}: auto within 2% of the engine it picks ({picked})"] = _target(r, 1.02, at_most=True)
        if w in floors:
            f = floors[w]["us_per_example"]
            r = spread([x / f for x in auto["us_per_example"]["runs"]])
            ratios.setdefault(w, {})["auto_vs_floor"] = r
            targets[f"{w}: auto <= 1.5x roofline floor"] = _target(r, 1.5, at_most=True)
        for peer in PEERS:
            if peer in ok:
                r = ratio_range(ok[peer], auto)
                ratios.setdefault(w, {})[f"speedup_vs_{peer}"] = r
                need = 3.0 if w == "mnist_2nn" else 1.3
                targets[f"{w}: auto >= {need:g}x {peer} per example"] = _target(r, need, at_most=False)
    if check and "round_s" in check and "us_per_example" in results.get("mnist_2nn", {}).get("flower", {}):
        harness = results["mnist_2nn"]["flower"]["us_per_example"]["median"]
        own = check["us_per_example"]
        check["harness_vs_flwr_run"] = harness / own
        targets["flower harness within 20% of `flwr run` (per example)"] = {
            "value": harness / own,
            "min": harness / own,
            "max": harness / own,
            "bound": 1.2,
            "met": 0.8 <= harness / own <= 1.2,
        }
    return {
        "ratios": ratios,
        "targets": targets,
        "targets_met": sum(t["met"] for t in targets.values()),
        "targets_total": len(targets),
    }


# ------------------------------------------------------------------------------------ main
def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("INTERLEARN_DATA"),
        help="folder with mnist/, femnist-leaf/, shakespeare/ (default $INTERLEARN_DATA)",
    )
    ap.add_argument("--json", default="benchmarks/results/fl_matrix.json")
    ap.add_argument("--rounds", type=int, default=None, help="rounds for every workload (default: 20 / 10 / 10)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of every tool, interleaved (default 3)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help=f"comma list from {TOOLS}")
    ap.add_argument(
        "--flower-check", action="store_true", help="also run the Flower app through `flwr run` (mnist_2nn)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--floor-only",
        action="store_true",
        help="measure the roofline floor again for the workloads of an existing --json and recompute its summary "
        "(runs no tool)",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per tool run")
    ap.add_argument("--keep", default=None, help="keep the prep folders and logs here (default: a temporary folder)")
    ap.add_argument(
        "--pfl-python",
        default=str(HERE.parent / ".venv-bench" / "bin" / "python"),
        help="interpreter with pfl 0.6 (make bench sets it up)",
    )
    args = ap.parse_args()
    if not args.data_dir:
        ap.error("--data-dir (or INTERLEARN_DATA) is required")
    args.tools = [t for t in args.tools.split(",") if t]
    args.workloads = [w for w in args.workloads.split(",") if w]
    bad = [t for t in args.tools if t not in TOOLS] + [w for w in args.workloads if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown {bad}; tools: {TOOLS}; workloads: {tuple(WORKLOADS)}")
    if args.repeats < 1:
        ap.error(f"--repeats {args.repeats}: give at least 1 (3 or more for a median and a range)")
    return args


def run_workload(w: str, args: argparse.Namespace, tmp: str) -> tuple[dict, dict, list[int], dict | None]:
    """Prep one workload, its roofline floor, then every tool ``--repeats`` times, interleaved."""
    rounds = args.rounds or WORKLOADS[w]["rounds"]
    folder = Path(tmp) / w
    cfg = prep(folder, w, args.data_dir, rounds, args.seed)
    full = load_prep(folder)
    tx, ty = test_arrays(folder, full)
    examples = round_examples(full["partition"], full["schedule"])
    vocab = int(cfg["model_kwargs"].get("vocab", 0))
    fl = floor(cfg["model"], BATCH, vocab) | {"vocab": vocab}
    print(
        f"== {w}: {cfg['num_clients']} clients, {rounds} rounds, floor {fl['us_per_example']:.1f} us/example",
        flush=True,
    )
    runs: dict[str, list[dict]] = {t: [] for t in args.tools}
    for k in range(args.repeats):
        # interleaved: repeat k of every tool before repeat k + 1 of any; the order rotates, so no
        # tool always runs right after the peers (Flower's Ray shutting down slowed the next tool)
        for tool in args.tools[k % len(args.tools) :] + args.tools[: k % len(args.tools)]:
            r = run_tool(tool, folder, folder / f"rep{k}", args.pfl_python, args.timeout)
            if "error" not in r:
                r["final_acc"] = accuracy(full, torch.load(folder / f"rep{k}" / tool / "final.pt"), tx, ty)
                print(
                    f"   [{k + 1}/{args.repeats}] {tool:10s} {us_per_example(r['round_s'], examples):9.1f} us/example  "
                    f"{r['s_per_round']:7.3f} s/round  end-to-end {r['end_to_end_s']:6.1f} s  acc {r['final_acc']:.4f}  "
                    f"{r.get('engine') or ''}",
                    flush=True,
                )
            runs[tool].append(r)
    check = None
    if args.flower_check and w == "mnist_2nn":
        check = flower_check(folder, folder, args.timeout)
        if "round_s" in check:
            check["us_per_example"] = us_per_example(check["round_s"], examples)
            print(f"   flwr run   {check['us_per_example']:9.1f} us/example", flush=True)
    return {t: pool(rs, examples) for t, rs in runs.items()}, fl, examples, check


def refloor(out_path: Path, previous: dict) -> None:
    """The floor measured again (same model shapes) and the targets recomputed; the tools' timings are kept."""
    if previous.get("format") != FORMAT:
        raise SystemExit(f"{out_path}: no results of this format to re-floor; run the matrix first")
    for w in previous["results"]:
        vocab = 78 if w == "shakespeare_lstm" else 0
        vocab = int(previous["floor"].get(w, {}).get("vocab", vocab))
        previous["floor"][w] = floor(WORKLOADS[w]["model"], BATCH, vocab) | {"vocab": vocab}
        print(f"{w}: floor {previous['floor'][w]['us_per_example']:.1f} us/example ({previous['floor'][w]['bound']})")
    previous.update(summarize(previous["results"], previous["floor"], previous.get("flower_check")))
    out_path.write_text(json.dumps(previous, indent=2))
    print(f"re-floored {out_path}")


def main() -> None:
    args = _args()
    torch.set_num_threads(1)
    out_path = Path(args.json)
    previous: dict = json.loads(out_path.read_text()) if out_path.exists() else {}
    same_format = previous.get("format") == FORMAT
    results: dict = previous.get("results", {}) if same_format else {}  # workloads not re-run keep theirs
    floors: dict = previous.get("floor", {}) if same_format else {}
    workloads: dict = previous.get("workloads", {}) if same_format else {}
    check = previous.get("flower_check") if same_format else None
    if args.floor_only:
        refloor(out_path, previous)
        return
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="fl_matrix_") as tmp_dir:
        for w in args.workloads:
            results[w], floors[w], examples, c = run_workload(w, args, args.keep or tmp_dir)
            workloads[w] = {
                **WORKLOADS[w],
                "rounds": args.rounds or WORKLOADS[w]["rounds"],
                "cohort": COHORT,
                "batch": BATCH,
                "epochs": EPOCHS,
                "examples_per_round": examples,
            }
            check = c if w == "mnist_2nn" else check
    out = {
        "format": FORMAT,
        "workloads": workloads,
        "seed": args.seed,
        "repeats": args.repeats,
        "tools": args.tools,
        "results": results,
        "floor": floors,
        "flower_check": check,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "seconds": time.time() - started,
    }
    out.update(summarize(results, floors, check))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2))
    for name, t in out["targets"].items():
        print(f"target {name}: {t['value']:.2f} [{t['min']:.2f}, {t['max']:.2f}] -> {'MET' if t['met'] else 'NOT MET'}")
    print(f"wrote {out_path} ({out['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
