"""interlearn run for fl_speed.py: ``interlearn.federated.simulate`` with FedAvg + LocalSGD.

Usage (fl_speed.py launches it): python interlearn_worker.py PREP_DIR OUT_DIR ENGINE
(ENGINE: any registered interlearn engine name: sequential, vectorized, fused_mlp)

Uses the prep's partition and initial weights; the cohort schedule the prep wrote is the one
``simulate`` draws itself (``sample_cohort`` with ``round_generator(seed, r, 0)``), which this
worker re-derives and checks before training.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import Clock, load_prep, write_result  # noqa: E402
from interlearn.data.mnist import load_mnist  # noqa: E402
from interlearn.federated.client import LocalSGD  # noqa: E402
from interlearn.federated.population import Population  # noqa: E402
from interlearn.federated.sampling import round_generator, sample_cohort  # noqa: E402
from interlearn.federated.simulation import SimulationConfig, simulate  # noqa: E402
from interlearn.federated.strategies.registry import get_strategy  # noqa: E402
from interlearn.models.mlp import mnist_2nn  # noqa: E402


def main() -> None:
    prep, out, engine = sys.argv[1], sys.argv[2], sys.argv[3]
    start = Clock.now()
    torch.set_num_threads(1)
    cfg = load_prep(prep)
    for r, row in enumerate(cfg["schedule"].tolist(), start=1):
        if sample_cohort(cfg["num_clients"], cfg["cohort"], round_generator(cfg["seed"], r, 0)) != sorted(row):
            raise SystemExit(f"round {r}: the prep's schedule differs from interlearn's cohort sampling")
    train = load_mnist("train", cfg["data_dir"], flatten=True)
    model = mnist_2nn()
    init = {k: t.reshape(v.shape).clone() for (k, v), t in zip(model.state_dict().items(), cfg["init"], strict=True)}
    population = Population(train.x, train.y, [torch.from_numpy(p) for p in cfg["partition"]])
    marks: list[float] = []
    cpu = [Clock.cpu()]
    t0 = Clock.now()
    result = simulate(
        model,
        population,
        LocalSGD(epochs=cfg["local_epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"]),
        get_strategy("fedavg"),
        SimulationConfig(rounds=cfg["rounds"], clients_per_round=cfg["cohort"], eval_every=0, client_eval=False, seed=cfg["seed"], progress=False),  # peers do no per-client evaluation
        engine=engine,
        initial_params=init,
        on_round=lambda rec: (marks.append(Clock.now()), cpu.append(Clock.cpu())),
    )
    write_result(out, list(result.params.values()), marks, start, round_start=t0, cpu_marks=cpu)


if __name__ == "__main__":
    main()
