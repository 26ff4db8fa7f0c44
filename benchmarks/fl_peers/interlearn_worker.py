"""interlearn run for fl_matrix.py: ``interlearn.federated.simulate`` with FedAvg + LocalSGD.

Usage (fl_matrix.py launches it): python interlearn_worker.py PREP_DIR OUT_DIR ENGINE
(ENGINE: auto, sequential, vectorized, multicore or ray)

Uses the prep's data, partition and initial weights; the cohort schedule the prep wrote is the
one ``simulate`` draws itself (``sample_cohort`` with ``round_generator(seed, r, 0)``), which
this worker re-derives and checks before training. Also holds the weight-name conversions
between interlearn's models and the plain PyTorch ones of ``common.py`` (fl_matrix.py uses them).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from common import Clock, load_prep, train_arrays, write_result
from torch import nn

from interlearn.federated.api import EngineSetup
from interlearn.federated.client import LocalSGD
from interlearn.federated.engines import get_engine
from interlearn.federated.population import Population
from interlearn.federated.server.sampling import round_generator, sample_cohort
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies.registry import get_strategy


def interlearn_model(cfg: dict) -> nn.Module:
    """interlearn's own model of the workload (its default initialisation)."""
    from interlearn.models.char_lstm import char_lstm
    from interlearn.models.femnist_cnn import femnist_cnn
    from interlearn.models.mlp import mnist_2nn

    name = cfg["model"]
    if name == "2nn":
        return mnist_2nn()
    if name == "femnist_cnn":
        return femnist_cnn()
    return char_lstm(int(cfg["model_kwargs"]["vocab"]), output="all")


def to_peer(model_name: str, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """interlearn's parameter names -> the plain PyTorch model's (common.py)."""
    if model_name == "2nn":
        names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
        return dict(zip(names, params.values(), strict=True))
    if model_name == "femnist_cnn":
        return dict(params)
    out = {
        "embed.weight": params["embed.weight"],
        "head.weight": params["head.weight"],
        "head.bias": params["head.bias"],
    }
    for k in range(2):
        out[f"lstm.weight_ih_l{k}"] = params[f"lstm.{k}.ih.weight"]
        out[f"lstm.weight_hh_l{k}"] = params[f"lstm.{k}.hh.weight"]
        out[f"lstm.bias_ih_l{k}"] = params[f"lstm.{k}.ih.bias"]
        out[f"lstm.bias_hh_l{k}"] = torch.zeros_like(params[f"lstm.{k}.ih.bias"])
    return out


def from_peer(model: nn.Module, model_name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The plain PyTorch model's state -> interlearn's params (inverse of :func:`to_peer`)."""
    keys = list(model.state_dict())
    if model_name == "2nn":
        return {k: v.clone() for k, v in zip(keys, state.values(), strict=True)}
    if model_name == "femnist_cnn":
        return {k: state[k].clone() for k in keys}
    out = {"embed.weight": state["embed.weight"], "head.weight": state["head.weight"], "head.bias": state["head.bias"]}
    for k in range(2):
        out[f"lstm.{k}.ih.weight"] = state[f"lstm.weight_ih_l{k}"]
        out[f"lstm.{k}.hh.weight"] = state[f"lstm.weight_hh_l{k}"]
        out[f"lstm.{k}.ih.bias"] = state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]
    return {k: out[k].clone() for k in keys}


def main() -> None:
    prep, out, engine = sys.argv[1], sys.argv[2], sys.argv[3]
    start = Clock.now()
    torch.set_num_threads(1)
    cfg = load_prep(prep)
    for r, row in enumerate(cfg["schedule"].tolist(), start=1):
        if sample_cohort(cfg["num_clients"], cfg["cohort"], round_generator(cfg["seed"], r, 0)) != sorted(row):
            raise SystemExit(f"round {r}: the prep's schedule differs from interlearn's cohort sampling")
    x, y = train_arrays(cfg)
    model = interlearn_model(cfg)
    init = from_peer(model, cfg["model"], cfg["init"])
    population = Population(x, y, [torch.from_numpy(p) for p in cfg["partition"]])
    update = LocalSGD(epochs=cfg["local_epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"])
    eng = get_engine(engine, **({"num_cpus": 2} if engine == "ray" else {}))
    eng.start(EngineSetup(model, update, population, cfg["cohort"]))  # start-up: workers, warm-up, auto's choice
    marks: list[float] = []
    cpu = [Clock.cpu()]
    t0 = Clock.now()
    result = simulate(
        model,
        population,
        update,
        get_strategy("fedavg"),
        SimulationConfig(
            rounds=cfg["rounds"],
            clients_per_round=cfg["cohort"],
            eval_every=0,
            client_eval=False,
            seed=cfg["seed"],
            progress=False,
        ),
        engine=eng,
        initial_params=init,
        on_round=lambda rec: (marks.append(Clock.now()), cpu.append(Clock.cpu())),
    )
    eng.stop()
    write_result(
        out, to_peer(cfg["model"], result.params), marks, start, round_start=t0, cpu_marks=cpu, engine=result.engine
    )


if __name__ == "__main__":
    main()
