"""Cost of secure aggregation: SecAgg (Bonawitz et al. 2017, every pair of clients masks) and
SecAgg+ (Bell et al. 2020, each client masks with the smallest even k >= log2 n neighbours of a
random graph),
time and bytes per round against the same rounds without it, at 10, 100 and 1,000 clients.

Every client takes part in every round; each has 50 synthetic MNIST-shaped examples and trains
an MLP 784-32-10 (25,450 parameters) for one local epoch. "Bytes up" without secure aggregation
is the float32 update of every client; with it, everything the protocol makes a client send
(public keys, encrypted Shamir shares for every peer or neighbour, the masked vector in Z_{2**48}
at 6 bytes per value, unmasking shares). Round time is the loop's ``round_seconds`` (local
training, steps and aggregation; evaluation excluded), median over the rounds after the first
(the only round when ``--rounds 1``). Beside wall time, the CPU time of each round (the process's
CPU seconds between the ends of consecutive rounds; one torch thread) is measured: on a machine
shared with other jobs it is the steadier of the two.

    python benchmarks/fl_secagg.py --json benchmarks/results/fl_secagg.json

JSON: ``variants[name][clients] = {"time_ratio", "bytes_ratio", "cpu_time_ratio",
"bytes_down_ratio", "seconds", "plain_seconds", "cpu_seconds", "plain_cpu_seconds", "degree"}`` for name in ``secagg`` and ``secagg+`` (secure / plain, on
``--engine``), ``target`` (SecAgg+ at most 3x the plain round time at 100 clients) and ``rows``
with every measurement.
"""

from __future__ import annotations

import itertools
import statistics
import time

import fl_protect_common as C
import torch

from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.protections.secagg import SecureAggregation

VARIANTS = {"secagg": "all", "secagg+": "log"}


def crypto_micro(length: int, repeats: int = 200) -> dict[str, float]:
    """Microseconds of the protocol's dominant primitives on this CPU (median of ``repeats``):
    one X25519 key agreement (the exchange with a peer's public key, as the protocol does per
    neighbour), one X25519 key-pair generation (two per client per round), and one mask
    expansion of ``length`` values with AES-256-CTR (the PRG in use) and with ChaCha20 (the PRG
    used before)."""
    import os

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    from interlearn.federated.protections.secagg.ring import keystream_words

    def us(fn) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return 1e6 * statistics.median(times)

    mine, peer = X25519PrivateKey.generate(), X25519PrivateKey.generate().public_key()
    seed, zeros = os.urandom(32), bytes(8 * length)
    return {
        "x25519_agreement_us": us(lambda: mine.exchange(peer)),
        "x25519_keygen_us": us(X25519PrivateKey.generate),
        "aes_ctr_expand_us": us(lambda: keystream_words(seed, length)),
        "chacha20_expand_us": us(lambda: Cipher(algorithms.ChaCha20(seed, bytes(16)), None).encryptor().update(zeros)),
        "mask_values": length,
    }


