"""Fairness of q-FedAvg (Li, Sanjabi, Beirami & Smith 2020, "Fair Resource Allocation in
Federated Learning", ICLR): the spread of client accuracies against FedAvg on MNIST.

MNIST split over ``--num-clients`` clients by a Dirichlet(``--alpha``) label skew (non-IID, as
federated fairness needs heterogeneous clients); each client keeps 20% of its own examples as its
test set. ``--clients-per-round`` clients per round (fixed-size cohorts), MLP 784-32-10, local SGD
1 epoch, batch 10, lr ``--lr``, sequential engine (q-FedAvg's clients report their loss at the
received model through ``QFFLClient``). After the last round the global model is scored on every
client's held-out examples; the figure q-FFL exists for is the spread of those accuracies
(standard deviation, worst and best 10% of clients), next to the mean.

    python benchmarks/fl_fairness.py --data-dir ../shared/data --json benchmarks/results/fl_fairness.json

JSON: ``rows`` = [{"strategy", "q", "local_lr", "mean", "std", "worst10", "best10",
"test_accuracy"}], ``config``. ``--qffl-lr`` sets q-FedAvg's ``local_lr`` (its Lipschitz estimate
is ``L = 1 / local_lr``; Li et al. tie it to the local learning rate and tune it per dataset).
"""

from __future__ import annotations

import statistics
import time

import fl_protect_common as C
import torch

from interlearn.federated import LocalSGD, Population, SimulationConfig, evaluate_params, get_strategy, simulate
from interlearn.federated.partition import dirichlet
from interlearn.federated.strategies import QFedAvg, QFFLClient


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--num-clients", type=int, default=100)
    p.add_argument("--clients-per-round", type=int, default=10)
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--q", default="1,5", help="q values of q-FedAvg, comma-separated")
    p.add_argument(
        "--qffl-lr",
        default="same,1.0",
        help="q-FedAvg's local_lr values (L = 1/local_lr), comma-separated; 'same' = --lr (the paper's tie)",
    )
    a = p.parse_args()

    x, y, _, test = C.mnist(a.data_dir, a.train_size, 1, a.seed)
    parts = dirichlet(y, a.num_clients, alpha=a.alpha, seed=a.seed, min_size=10)
    g = torch.Generator().manual_seed(a.seed)
    train_parts, test_parts = [], []
    for part in parts:
        perm = part[torch.randperm(len(part), generator=g)]
        k = max(1, int(0.2 * len(perm)))
        test_parts.append(perm[:k])
        train_parts.append(perm[k:])
    pop = Population(x, y, train_parts)
    cfg = SimulationConfig(
        rounds=a.rounds,
        clients_per_round=a.clients_per_round,
        seed=a.seed,
        eval_every=a.rounds,
        client_eval=False,
        progress=False,
    )
    local = LocalSGD(epochs=1, batch_size=10, lr=a.lr)

    runs = [("fedavg", 0.0, get_strategy("fedavg"), local)]
    lipschitz = [a.lr if v.strip() == "same" else float(v) for v in a.qffl_lr.split(",") if v.strip()]
    runs += [
        ("qfedavg", float(q), QFedAvg(q=float(q), local_lr=lr), QFFLClient(local))
        for lr in lipschitz
        for q in a.q.split(",")
        if q.strip()
    ]
    rows = []
    for name, q, strategy, client in runs:
        t0 = time.perf_counter()
        res = simulate(C.mlp(32, a.seed), pop, client, strategy, cfg, engine="sequential", test=test)
        model = C.mlp(32, a.seed)
        accs = sorted(evaluate_params(model, res.params, x[idx], y[idx])["accuracy"] for idx in test_parts)
        tenth = max(1, len(accs) // 10)
        row = {
            "strategy": name,
            "q": q,
            "local_lr": getattr(strategy, "local_lr", None),
            "mean": statistics.fmean(accs),
            "std": statistics.pstdev(accs),
            "worst10": statistics.fmean(accs[:tenth]),
            "best10": statistics.fmean(accs[-tenth:]),
            "test_accuracy": res.final_accuracy,
            "clients": len(accs),
            "seconds": time.perf_counter() - t0,
        }
        rows.append(row)
        print(
            f"{name:8s} q={q:<4g} L^-1={row['local_lr']}  mean {row['mean']:.4f}  std {row['std']:.4f}  worst 10% {row['worst10']:.4f}  "
            f"best 10% {row['best10']:.4f}  global test {row['test_accuracy']:.4f}  {row['seconds']:.0f}s",
            flush=True,
        )
    C.write(
        a.json,
        {
            "benchmark": "fl_fairness",
            "dataset": "MNIST",
            "config": vars(a)
            | {
                "partition": f"dirichlet(alpha={a.alpha}), 20% of each client held out",
                "model": "MLP 784-32-10",
                "engine": "sequential",
            },
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
