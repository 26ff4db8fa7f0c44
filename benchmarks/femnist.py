"""FEMNIST: FedAvg with LEAF's CNN over 105 writers, beside the same CNN trained centrally.

Data: the LEAF FEMNIST subset in ../shared/data/femnist-leaf (20 shards of LEAF's
``-s niid --sf 0.05 -k 0 -t sample --tf 0.9`` output: 105 writers, 14,708 training and 1,685
test images, 62 classes). Every writer is one client; the test set pools all writers' held-out
10%. Pixels are inverted to MNIST polarity (ink bright), which does not change what a CNN can
learn.

Runs, on the same data and from the same initial weights:
* FedAvg (McMahan et al. 2017): 10 clients per round, 1 local epoch of batch-10 SGD, server
  lr 1, for the rounds ``--time-budget`` seconds allow (at most ``--rounds``), on interlearn's
  default engine; test accuracy vs rounds.
* Centralized: the same CNN on the pooled training images with minibatch SGD + momentum for
  ``--central-epochs`` epochs (interlearn's fit()).

Targets: >= 80% (LEAF's FedAvg baseline on its 5% sample), stretch 84% (Reddi et al. 2021
report 84.9% on the full EMNIST-62).

Usage:
    python benchmarks/femnist.py --data-dir ../shared/data --json benchmarks/results/femnist.json

Resumable: the FedAvg run checkpoints into ``--run-dir`` every ``--checkpoint-every`` rounds; the
same command continues it with what the earlier invocations left of ``--time-budget`` (each
invocation's seconds are logged in ``sessions.json`` and summed). Delete the run folder to start
over.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from run_sessions import log_session, rounds_done, sessions

from interlearn.config import FitConfig
from interlearn.data.femnist import load_femnist
from interlearn.federated.client import LocalSGD
from interlearn.federated.params import load_params, model_params
from interlearn.federated.population import Population
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.models.femnist_cnn import femnist_cnn
from interlearn.tasks import classification
from interlearn.training import evaluate, fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"))
    ap.add_argument("--json", default="benchmarks/results/femnist.json")
    ap.add_argument("--rounds", type=int, default=5000, help="at most this many rounds")
    ap.add_argument(
        "--time-budget", type=float, default=3600.0, help="seconds of federated training (the rounds an hour allows)"
    )
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--client-lr", type=float, default=0.06)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--central-epochs", type=int, default=3)
    ap.add_argument("--central-lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", default="runs/femnist-fedavg", help="checkpoints of the FedAvg run (rerun to resume)")
    ap.add_argument("--checkpoint-every", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    train = load_femnist("train", args.data_dir)
    test = load_femnist("test", args.data_dir).pooled()
    print(
        f"writers {len(train.users)}  train {len(train)}  test {len(test)}  load {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    torch.manual_seed(args.seed)
    model = femnist_cnn()
    init = model_params(model)

    t = time.perf_counter()
    population = Population.from_clients([(d.x, d.y) for d in train.data])
    run_dir = Path(args.run_dir)
    before, spent = rounds_done(run_dir), sum(s["seconds"] for s in sessions(run_dir))
    left = args.time_budget - spent  # a resumed run gets what the earlier invocations left of the budget
    sim = SimulationConfig(
        rounds=args.rounds if left > 0 else max(before, 1),
        checkpoint_every=args.checkpoint_every,
        clients_per_round=args.clients,
        eval_every=args.eval_every,
        client_eval_max=20,
        seed=args.seed,
        time_budget_s=max(left, 1e-9),
    )
    res = simulate(
        model,
        population,
        LocalSGD(epochs=1, batch_size=args.batch_size, lr=args.client_lr),
        get_strategy("fedavg"),
        sim,
        engine=args.engine,
        test=(test.x, test.y),
        run_dir=run_dir,
        resume=True,
    )
    logged = log_session(run_dir, time.perf_counter() - t, before, len(res.history))
    fed_s = sum(s["seconds"] for s in logged)
    curve = [(h["round"], h["test_accuracy"]) for h in res.history if "test_accuracy" in h]

    central = femnist_cnn()
    load_params(central, init)  # same initial weights as the federated run
    task = classification(62)
    t = time.perf_counter()
    fr = fit(
        central,
        train.pooled(),
        task,
        FitConfig(
            epochs=args.central_epochs,
            batch_size=32,
            optimizer="sgd",
            lr=args.central_lr,
            momentum=0.9,
            schedule="cosine",
            device="cpu",
            amp=False,
            seed=args.seed,
            restore_best=False,
        ),
        val=test,
    )  # val: per-epoch curve only, no model selection
    central_s = time.perf_counter() - t
    central_acc = evaluate(central, test, task, device="cpu")["accuracy"]

    result = {
        "final_acc": curve[-1][1],
        "rounds": len(res.history),
        "centralized_acc": central_acc,
        "centralized_epochs": args.central_epochs,
        "centralized_acc_per_epoch": [h.get("val_accuracy") for h in fr.history],
        "acc_vs_rounds": curve,
        "client_accuracy_median": res.history[-1].get("client_accuracy", {}).get("median"),
        "engine": res.engine,
        "time_budget_s": args.time_budget,
        "stopped": res.stopped
        or (f"time budget of {args.time_budget:g} s spent over {len(logged)} invocations" if left <= 0 else None),
        "median_round_seconds": sorted(h["round_seconds"] for h in res.history)[len(res.history) // 2],
        "clients_per_round": args.clients,
        "client_lr": args.client_lr,
        "examples_seen": {  # fedavg: reported clients x mean writer size (approximate)
            "fedavg": int(sum(h.get("reported", 0) for h in res.history) * len(train) / len(train.users)),
            "centralized": args.central_epochs * len(train),
        },
        "targets": {"leaf_baseline": 0.80, "reddi2021_emnist62": 0.849},
        "fedavg_invocations": len(logged),
        "seconds": {"fedavg": fed_s, "centralized": central_s, "total": time.perf_counter() - t0},
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread",
    }
    out.write_text(json.dumps(result, indent=2))
    print()
    print(f"{'run':<34}{'budget':>16}{'test acc':>10}{'seconds':>9}")
    print(
        f"{'FedAvg (10 clients/round, E=1)':<34}{str(len(res.history)) + ' rounds':>16}{curve[-1][1]:>10.4f}{fed_s:>9.0f}"
    )
    print(
        f"{'centralized (same CNN, same data)':<34}{str(args.central_epochs) + ' epochs':>16}{central_acc:>10.4f}{central_s:>9.0f}"
    )
    print(f"FedAvg accuracy vs rounds: {curve}")
    print("targets: 80% (LEAF FedAvg baseline), stretch 84% (Reddi et al. 2021, full EMNIST-62)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
