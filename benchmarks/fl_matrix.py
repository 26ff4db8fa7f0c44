"""Federated simulation speed on three workloads: every interlearn engine vs Flower 1.42 and pfl 0.6.

Usage:
    python benchmarks/fl_matrix.py --data-dir ../shared/data --json benchmarks/results/fl_matrix.json [--rounds R]
        [--workloads mnist_2nn,femnist_cnn,shakespeare_lstm] [--tools auto,sequential,...] [--flower-check]

Workloads (McMahan et al. 2017; LEAF, Caldas et al. 2018), each with 10 clients per round, one
local epoch of batch-10 SGD, FedAvg weighted by examples:
* ``mnist_2nn``: the 784-200-200-10 MLP, 100 clients with pathological non-IID shards (200
  shards of 300 examples sorted by label, 2 per client), client lr 0.1, 20 rounds;
* ``femnist_cnn``: LEAF's CNN on the LEAF FEMNIST subset (105 writers = clients), client lr
  0.06, 10 rounds;
* ``shakespeare_lstm``: the 8-dim embedding + 2 x 256 LSTM character model on LEAF's
  Shakespeare roles (793 clients, non-overlapping 80-character chunks, a label at every
  position), client lr 1.0, 10 rounds.

A prep step writes, per workload, the training and test arrays, the partition, the cohort
schedule (the one interlearn's ``simulate`` draws for the seed) and the initial weights
(interlearn's default initialisation); every tool reads them, so all train the same clients in
the same rounds from the same start. Each tool runs in a fresh subprocess (pfl in its own venv,
.venv-bench) with one torch thread per worker, on this machine's 2 cores: interlearn ``auto``,
``sequential``, ``vectorized``, ``multicore`` (2 workers) and ``ray`` (a local Ray with 2 CPUs);
Flower's simulation runtime (Ray backend, 2 CPUs: 2 ClientApp actors; the app is written the way
Flower's quickstart is, benchmarks/fl_peers/flower_app); pfl's simulator (one process: its
multi-process mode needs Horovod/MPI). ``--flower-check`` also runs the same Flower app through
``flwr run`` on a local SuperLink, Flower's own documented path, to check that our harness
gives Flower its full speed (the two must agree within 20 %).

Measured per tool: ``s_per_round`` (median wall time of rounds 2..R), ``first_round_s``,
``end_to_end_s`` (launch to exit of the subprocess: imports, data, start-up included) and
``final_acc`` (the final weights scored by one function on the workload's test set).
``floor_s_per_round`` is the compute floor: the multiply-add FLOPs of the matrix products and
convolutions of the examples a round trains (forward and backward, counted per layer from its
shapes), each divided by this machine's measured single-thread rate for that layer's own
shapes at the batch the workload uses, summed, then halved for 2 cores (elementwise ops,
optimizer steps and data movement are left out, so no implementation reaches it).

JSON keys: ``results[workload][tool] = {"s_per_round", "end_to_end_s", "final_acc", ...}``,
``floor_s_per_round[workload]`` (with ``floor_method``, ``floor_detail``), ``auto_vs_best[workload]``,
``targets`` (each with ``met``), ``flower_check``.
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

from interlearn.federated.params import model_params  # noqa: E402
from interlearn.federated.server.sampling import round_generator, sample_cohort  # noqa: E402

INTERLEARN_TOOLS = ("auto", "sequential", "vectorized", "multicore", "ray")
PEERS = ("flower", "pfl")
TOOLS = INTERLEARN_TOOLS + PEERS
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
    return [sys.executable, str(HERE / "fl_peers" / "flower_worker.py"), str(prep_dir), str(out)]


def run_tool(tool: str, prep_dir: Path, work: Path, pfl_python: str, timeout: float) -> dict:
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


# ------------------------------------------------------------------------------------ floor
def _rate(fn, flops: float, min_s: float = 0.3) -> float:
    """FLOP/s of ``fn`` (one call = ``flops``), single thread, best of repeated timings."""
    for _ in range(3):
        fn()
    best = float("inf")
    t_end = time.perf_counter() + min_s
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return flops / best


def _mm(m: int, k: int, n: int) -> tuple[object, float]:
    """A timed ``(m, k) @ (k, n)`` product and its FLOPs."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    return (lambda: a @ b), 2.0 * m * k * n


