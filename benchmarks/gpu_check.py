"""GPU check: every engine on CUDA against CPU, and training rates per example, in under 5 minutes.

Usage (on a machine with a CUDA GPU):
    python benchmarks/gpu_check.py --json benchmarks/results/gpu_check.json

Without CUDA it writes a JSON that says it skipped and why, prints the reason and exits 0.
``--device cpu --quick`` runs every step with the CPU standing in for the GPU (the tests do this,
so the script's code paths are exercised on machines without a GPU; the numbers then say
nothing about GPUs).

What it checks, on synthetic data with the shapes of ``benchmarks/fl_matrix.py``'s workloads
(the 784-200-200-10 2NN; LEAF's FEMNIST CNN, 1x28x28 images, 62 classes; the 8-dim embedding +
2 x 256 LSTM over 80-character chunks with a label at every position, 80 characters):

1. **Equality.** For each model, the same federated run (FedAvg, ``LocalSGD(epochs=1,
   batch_size=10)``, 6 clients of 20 examples, 3 a round, 2 rounds) on the CPU with the
   ``sequential`` engine, then on the device with each engine: the final params must agree within
   ``1e-4``. TF32 is turned off for this step (``torch.backends.{cuda.matmul,cudnn}.allow_tf32``),
   since TF32 matmuls and convolutions round to 10 mantissa bits and differ by ~1e-3 by design.
   ``multicore`` runs CPU models only (it refuses a CUDA model, and the check records its message);
   ``ray`` is not run: its tasks request CPUs (``cpus_per_client``), never GPUs.
2. **Rates per example** (TF32 at torch's defaults): a cohort of 10 clients of 50 examples (the
   workloads' batch of 10) trained by the federated engines on the device; and ``interlearn.fit``
   on the same model at batch 10 and 256, with ``amp`` (float16 autocast + GradScaler) off and on:
   the federated client update has no mixed precision, ``fit`` has. Each rate is the best of
   repeated timed passes after a warm-up, with ``torch.cuda.synchronize()`` around each.

The whole check stops starting new measurements after ``--budget-s`` seconds (default 240) and
lists what it left out.

JSON keys: "skipped" (bool), "reason" (why it skipped), "device", "device_name", "torch",
"cuda" (version), "tf32" (the defaults the rates ran with), "equality" (model -> engine ->
{"status": "equal" | "differs" | "cannot use CUDA" | "not run" | "error", "max_abs_diff",
"reason"}), "tolerance", "all_equal", "rates" (model -> {"federated": engine ->
{"examples_per_s", "us_per_example"}, "fit": "batch@amp" -> {...}, "notes"}), "left_out",
"seconds".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from torch import nn

TOLERANCE = 1e-4
VOCAB, SEQ = 80, 80
MODELS = ("mnist_2nn", "femnist_cnn", "shakespeare_lstm")
ENGINES = ("sequential", "vectorized", "auto", "multicore", "ray")


def make_model(name: str, seed: int = 0) -> nn.Module:
    """The workload's model (interlearn's default initialisation, seeded)."""
    from interlearn.models.char_lstm import char_lstm
    from interlearn.models.femnist_cnn import femnist_cnn
    from interlearn.models.mlp import mnist_2nn

    torch.manual_seed(seed)
    if name == "mnist_2nn":
        return mnist_2nn()
    if name == "femnist_cnn":
        return femnist_cnn()
    return char_lstm(VOCAB, output="all")


def make_data(name: str, n: int, seed: int, last_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic examples with the workload's shapes: (x, y)."""
    g = torch.Generator().manual_seed(seed)
    if name == "mnist_2nn":
        return torch.rand(n, 784, generator=g), torch.randint(0, 10, (n,), generator=g)
    if name == "femnist_cnn":
        return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 62, (n,), generator=g)
    x = torch.randint(0, VOCAB, (n, SEQ), generator=g)
    y = torch.randint(0, VOCAB, (n,) if last_only else (n, SEQ), generator=g)
    return x, y


def _population(name: str, clients: int, per_client: int, device: torch.device) -> Any:
    from interlearn.federated.population import Population

    x, y = make_data(name, clients * per_client, seed=1)
    parts = [torch.arange(c * per_client, (c + 1) * per_client) for c in range(clients)]
    return Population(x.to(device), y.to(device), parts)


def _engine(name: str) -> Any:
    from interlearn.federated.engines import get_engine

    return get_engine(name, workers=2) if name == "multicore" else get_engine(name)


