"""Accuracy vs epsilon for central DP-FedAvg on MNIST (several noise multipliers).

McMahan et al. 2018 DP-FedAvg: clients clip their update to ``--clip``, the server releases the
unweighted mean plus Gaussian noise ``z * clip / cohort`` and Opacus' RDP accountant reports
(epsilon, delta) for the subsampled Gaussian mechanism (q = cohort / population). Peers in the
same script: FedAvg without DP, and FedAvg with clipping only (z = 0, no privacy).

    python benchmarks/fl_privacy.py --data-dir ../shared/data --json benchmarks/results/fl_privacy.json

JSON: ``points`` = [{"epsilon", "accuracy", "noise_multiplier", "rounds"}], plus the peers.
"""

from __future__ import annotations

import time

import fl_protect_common as C

from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate
from interlearn.federated.privacy import ClipUpdates, dp_fedavg_steps


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--num-clients", type=int, default=1000)
    p.add_argument("--clients-per-round", type=int, default=100)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--clip", type=float, default=0.3)
    p.add_argument("--noise", default="0.7,1.0,2.0,4.0,8.0,16.0", help="noise multipliers, comma-separated")
    p.add_argument("--delta", type=float, default=1e-4)
    p.add_argument("--engine", default="vectorized")
    a = p.parse_args()

    x, y, parts, test = C.mnist(a.data_dir, None, a.num_clients, a.seed)
    pop = C.population(x, y, parts)
    q = a.clients_per_round / a.num_clients
    client = LocalSGD(epochs=1, batch_size=10, lr=0.2)
    cfg = SimulationConfig(rounds=a.rounds, clients_per_round=a.clients_per_round, seed=a.seed,
                           eval_every=a.rounds, progress=False)

    def run(steps):
        t0 = time.perf_counter()
        res = simulate(C.mlp(a.hidden, a.seed), pop, client, get_strategy("fedavg"), cfg, engine=a.engine,
                       steps=steps, test=test)
        return res, time.perf_counter() - t0

    rows = []
    base, secs = run([])
    rows.append({"setting": "FedAvg (no DP)", "noise_multiplier": 0.0, "epsilon": None,
                 "accuracy": base.final_accuracy, "seconds": secs})
    clipped, secs = run([ClipUpdates(a.clip)])
    rows.append({"setting": f"FedAvg + clip {a.clip} (no noise)", "noise_multiplier": 0.0, "epsilon": None,
                 "accuracy": clipped.final_accuracy, "seconds": secs})
    points = []
    for z in [float(s) for s in a.noise.split(",") if s.strip()]:
        steps = dp_fedavg_steps(clip_norm=a.clip, noise_multiplier=z, sample_rate=q, delta=a.delta)
        res, secs = run(steps)
        eps = float(res.history[-1]["dp/epsilon"])
        point = {"epsilon": eps, "accuracy": res.final_accuracy, "noise_multiplier": z,
                 "rounds": len(res.history), "delta": a.delta}
        points.append(point)
        rows.append({"setting": f"DP-FedAvg z={z}", **point, "seconds": secs})

    print(f"\nMNIST, {a.num_clients} IID clients, {a.clients_per_round}/round (q={q}), {a.rounds} rounds, "
          f"MLP 784-{a.hidden}-10, clip {a.clip}, delta {a.delta}, engine {a.engine}")
    print(f"{'setting':34s} {'epsilon':>9s} {'accuracy':>9s} {'seconds':>8s}")
    for r in rows:
        eps = "inf" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        print(f"{r['setting']:34s} {eps:>9s} {r['accuracy']:9.4f} {r['seconds']:8.1f}")
    C.write(a.json, {
        "benchmark": "fl_privacy",
        "dataset": "MNIST",
        "config": vars(a) | {"sample_rate": q, "accountant": "opacus rdp", "model": f"MLP 784-{a.hidden}-10"},
        "points": points,
        "non_private_accuracy": base.final_accuracy,
        "clipped_only_accuracy": clipped.final_accuracy,
        "rows": rows,
    })


if __name__ == "__main__":
    main()
