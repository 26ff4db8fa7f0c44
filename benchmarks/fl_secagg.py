"""Cost of secure aggregation (Bonawitz et al. 2017): time and bytes per round, with and
without it, at 10 and 100 clients, on the sequential and vectorized engines.

Every client takes part in every round; each has 50 synthetic MNIST-shaped examples and trains
an MLP 784-32-10 (25,450 parameters) for one local epoch. "Bytes up" without secure aggregation
is the float32 update of every client; with it, everything the protocol makes a client send
(public keys, encrypted Shamir shares for every peer, the masked vector in Z_{2**48} at 6 bytes
per value, unmasking shares). Round time is the loop's ``round_seconds`` (local training, steps
and aggregation; evaluation excluded), median over the rounds after the first.

    python benchmarks/fl_secagg.py --json benchmarks/results/fl_secagg.json

JSON: ``overhead_time_ratio`` and ``overhead_bytes_ratio`` = {"10": ratio, "100": ratio} on the
vectorized engine (secure / plain), and ``rows`` with every measurement.
"""

from __future__ import annotations

import statistics

import fl_protect_common as C
import torch

from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.secagg import SecureAggregation


def main() -> None:
    p = C.parser(__doc__, data=False)
    p.add_argument("--clients", default="10,100")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--engines", default="vectorized,sequential")
    p.add_argument("--per-client", type=int, default=50)
    a = p.parse_args()

    rows = []
    for n in [int(s) for s in a.clients.split(",")]:
        g = torch.Generator().manual_seed(a.seed)
        x = torch.rand(n * a.per_client, 784, generator=g)
        y = torch.randint(0, 10, (n * a.per_client,), generator=g)
        pop = Population(x, y, [list(range(i * a.per_client, (i + 1) * a.per_client)) for i in range(n)])
        cfg = SimulationConfig(rounds=a.rounds, fraction=1.0, seed=a.seed, progress=False)
        for engine in a.engines.split(","):
            for secure in (False, True):
                steps = [SecureAggregation()] if secure else []
                res = simulate(C.mlp(32, a.seed), pop, LocalSGD(epochs=1, batch_size=10, lr=0.1),
                               get_strategy("fedavg"), cfg, engine=engine, steps=steps)
                later = res.history[1:] or res.history
                up = [h["secagg/bytes_up"] if secure else h["bytes_up"] for h in later]
                down = [h["bytes_down"] + (h["secagg/bytes_down"] if secure else 0) for h in later]
                row = {"clients": n, "engine": engine, "secure": secure,
                       "round_seconds": statistics.median(h["round_seconds"] for h in later),
                       "bytes_up": statistics.median(up), "bytes_down": statistics.median(down)}
                rows.append(row)
                print(f"{n:4d} clients {engine:10s} {'secagg' if secure else 'plain ':6s} "
                      f"{row['round_seconds']:7.3f} s/round  up {row['bytes_up'] / 1e6:8.3f} MB  "
                      f"down {row['bytes_down'] / 1e6:8.3f} MB", flush=True)

    def ratio(n: int, engine: str, key: str) -> float:
        sec = next(r for r in rows if r["clients"] == n and r["engine"] == engine and r["secure"])
        pl = next(r for r in rows if r["clients"] == n and r["engine"] == engine and not r["secure"])
        return sec[key] / pl[key]

    clients = sorted({r["clients"] for r in rows})
    engines = a.engines.split(",")
    print(f"\n{'clients':>7s} {'engine':>10s} {'time ratio':>11s} {'bytes-up ratio':>15s} {'bytes-down ratio':>17s}")
    for n in clients:
        for e in engines:
            print(f"{n:7d} {e:>10s} {ratio(n, e, 'round_seconds'):11.2f} {ratio(n, e, 'bytes_up'):15.2f} "
                  f"{ratio(n, e, 'bytes_down'):17.2f}")
    main_engine = engines[0]
    C.write(a.json, {
        "benchmark": "fl_secagg",
        "config": vars(a) | {"model": "MLP 784-32-10 (25,450 params)", "ring_bits": 48, "ratio_engine": main_engine},
        "overhead_time_ratio": {str(n): ratio(n, main_engine, "round_seconds") for n in clients},
        "overhead_bytes_ratio": {str(n): ratio(n, main_engine, "bytes_up") for n in clients},
        "overhead_by_engine": {e: {str(n): {"time": ratio(n, e, "round_seconds"), "bytes_up": ratio(n, e, "bytes_up"),
                                            "bytes_down": ratio(n, e, "bytes_down")} for n in clients} for e in engines},
        "rows": rows,
    })


if __name__ == "__main__":
    main()