def _simulate(model_name: str, engine: str, device: torch.device, rounds: int) -> dict[str, torch.Tensor]:
    from interlearn.federated.client import LocalSGD
    from interlearn.federated.server.simulation import SimulationConfig, simulate
    from interlearn.federated.strategies import get_strategy

    lr = {"mnist_2nn": 0.1, "femnist_cnn": 0.06, "shakespeare_lstm": 1.0}[model_name]
    res = simulate(
        make_model(model_name).to(device),
        _population(model_name, 6, 20, device),
        LocalSGD(epochs=1, batch_size=10, lr=lr),
        get_strategy("fedavg"),
        SimulationConfig(rounds=rounds, clients_per_round=3, client_eval=False, seed=0, progress=False),
        engine=engine,
    )
    return {k: v.detach().float().cpu() for k, v in res.params.items()}


def equality(
    device: torch.device, models: tuple[str, ...], rounds: int, out: dict[str, Any], over: Callable[[], bool]
) -> None:
    """Each engine on ``device`` against the sequential engine on the CPU (see the docstring)."""
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        for model_name in models:
            row: dict[str, Any] = {}
            out["equality"][model_name] = row
            if over():
                out["left_out"].append(f"equality of {model_name}")
                continue
            ref = _simulate(model_name, "sequential", torch.device("cpu"), rounds)
            for engine in ENGINES:
                if engine == "ray":
                    row[engine] = {
                        "status": "not run",
                        "reason": "RayEngine tasks request CPUs (cpus_per_client), never GPUs; "
                        "clients run on the CPUs of the Ray workers",
                    }
                    continue
                if over():
                    out["left_out"].append(f"equality of {model_name} on {engine}")
                    continue
                try:
                    got = _simulate(model_name, engine, device, rounds)
                except Exception as exc:  # noqa: BLE001  (recorded: the check goes on with the next engine)
                    refused = engine == "multicore" and device.type != "cpu" and "CPU models" in str(exc)
                    row[engine] = {
                        "status": "cannot use CUDA" if refused else "error",
                        "reason": f"{type(exc).__name__}: {exc}",
                    }
                    continue
                diff = max(float((ref[k] - got[k]).abs().max()) for k in ref)
                row[engine] = {"status": "equal" if diff <= TOLERANCE else "differs", "max_abs_diff": diff}
                print(f"  {model_name:17s} {engine:11s} max |diff| {diff:.2e}", flush=True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_rate(run: Callable[[], None], examples: int, device: torch.device, min_s: float) -> dict[str, float]:
    """Examples per second of ``run`` (one warm-up pass, then the best of passes for ``min_s``)."""
    run()
    _sync(device)
    best, spent = float("inf"), 0.0
    while spent < min_s:
        t0 = time.perf_counter()
        run()
        _sync(device)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return {"examples_per_s": examples / best, "us_per_example": best / examples * 1e6}


def rates(
    device: torch.device,
    models: tuple[str, ...],
    min_s: float,
    out: dict[str, Any],
    over: Callable[[], bool],
    quick: bool,
) -> None:
    """Federated engines and ``fit`` (amp off/on) per example, per model (see the docstring)."""
    from interlearn.config import FitConfig
    from interlearn.data.tensors import TensorData
    from interlearn.federated.client import LocalSGD
    from interlearn.federated.engines import run_cohort_on
    from interlearn.federated.params import model_params
    from interlearn.federated.population import Population
    from interlearn.tasks import classification
    from interlearn.training import fit

    clients, per_client = (4, 10) if quick else (10, 50)
    for model_name in models:
        row: dict[str, Any] = {"federated": {}, "fit": {}, "notes": []}
        out["rates"][model_name] = row
        model = make_model(model_name).to(device)
        params = model_params(model)
        x, y = make_data(model_name, clients * per_client, seed=2)
        pop = Population.from_clients(
            [
                (x[c * per_client : (c + 1) * per_client], y[c * per_client : (c + 1) * per_client])
                for c in range(clients)
            ]
        )
        cohort = [pop.client(c) for c in range(clients)]
        cohort = [type(d)(d.client_id, d.x.to(device), d.y.to(device)) for d in cohort]
        for engine in ("sequential", "vectorized"):
            if over():
                out["left_out"].append(f"federated rate of {model_name} on {engine}")
                continue
            try:
                eng = _engine(engine)
                update = LocalSGD(epochs=1, batch_size=10, lr=0.01)
                row["federated"][engine] = _best_rate(
                    lambda: run_cohort_on(eng, model, update, params, cohort),  # noqa: B023  (run now)
                    clients * per_client,
                    device,
                    min_s,
                )
            except Exception as exc:  # noqa: BLE001  (recorded)
                row["federated"][engine] = {"error": f"{type(exc).__name__}: {exc}"}
        row["notes"].append("federated client updates train in float32: LocalSGD has no mixed precision")
        if model_name == "shakespeare_lstm":
            row["notes"].append("fit: the same LSTM with its head on the last position only (a classification task)")
        fx, fy = make_data(model_name, 10 * per_client if quick else 2560, seed=3, last_only=True)
        num_classes = {"mnist_2nn": 10, "femnist_cnn": 62, "shakespeare_lstm": VOCAB}[model_name]
        for batch in (10, 256):
            for amp in (False, True):
                key = f"{batch}@{'amp' if amp else 'fp32'}"
                if amp and device.type != "cuda":
                    row["fit"][key] = {"status": "amp runs on CUDA only (fit ignores it on the CPU)"}
                    continue
                if over():
                    out["left_out"].append(f"fit rate of {model_name} {key}")
                    continue
                fit_model = make_model(model_name)
                if model_name == "shakespeare_lstm":
                    from interlearn.models.char_lstm import char_lstm

                    torch.manual_seed(0)
                    fit_model = char_lstm(VOCAB, output="last")
                cfg = FitConfig(
                    epochs=1,
                    batch_size=batch,
                    optimizer="sgd",
                    lr=0.01,
                    schedule="constant",
                    amp=amp,
                    device=str(device),
                )
                data = TensorData(fx, fy)
                try:
                    row["fit"][key] = _best_rate(
                        lambda: fit(fit_model, data, classification(num_classes), cfg),  # noqa: B023  (run now)
                        len(fy),
                        device,
                        min_s,
                    )
                except Exception as exc:  # noqa: BLE001  (recorded)
                    row["fit"][key] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  {model_name:17s} rates: {json.dumps(row, default=str)[:300]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="benchmarks/results/gpu_check.json")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (a stand-in: exercises the code only)")
    ap.add_argument("--budget-s", type=float, default=240.0, help="start no new measurement after this")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (for the tests)")
    ap.add_argument("--models", default=",".join(MODELS), help=f"a subset of {','.join(MODELS)}")
    args = ap.parse_args(argv)
    models = tuple(m for m in args.models.split(",") if m)
    if not models or any(m not in MODELS for m in models):
        ap.error(f"--models {args.models!r}: choose among {', '.join(MODELS)}")
    began = time.perf_counter()
    out: dict[str, Any] = {
        "skipped": False,
        "reason": None,
        "device": args.device,
        "device_name": None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "tolerance": TOLERANCE,
        "equality": {},
        "rates": {},
        "left_out": [],
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        why = (
            "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA device is visible"
        ) + f" (torch {torch.__version__}): nothing to check; run this script on a machine with a CUDA GPU"
        out.update(skipped=True, reason=why)
        path.write_text(json.dumps(out, indent=2))
        print(f"gpu_check: skipped: {why}\nwrote {path}")
        return 0
    device = torch.device(args.device)
    out["device_name"] = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    out["tf32"] = {
        "matmul": torch.backends.cuda.matmul.allow_tf32,
        "cudnn": torch.backends.cudnn.allow_tf32,
    }
    torch.set_num_threads(1)

    def over() -> bool:
        return time.perf_counter() - began > args.budget_s

    print(f"gpu_check on {out['device_name']} ({device})", flush=True)
    equality(device, models, 1 if args.quick else 2, out, over)
    rates(device, models, 0.05 if args.quick else 1.0, out, over, args.quick)
    ran = [e for row in out["equality"].values() for e in row.values() if e["status"] in ("equal", "differs")]
    out["all_equal"] = bool(ran) and all(e["status"] == "equal" for e in ran)
    out["seconds"] = time.perf_counter() - began
    path.write_text(json.dumps(out, indent=2))
    print(f"every engine that ran agrees within {TOLERANCE:g}: {out['all_equal']}; {out['seconds']:.0f} s")
    if out["left_out"]:
        print(f"left out (budget): {out['left_out']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