def _linear(name: str, rows: int, i: int, o: int, per_example: float, input_grad: bool = True) -> list[tuple]:
    """Forward, weight-gradient and input-gradient products of a Linear applied to ``rows`` rows
    per call (``per_example`` calls per example)."""
    out = [(f"{name}.forward", *_mm(rows, i, o), per_example), (f"{name}.weight_grad", *_mm(o, rows, i), per_example)]
    if input_grad:
        out.append((f"{name}.input_grad", *_mm(rows, o, i), per_example))
    return out


def _conv(name: str, b: int, cin: int, cout: int, size: int, input_grad: bool) -> list[tuple]:
    conv = torch.nn.Conv2d(cin, cout, 5, padding=2)
    x = torch.randn(b, cin, size, size)
    g = torch.randn(b, cout, size, size)
    flops = 2.0 * b * cin * 25 * cout * size * size
    weight = conv.weight.detach()

    def backward() -> None:
        torch.ops.aten.convolution_backward(
            g, x, weight, [cout], [1, 1], [2, 2], [1, 1], False, [0, 0], 1, [input_grad, True, True]
        )

    return [
        (f"{name}.forward", lambda: conv(x), flops, 1 / b),
        (f"{name}.backward", backward, flops * (2 if input_grad else 1), 1 / b),
    ]


@torch.no_grad()
def floor(cfg: dict, examples_per_round: float) -> dict:
    """Seconds per round at the measured single-thread rate of each product's own shapes (2 cores)."""
    b = BATCH
    if cfg["model"] == "2nn":
        ops = (
            _linear("fc1", b, 784, 200, 1 / b, input_grad=False)
            + _linear("fc2", b, 200, 200, 1 / b)
            + _linear("fc3", b, 200, 10, 1 / b)
        )
    elif cfg["model"] == "femnist_cnn":
        ops = _conv("conv1", b, 1, 32, 28, input_grad=False) + _conv("conv2", b, 32, 64, 14, input_grad=True)
        ops += _linear("fc", b, 3136, 2048, 1 / b) + _linear("head", b, 2048, 62, 1 / b)
    else:
        v, h, t = int(cfg["model_kwargs"]["vocab"]), 256, 80
        ops = []
        for k, i in enumerate(
            (8, h)
        ):  # per layer: the input projection of all steps at once, the recurrence step by step
            ops += _linear(f"lstm{k}.input", b * t, i, 4 * h, 1 / b, input_grad=k > 0)
            ops += [
                (f"lstm{k}.recurrent.forward", *_mm(b, h, 4 * h), t / b),
                (f"lstm{k}.recurrent.input_grad", *_mm(b, 4 * h, h), t / b),
                (f"lstm{k}.recurrent.weight_grad", *_mm(4 * h, b * t, h), 1 / b),
            ]
        ops += _linear("head", b * t, h, v, 1 / b)
    detail = {}
    seconds = 0.0
    for name, fn, call_flops, calls_per_example in ops:
        rate = _rate(fn, call_flops)
        s_round = examples_per_round * calls_per_example * call_flops / rate
        detail[name] = {
            "gflop_per_example": calls_per_example * call_flops / 1e9,
            "gflop_per_s": rate / 1e9,
            "s_per_round_1_core": s_round,
        }
        seconds += s_round
    return {"s_per_round_1_core": seconds, "s_per_round_2_cores": seconds / 2, "products": detail}


# ------------------------------------------------------------------------------------ main
def round_examples(parts: list, schedule: np.ndarray) -> list[int]:
    """Training examples of each round's cohort (one local epoch): rounds differ when clients do."""
    return [int(sum(len(parts[c]) for c in row)) * EPOCHS for row in schedule]


def first_round(results: dict, workloads: dict) -> dict:
    """Each tool's first round against its steady rounds (the median of the rest), in time and
    in time per training example: cohorts of ragged clients differ in size from round to round,
    so the per-example ratio is the warm-up tax."""
    out: dict = {}
    for w, res in results.items():
        ex = workloads.get(w, {}).get("examples_per_round")
        for tool, r in res.items():
            rs = r.get("round_s")
            if not rs or len(rs) < 2:
                continue
            row = {"time": rs[0] / statistics.median(rs[1:])}
            if ex and len(ex) >= len(rs):
                per = [t / e for t, e in zip(rs, ex)]
                row["per_example"] = per[0] / statistics.median(per[1:])
            out.setdefault(w, {})[tool] = row
    return out


