"""Per-step cost of each multi-task method relative to equal weighting, at T=2 and T=10 tasks.

Usage:
    python benchmarks/mtl_overhead.py --json benchmarks/results/mtl_overhead.json

One training step = trunk forward, T heads, T losses, the method's backward, an Adam step; on the
MultiMNIST LeNet trunk (fc 50) with T heads (50-50-10) and batch 128 of random 28x28 inputs
(timing only). Methods run interleaved, round-robin, so that load on the machine hits them alike;
the cost is the median *CPU time* per step of this single-threaded process (time.process_time),
which the other processes sharing the CPU do not inflate (--clock wall for wall time, e.g. on a
GPU). Also: the multi-task model vs T independent single-task models, parameters and step time.
Rows "<name>@rep" time the Jacobian methods with level="representation" (weights from the
gradients w.r.t. the shared representation, one backward: the batched route of MGDA-UB).
JSON: {method: {"ratio_t2", "ratio_t10", "ms_t2", "ms_t10"}, "multitask_vs_independent": {...}}.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.multitask import (
    MTLContext,
    MultiTaskModel,
    TaskSet,
    heads_for,
    lenet_trunk,
    list_methods,
    make_method,
    method_kind,
)
from interlearn.surgery import count_params
from interlearn.tasks import classification
from interlearn.training import resolve_device


def _tasks(t: int) -> TaskSet:
    return TaskSet(tuple(classification(10, f"t{i}") for i in range(t)))


class Runner:
    """One model + method + optimizer; ``step()`` does one training step on a fixed batch."""

    def __init__(self, model: MultiTaskModel, tasks: TaskSet, method: str, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model, self.tasks, self.x, self.y = model, tasks, x, y
        name, _, level = method.partition("@")
        options = {"level": "representation"} if level == "rep" else {}
        self.method = make_method(name, tasks.names, **options).to(x.device)
        params = list(model.parameters()) + (list(self.method.parameters()) if self.method.optimizer_params else [])
        self.opt = torch.optim.Adam(params, lr=1e-3)

    def recompute(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.tasks.losses(self.model(x), y)[0]

    def step(self) -> None:
        features = self.model.shared(self.x)
        losses, present = self.tasks.losses(self.model.task_outputs(features, self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        self.method.backward(
            {t: losses[t] for t in present}, MTLContext(self.model, features, self.x, self.y, self.recompute)
        )
        self.opt.step()


def _clock(kind: str, dev: torch.device) -> float:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.process_time() if kind == "cpu" else time.perf_counter()


def measure(runners: dict[str, Runner], rounds: int, warmup: int, clock: str, dev: torch.device) -> dict[str, float]:
    """Median seconds per step of each runner, interleaved round-robin."""
    for r in runners.values():
        for _ in range(warmup):
            r.step()
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for name, r in runners.items():
            t0 = _clock(clock, dev)
            r.step()
            times[name].append(_clock(clock, dev) - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="benchmarks/results/mtl_overhead.json")
    ap.add_argument("--tasks", default="2,10")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--methods", default=",".join(list_methods()))
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--with-representation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time each Jacobian method with level='representation' (rows '<name>@rep')",
    )
    ap.add_argument("--clock", choices=("cpu", "wall"), default=None, help="default: cpu on CPU, wall on CUDA")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dev = resolve_device(args.device)
    clock = args.clock or ("wall" if dev.type == "cuda" else "cpu")
    methods = [m for m in args.methods.split(",") if m]
    if args.with_representation:  # the cheap MGDA-UB-style route of every Jacobian method
        methods += [f"{m}@rep" for m in list_methods("gradient") if m != "mgda_ub" and m in methods]
    if "equal" not in methods:
        methods.insert(0, "equal")
    out: dict[str, dict[str, float]] = {m: {} for m in methods}
    versus: dict[str, float] = {}
    for t in [int(v) for v in args.tasks.split(",")]:
        tasks = _tasks(t)
        g = torch.Generator().manual_seed(t)
        x = torch.rand(args.batch_size, 1, 28, 28, generator=g).to(dev)
        y = torch.randint(0, 10, (args.batch_size, t), generator=g).float().to(dev)
        torch.manual_seed(0)
        base = MultiTaskModel(lenet_trunk(28, 50), heads_for(tasks.tasks, 50, hidden=50)).to(dev)
        runners = {m: Runner(copy.deepcopy(base), tasks, m, x, y) for m in methods}
        one = TaskSet((tasks.tasks[0],))
        single = MultiTaskModel(lenet_trunk(28, 50), heads_for(one.tasks, 50, hidden=50)).to(dev)
        runners["_single"] = Runner(single, one, "equal", x, y[:, :1])
        sec = measure(runners, args.rounds, args.warmup, clock, dev)
        for m in methods:
            out[m][f"ms_t{t}"] = 1000 * sec[m]
            out[m][f"ratio_t{t}"] = sec[m] / sec["equal"]
        versus[f"params_ratio_t{t}"] = count_params(base) / (t * count_params(single))
        versus[f"time_ratio_t{t}"] = sec["equal"] / (t * sec["_single"])
        print(
            f"T={t}: equal {1000 * sec['equal']:.1f} ms/step, one single-task model {1000 * sec['_single']:.1f} ms/step ({clock} clock)",
            flush=True,
        )
    result = {**out, "multitask_vs_independent": versus}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    ts = [int(v) for v in args.tasks.split(",")]
    print("| method | kind | " + " | ".join(f"ms/step T={t} | ratio T={t}" for t in ts) + " |")
    print("|---|---|" + "---:|---:|" * len(ts))
    for m in methods:
        print(
            f"| {m} | {method_kind(m.split('@')[0])} | "
            + " | ".join(f"{out[m][f'ms_t{t}']:.1f} | {out[m][f'ratio_t{t}']:.2f}" for t in ts)
            + " |"
        )
    print("multi-task vs independent:", {k: round(v, 3) for k, v in versus.items()})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