def main() -> None:
    p = C.parser(__doc__, data=False)
    p.add_argument("--clients", default="10,100,1000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--rounds-at-1000", type=int, default=2, help="rounds for cohorts of 1,000 and more (full SecAgg is O(n^2))"
    )
    p.add_argument("--variants", default="secagg,secagg+")
    p.add_argument("--engine", default="vectorized")
    p.add_argument("--per-client", type=int, default=50)
    a = p.parse_args()

    rows = []
    names = [v for v in a.variants.split(",") if v]
    for n in [int(s) for s in a.clients.split(",")]:
        g = torch.Generator().manual_seed(a.seed)
        x = torch.rand(n * a.per_client, 784, generator=g)
        y = torch.randint(0, 10, (n * a.per_client,), generator=g)
        pop = Population(x, y, [list(range(i * a.per_client, (i + 1) * a.per_client)) for i in range(n)])
        rounds = a.rounds if n < 1000 else a.rounds_at_1000
        cfg = SimulationConfig(rounds=rounds, fraction=1.0, seed=a.seed, progress=False, client_eval=False)
        for variant in ["plain", *names]:
            steps = [] if variant == "plain" else [SecureAggregation(neighbours=VARIANTS[variant])]
            t0 = time.perf_counter()
            cpu = [time.process_time()]
            res = simulate(
                C.mlp(32, a.seed),
                pop,
                LocalSGD(epochs=1, batch_size=10, lr=0.1),
                get_strategy("fedavg"),
                cfg,
                engine=a.engine,
                steps=steps,
                on_round=lambda rec, cpu=cpu: cpu.append(time.process_time()),
            )
            cpu_rounds = [b - c for c, b in itertools.pairwise(cpu)]
            later = res.history[1:] or res.history
            secure = variant != "plain"
            up = [h["secagg/bytes_up"] if secure else h["bytes_up"] for h in later]
            down = [h["bytes_down"] + (h["secagg/bytes_down"] if secure else 0) for h in later]
            row = {
                "clients": n,
                "variant": variant,
                "engine": a.engine,
                "degree": steps[0].degree_for(n) if secure else 0,
                "round_seconds": statistics.median(h["round_seconds"] for h in later),
                "cpu_seconds": statistics.median(cpu_rounds[1:] or cpu_rounds),
                "bytes_up": statistics.median(up),
                "bytes_down": statistics.median(down),
                "rounds_measured": len(later),
                "wall_seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            print(
                f"{n:5d} clients {variant:8s} degree {row['degree']:4d}  {row['round_seconds']:8.3f} s/round "
                f"({row['cpu_seconds']:8.3f} CPU s)  "
                f"up {row['bytes_up'] / 1e6:9.3f} MB  down {row['bytes_down'] / 1e6:9.3f} MB",
                flush=True,
            )

    def get(n: int, variant: str) -> dict:
        return next(r for r in rows if r["clients"] == n and r["variant"] == variant)

    clients = sorted({r["clients"] for r in rows})
    variants = {
        v: {
            str(n): {
                "time_ratio": get(n, v)["round_seconds"] / get(n, "plain")["round_seconds"],
                "bytes_ratio": get(n, v)["bytes_up"] / get(n, "plain")["bytes_up"],
                "cpu_time_ratio": get(n, v)["cpu_seconds"] / get(n, "plain")["cpu_seconds"],
                "cpu_seconds": get(n, v)["cpu_seconds"],
                "plain_cpu_seconds": get(n, "plain")["cpu_seconds"],
                "bytes_down_ratio": get(n, v)["bytes_down"] / get(n, "plain")["bytes_down"],
                "seconds": get(n, v)["round_seconds"],
                "plain_seconds": get(n, "plain")["round_seconds"],
                "degree": get(n, v)["degree"],
            }
            for n in clients
        }
        for v in names
    }
    print(
        f"\n{'clients':>7s} {'variant':>8s} {'degree':>6s} {'time ratio':>11s} {'CPU ratio':>10s} {'bytes-up ratio':>15s}"
    )
    for n in clients:
        for v in names:
            r = variants[v][str(n)]
            print(
                f"{n:7d} {v:>8s} {r['degree']:6d} {r['time_ratio']:11.2f} {r['cpu_time_ratio']:10.2f} {r['bytes_ratio']:15.2f}"
            )
    target = None
    if "secagg+" in variants and "100" in variants["secagg+"]:
        ratio = variants["secagg+"]["100"]["time_ratio"]
        cpu_ratio = variants["secagg+"]["100"]["cpu_time_ratio"]
        target = {
            "what": "SecAgg+ round time <= 3x plain at 100 clients",
            "time_ratio": ratio,
            "cpu_time_ratio": cpu_ratio,
            "met": ratio <= 3.0,
            "met_in_cpu_time": cpu_ratio <= 3.0,
        }
    crypto = crypto_micro(25450)
    explain = None
    if "secagg+" in variants and "100" in variants["secagg+"]:
        v, k = variants["secagg+"]["100"], variants["secagg+"]["100"]["degree"]
        explain = {  # where a SecAgg+ round's time goes at 100 clients, per client
            "degree": k,
            "key_agreements": 2 * k,  # one for the share-encryption key, one for the mask seed, per neighbour
            "mask_expansions": k + 2,  # one per neighbour, the self mask, and the server removing it
            "primitives_ms_per_client": (
                2 * k * crypto["x25519_agreement_us"]
                + 2 * crypto["x25519_keygen_us"]
                + (k + 2) * crypto["aes_ctr_expand_us"]  # k pairwise + the self mask, and the server's removal of it
            )
            / 1e3,
            "protocol_cpu_ms_per_client": 1e3 * (v["cpu_seconds"] - v["plain_cpu_seconds"]) / 100,
            "plain_cpu_ms_per_client": 1e3 * v["plain_cpu_seconds"] / 100,
        }
    C.write(
        a.json,
        {
            "benchmark": "fl_secagg",
            "config": vars(a)
            | {
                "model": "MLP 784-32-10 (25,450 params)",
                "ring_bits": 48,
                "threshold": "majority of each neighbourhood",
                "secagg+_degree": "smallest even k >= log2 n, at most n - 1",
            },
            "variants": variants,
            "crypto_us": crypto,
            "explain_100": explain,
            "target": target,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