def summarize(results: dict, floors: dict, check: dict | None, workloads: dict | None = None) -> dict:
    """Ratios and the issue's targets, each with ``met``."""
    auto_vs_best, targets = {}, {}
    for w, res in results.items():
        ours = {t: r["s_per_round"] for t, r in res.items() if t in INTERLEARN_TOOLS and "s_per_round" in r}
        if "auto" in ours and len(ours) > 1:
            best_tool = min((t for t in ours if t != "auto"), key=ours.get)
            ratio = ours["auto"] / ours[best_tool]
            auto_vs_best[w] = {"ratio": ratio, "best": best_tool, "met": ratio <= 1.1}
            targets[f"{w}: auto <= 1.1x best interlearn engine"] = {"value": ratio, "met": ratio <= 1.1}
        if "auto" in ours and w in floors:
            ratio = ours["auto"] / floors[w]
            targets[f"{w}: auto <= 1.5x floor (2 cores)"] = {"value": ratio, "met": ratio <= 1.5}
        a = res.get("auto", {})
        for peer in PEERS:
            p = res.get(peer, {})
            if "s_per_round" not in a or "s_per_round" not in p:
                continue
            per_round = p["s_per_round"] / a["s_per_round"]
            e2e = p["end_to_end_s"] / a["end_to_end_s"]
            a[f"speedup_vs_{peer}_per_round"], a[f"speedup_vs_{peer}_end_to_end"] = per_round, e2e
            if w == "mnist_2nn" and peer == "flower":
                pass  # against Flower at its best (below)
            elif w == "mnist_2nn" and peer == "pfl":
                targets["mnist_2nn: >= 3x pfl per round"] = {"value": per_round, "met": per_round >= 3}
            else:
                targets[f"{w}: faster than {peer} per round"] = {"value": per_round, "met": per_round > 1}
    if check and "s_per_round" in check and "flower" in results.get("mnist_2nn", {}):
        ours = results["mnist_2nn"]["flower"]
        if "s_per_round" in ours:
            ratio = ours["s_per_round"] / check["s_per_round"]
            check["harness_vs_flwr_run_per_round"] = ratio
            targets["flower harness within 20% of `flwr run`"] = {"value": ratio, "met": 0.8 <= ratio <= 1.2}
    warm = first_round(results, workloads or {})
    for w, tools in warm.items():
        if "per_example" in tools.get("auto", {}):
            ratio = tools["auto"]["per_example"]
            targets[f"{w}: auto first round <= 1.2x steady (per example)"] = {"value": ratio, "met": ratio <= 1.2}
    best_flower = _vs_best_flower(results, check)
    if "mnist_2nn" in best_flower:
        e2e = best_flower["mnist_2nn"]["end_to_end"]
        targets["mnist_2nn: >= 5x Flower end to end"] = {"value": e2e, "met": e2e >= 5}
    return {
        "auto_vs_best": auto_vs_best,
        "targets": targets,
        "targets_met": sum(t["met"] for t in targets.values()),
        "targets_total": len(targets),
        "vs_flower_at_its_best": best_flower,
        "first_round_vs_steady": warm,
    }


def _vs_best_flower(results: dict, check: dict | None) -> dict:
    """``auto`` against the faster of our Flower harness and ``flwr run`` (Flower at its best), per workload."""
    out = {}
    for w, res in results.items():
        a = res.get("auto", {})
        runs = [r for r in [res.get("flower", {}), check if w == "mnist_2nn" and check else {}] if "s_per_round" in r]
        if "s_per_round" in a and runs:
            out[w] = {
                "per_round": min(r["s_per_round"] for r in runs) / a["s_per_round"],
                "end_to_end": min(r["end_to_end_s"] for r in runs) / a["end_to_end_s"],
            }
    return out


