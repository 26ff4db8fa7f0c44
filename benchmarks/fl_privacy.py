"""Accuracy, accountant epsilon and an empirical (canary) epsilon for central DP-FedAvg on MNIST.

The mechanism is the one McMahan et al. 2018 analyse and the accountant assumes: Poisson client
sampling (each of the N clients joins a round with probability q), clients clip their update to
``--clip``, the server adds N(0, (z * clip)^2) to the SUM of the clipped updates and divides by
the fixed denominator q * N; Opacus' RDP accountant reports (epsilon, delta) for the
Poisson-subsampled Gaussian mechanism under add/remove adjacency. Beside it, the canary audit
(Andrew et al. 2024, ``interlearn.federated.protections.privacy.audit``): ``--canaries`` canary clients
sampled like real ones upload a random direction of norm ``clip``; an observer of every round's
model scores each canary by its largest per-round cosine spike (``empirical_epsilon``, the
all-iterates observer) or by the cosine with the final model (``empirical_epsilon_final``),
against as many unseen canaries, with a 95% bootstrap interval. Peers in the same script: FedAvg
without DP, FedAvg with clipping only, and one run at z = 0.001 (practically no noise) to show
what the audit sees when nothing hides the canaries.

    python benchmarks/fl_privacy.py --data-dir ../shared/data --json benchmarks/results/fl_privacy.json

JSON: ``points`` = [{"sampling", "accountant", "epsilon", "empirical_epsilon",
"empirical_epsilon_low", "empirical_epsilon_high", "confidence", "empirical_epsilon_final", ...,
"accuracy", "noise_multiplier", "rounds", "delta", "exceeds_bound"}] (``exceeds_bound``: the
audit's lower interval end is above the accountant's epsilon), ``no_noise_audit``, the peers,
``audit_within_bound`` (no point exceeds).
"""

from __future__ import annotations

import time

import fl_protect_common as C

from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate
from interlearn.federated.protections.privacy import CanaryAudit, ClipUpdates, dp_fedavg_steps


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--num-clients", type=int, default=1000)
    p.add_argument("--clients-per-round", type=int, default=100, help="expected cohort q * N")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--clip", type=float, default=0.3)
    p.add_argument("--noise", default="0.7,1.0,2.0,4.0,8.0,16.0", help="noise multipliers, comma-separated")
    p.add_argument("--delta", type=float, default=1e-4)
    p.add_argument("--canaries", type=int, default=200, help="inserted canaries (as many unseen)")
    p.add_argument("--engine", default="vectorized")
    a = p.parse_args()

    x, y, parts, test = C.mnist(a.data_dir, None, a.num_clients, a.seed)
    pop = C.population(x, y, parts)
    q = a.clients_per_round / a.num_clients
    client = LocalSGD(epochs=1, batch_size=10, lr=0.2)

    def run(steps, sampling=None):
        cfg = SimulationConfig(
            rounds=a.rounds,
            clients_per_round=a.clients_per_round,
            seed=a.seed,
            eval_every=a.rounds,
            progress=False,
            sampling=sampling,
        )
        t0 = time.perf_counter()
        res = simulate(
            C.mlp(a.hidden, a.seed), pop, client, get_strategy("fedavg"), cfg, engine=a.engine, steps=steps, test=test
        )
        return res, time.perf_counter() - t0

    def dp_point(z):
        steps = dp_fedavg_steps(
            clip_norm=a.clip,
            noise_multiplier=z,
            population=a.num_clients,
            clients_per_round=a.clients_per_round,
            delta=a.delta,
        )
        audit = CanaryAudit(steps[1], num_canaries=a.canaries, seed=a.seed)
        res, secs = run([*steps, audit])
        it, fin = audit.result("iterates"), audit.result("final")
        eps = float(res.history[-1]["dp/epsilon"])
        point = {
            "sampling": "poisson",
            "accountant": steps[1].accountant.describe(),
            "adjacency": "add/remove",
            "epsilon": eps,
            "empirical_epsilon": it.empirical_epsilon,
            "empirical_epsilon_low": it.low,
            "empirical_epsilon_high": it.high,
            "confidence": it.confidence,
            "canary_separation": it.mu,
            "empirical_epsilon_final": fin.empirical_epsilon,
            "empirical_epsilon_final_low": fin.low,
            "empirical_epsilon_final_high": fin.high,
            "exceeds_bound": bool(it.low > eps or fin.low > eps),
            "accuracy": res.final_accuracy,
            "noise_multiplier": z,
            "rounds": len(res.history),
            "delta": a.delta,
            "canaries": a.canaries,
            "canary_uploads": audit.participations,
            "mean_cohort": sum(h["cohort"] for h in res.history) / len(res.history),
            "seconds": secs,
        }
        print(
            f"z={z:<6g} eps {eps:10.4g}  audit {it.empirical_epsilon:7.3f} [{it.low:.3f}, {it.high:.3f}]  "
            f"final-model {fin.empirical_epsilon:6.3f}  acc {res.final_accuracy:.4f}  {secs:5.0f}s",
            flush=True,
        )
        return point, steps[1].summary()

    rows = []
    base, secs = run([], sampling="poisson")
    rows.append({"setting": "FedAvg, Poisson sampling (no DP)", "accuracy": base.final_accuracy, "seconds": secs})
    clipped, secs = run([ClipUpdates(a.clip)], sampling="poisson")
    rows.append(
        {
            "setting": f"FedAvg + clip {a.clip}, Poisson sampling (no noise)",
            "accuracy": clipped.final_accuracy,
            "seconds": secs,
        }
    )
    points, summary = [], ""
    for z in [float(s) for s in a.noise.split(",") if s.strip()]:
        point, summary = dp_point(z)
        points.append(point)
    no_noise, _ = dp_point(1e-3)

    print(
        f"\nMNIST, {a.num_clients} IID clients, Poisson q={q} (expected {a.clients_per_round}/round), {a.rounds} rounds, "
        f"MLP 784-{a.hidden}-10, clip {a.clip}, delta {a.delta}, engine {a.engine}"
    )
    for r in rows:
        print(f"{r['setting']:50s} acc {r['accuracy']:.4f}")
    print(summary)
    C.write(
        a.json,
        {
            "benchmark": "fl_privacy",
            "dataset": "MNIST",
            "config": vars(a)
            | {
                "sample_rate": q,
                "sampling": "poisson",
                "adjacency": "add/remove",
                "estimator": "fixed denominator q*N",
                "accountant": "opacus rdp",
                "model": f"MLP 784-{a.hidden}-10",
            },
            "mechanism": summary,
            "points": points,
            "no_noise_audit": no_noise,
            "audit_within_bound": not any(pt["exceeds_bound"] for pt in points),
            "non_private_accuracy": base.final_accuracy,
            "clipped_only_accuracy": clipped.final_accuracy,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
