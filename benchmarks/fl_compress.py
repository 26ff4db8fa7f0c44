"""Bytes saved vs accuracy for each update compressor on MNIST.

Compressors (client side, decompressed on the server): none (float32), stochastic 8-bit and
4-bit quantization, and top-k sparsification with error feedback (10% and 1%). Bytes up are
counted by the round loop from the tensors the clients actually send (codes, min/max, indices,
values, shapes).

    python benchmarks/fl_compress.py --data-dir ../shared/data --json benchmarks/results/fl_compress.json

JSON: ``rows`` = [{"compressor", "bytes_up", "bytes_saved_ratio", "accuracy", "accuracy_drop_points"}].
"""

from __future__ import annotations

import time

import fl_protect_common as C

from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate
from interlearn.federated.protections.compression import CompressUpdates


def main() -> None:
    p = C.parser(__doc__)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--num-clients", type=int, default=100)
    p.add_argument("--clients-per-round", type=int, default=10)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--engine", default="vectorized")
    a = p.parse_args()

    x, y, parts, test = C.mnist(a.data_dir, None, a.num_clients, a.seed)
    pop = C.population(x, y, parts)
    cfg = SimulationConfig(
        rounds=a.rounds, clients_per_round=a.clients_per_round, seed=a.seed, eval_every=a.rounds, progress=False
    )
    settings = {
        "none (float32)": [],
        "q8 (stochastic 8-bit)": [CompressUpdates("q8")],
        "q4 (stochastic 4-bit)": [CompressUpdates("q4")],
        "top-k 10% + error feedback": [CompressUpdates("topk", ratio=0.1)],
        "top-k 1% + error feedback": [CompressUpdates("topk", ratio=0.01)],
    }
    rows = []
    for name, steps in settings.items():
        t0 = time.perf_counter()
        res = simulate(
            C.mlp(a.hidden, a.seed),
            pop,
            LocalSGD(epochs=1, batch_size=10, lr=0.05),
            get_strategy("fedavg"),
            cfg,
            engine=a.engine,
            steps=steps,
            test=test,
        )
        rows.append(
            {
                "compressor": name,
                "bytes_up": res.bytes_up,
                "accuracy": res.final_accuracy,
                "seconds": time.perf_counter() - t0,
            }
        )
        print(f"{name:28s} up {res.bytes_up / 1e6:8.2f} MB  acc {res.final_accuracy:.4f}", flush=True)
    dense, base = rows[0]["bytes_up"], rows[0]["accuracy"]
    for r in rows:
        r["bytes_saved_ratio"] = 1.0 - r["bytes_up"] / dense
        r["compression_factor"] = dense / r["bytes_up"]
        r["accuracy_drop_points"] = 100 * (base - r["accuracy"])
    print(
        f"\nMNIST, {a.num_clients} IID clients, {a.clients_per_round}/round, {a.rounds} rounds, MLP 784-{a.hidden}-10"
    )
    print(f"{'compressor':28s} {'MB up':>8s} {'saved':>7s} {'factor':>7s} {'accuracy':>9s} {'drop (pts)':>10s}")
    for r in rows:
        print(
            f"{r['compressor']:28s} {r['bytes_up'] / 1e6:8.2f} {r['bytes_saved_ratio']:7.1%} "
            f"{r['compression_factor']:7.1f} {r['accuracy']:9.4f} {r['accuracy_drop_points']:10.2f}"
        )
    C.write(a.json, {"benchmark": "fl_compress", "dataset": "MNIST", "config": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