def annotate(path: Path, data_dir: str) -> None:
    """Add ``examples_per_round`` to each workload of a results file written before it was
    recorded (the cohorts are the seed's, the sizes the data's: nothing is re-measured), then
    recompute the summary."""
    out = json.loads(path.read_text())
    seed = int(out.get("seed", 0))
    for w, spec in out["workloads"].items():
        parts = _data(w, data_dir, seed)[4]
        schedule = np.array(
            [sample_cohort(len(parts), COHORT, round_generator(seed, r, 0)) for r in range(1, spec["rounds"] + 1)]
        )
        spec["examples_per_round"] = round_examples(parts, schedule)
    out.update(summarize(out["results"], out["floor_s_per_round"], out.get("flower_check"), out["workloads"]))
    path.write_text(json.dumps(out, indent=2))
    print(f"annotated {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("INTERLEARN_DATA"),
        help="folder with mnist/, femnist-leaf/, shakespeare/ (default $INTERLEARN_DATA)",
    )
    ap.add_argument("--json", default="benchmarks/results/fl_matrix.json")
    ap.add_argument("--rounds", type=int, default=None, help="rounds for every workload (default: 20 / 10 / 10)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--tools", default=",".join(TOOLS), help=f"comma list from {TOOLS}")
    ap.add_argument(
        "--flower-check", action="store_true", help="also run the Flower app through `flwr run` (mnist_2nn)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--annotate",
        action="store_true",
        help="only add each round's example count (from the data and the seed's cohorts) to an existing --json "
        "and recompute the summary; runs no tool",
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
    torch.set_num_threads(1)
    tools = [t for t in args.tools.split(",") if t]
    workloads = [w for w in args.workloads.split(",") if w]
    bad = [t for t in tools if t not in TOOLS] + [w for w in workloads if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown {bad}; tools: {TOOLS}; workloads: {tuple(WORKLOADS)}")
    out_path = Path(args.json)
    if args.annotate:
        annotate(out_path, args.data_dir)
        return
    previous: dict = json.loads(out_path.read_text()) if out_path.exists() else {}
    results: dict = previous.get("results", {})  # workloads not re-run keep their results, floors and settings
    floors: dict = {}
    per_round: dict = {}
    check = None
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="fl_matrix_") as tmp_dir:
        tmp = args.keep or tmp_dir
        for w in workloads:
            rounds = args.rounds or WORKLOADS[w]["rounds"]
            folder = Path(tmp) / w
            cfg = prep(folder, w, args.data_dir, rounds, args.seed)
            full = load_prep(folder)
            tx, ty = test_arrays(folder, full)
            examples = (
                float(np.mean([sum(len(full["partition"][c]) for c in row) for row in full["schedule"]])) * EPOCHS
            )
            floors[w] = {**floor(cfg, examples), "examples_per_round": examples}
            per_round[w] = round_examples(full["partition"], full["schedule"])
            print(
                f"== {w}: {cfg['num_clients']} clients, {rounds} rounds, floor {floors[w]['s_per_round_2_cores']:.3f} s/round on 2 cores",
                flush=True,
            )
            results[w] = {}
            for tool in tools:
                r = run_tool(tool, folder, folder, args.pfl_python, args.timeout)
                if "error" not in r:
                    r["final_acc"] = accuracy(full, torch.load(folder / tool / "final.pt"), tx, ty)
                    print(
                        f"   {tool:12s} {r['s_per_round']:8.3f} s/round  first {r['first_round_s']:7.3f}  end-to-end {r['end_to_end_s']:7.1f} s  "
                        f"acc {r['final_acc']:.4f}  {r.get('engine') or ''}",
                        flush=True,
                    )
                results[w][tool] = r
            if args.flower_check and w == "mnist_2nn":
                check = flower_check(folder, folder, args.timeout)
                print(
                    f"   flwr run     {check.get('s_per_round', float('nan')):8.3f} s/round  end-to-end {check.get('end_to_end_s', float('nan')):7.1f} s",
                    flush=True,
                )
    floors = {w: f for w, f in previous.get("floor_detail", {}).items() if w not in floors} | floors
    out = {
        "workloads": {w: v for w, v in previous.get("workloads", {}).items() if w not in workloads}
        | {
            w: {
                **WORKLOADS[w],
                "rounds": args.rounds or WORKLOADS[w]["rounds"],
                "cohort": COHORT,
                "batch": BATCH,
                "epochs": EPOCHS,
                "examples_per_round": per_round[w],
            }
            for w in workloads
        },
        "seed": args.seed,
        "results": results,
        "floor_s_per_round": {w: f["s_per_round_2_cores"] for w, f in floors.items()},
        "floor_method": "sum over every matrix product and convolution of a training step (forward, weight gradient, input gradient; "
        "the LSTM's recurrence one time step at a time) of its FLOPs for the examples a round trains / this machine's "
        "single-thread FLOP/s for that product's own shapes at batch 10 (best timing, operands in cache), halved for 2 cores; "
        "elementwise ops, optimizer steps and data movement excluded",
        "floor_detail": floors,
        "flower_check": check if "mnist_2nn" in workloads else previous.get("flower_check"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "seconds": time.time() - started,
    }
    out.update(summarize(results, out["floor_s_per_round"], out["flower_check"], out["workloads"]))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2))
    for name, t in out["targets"].items():
        print(f"target {name}: {t['value']:.2f} -> {'MET' if t['met'] else 'NOT MET'}")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
