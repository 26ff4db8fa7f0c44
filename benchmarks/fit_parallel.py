"""Data-parallel fit: throughput of 1 vs 2 processes, and the equality check.

The same ``fit`` call (an MLP on MNIST, or the embedded digits without ``--data-dir``; SGD with
momentum, no dropout, global batch ``--batch-size``, seed 0) runs twice: in one process, and in
two CPU processes launched by ``accelerate launch`` (gloo on loopback), each taking half of every
global batch. Reported: training throughput (examples per second of ``FitResult.train_seconds``,
which leaves out process start-up and data loading), the speedup, and the largest difference
between the two trained models' parameters (the claim: equal within 1e-5).

    python benchmarks/fit_parallel.py --data-dir ../shared/data --json benchmarks/results/fit_parallel.json

Two processes need two free cores: on a machine where other work runs the speedup understates
what data parallelism gives.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData, load_digits, load_mnist
from interlearn.tasks import classification
from interlearn.training import evaluate, fit


def _data(args: argparse.Namespace) -> tuple[TensorData, TensorData]:
    if args.data_dir:
        train, test = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    else:
        train, test = load_digits()
    n = min(args.examples, len(train)) if args.examples else len(train)
    return TensorData(train.x[:n].flatten(1), train.y[:n]), TensorData(test.x.flatten(1), test.y)


def worker(args: argparse.Namespace) -> None:
    """One run of the fit (alone, or as one of the processes of a launch)."""
    from accelerate import PartialState

    torch.set_num_threads(1)
    train, test = _data(args)
    torch.manual_seed(0)
    d = train.x.shape[1]
    model = nn.Sequential(
        nn.Linear(d, args.hidden), nn.ReLU(), nn.Linear(args.hidden, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10)
    )
    cfg = FitConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer="sgd",
        lr=args.lr,
        momentum=args.momentum,
        schedule="cosine",
        warmup=0.05,
        device="cpu",
        seed=0,
    )
    res = fit(model, train, classification(10), cfg)
    state = PartialState()
    if state.is_main_process:
        out = Path(args.worker)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
        (out / "run.json").write_text(
            json.dumps(
                {
                    "processes": state.num_processes,
                    "train_seconds": res.train_seconds,
                    "examples": len(train),
                    "epochs": args.epochs,
                    "examples_per_second": len(train) * args.epochs / res.train_seconds,
                    "final_train_loss": res.history[-1]["train_loss"],
                    "test_accuracy": evaluate(model, test, classification(10))["accuracy"],
                }
            )
        )


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(processes: int, out: Path, args: argparse.Namespace) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    flags = [
        "--worker",
        str(out),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--hidden",
        str(args.hidden),
        "--examples",
        str(args.examples),
        "--lr",
        str(args.lr),
        "--momentum",
        str(args.momentum),
    ] + (["--data-dir", args.data_dir] if args.data_dir else [])
    if processes == 1:
        cmd = [sys.executable, __file__, *flags]
    else:
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            str(_port()),
            __file__,
            *flags,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    run = json.loads((out / "run.json").read_text())
    run["wall_seconds_with_startup"] = time.perf_counter() - t0
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--data-dir", default=os.environ.get("INTERLEARN_DATA"), help="MNIST IDX files (default: the embedded digits)"
    )
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--examples", type=int, default=20000, help="training examples (0: all)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256, help="the global batch (each of 2 processes takes half)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        one = _launch(1, Path(tmp) / "one", args)
        two = _launch(2, Path(tmp) / "two", args)
        a, b = (
            load_file(str(Path(tmp) / "one" / "model.safetensors")),
            load_file(str(Path(tmp) / "two" / "model.safetensors")),
        )
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    result = {
        "config": {
            "data": "mnist" if args.data_dir else "digits",
            "examples": one["examples"],
            "epochs": args.epochs,
            "global_batch": args.batch_size,
            "lr": args.lr,
            "steps": args.epochs * -(-one["examples"] // args.batch_size),
            "model": f"MLP {args.hidden}x2",
            "optimizer": f"sgd lr {args.lr} momentum {args.momentum}, cosine",
            "threads_per_process": 1,
            "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
        },
        "processes_1": one,
        "processes_2": two,
        "speedup": two["examples_per_second"] / one["examples_per_second"],
        "max_param_diff": diff,
        "equal_within_1e-5": diff <= 1e-5,
        "command": " ".join(["python", "benchmarks/fit_parallel.py", *sys.argv[1:]]),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
