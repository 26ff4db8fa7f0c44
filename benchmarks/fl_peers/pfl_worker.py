"""pfl-research 0.6 for fl_matrix.py: FedAvg in pfl's simulator on the workload's model.

Usage (fl_matrix.py launches it with .venv-bench/bin/python): python pfl_worker.py PREP_DIR OUT_DIR

Follows pfl's documented PyTorch setup (its benchmarks/image_classification/pytorch/train.py):
``PyTorchModel`` (local SGD, central SGD with lr 1.0 = plain FedAvg), ``SimulatedBackend`` with
``WeightByDatapoints``, ``FederatedAveraging().run(NNAlgorithmParams, ...)``. The user sampler is
the prep's cohort schedule, so pfl trains the same clients in the same rounds as the others.
pfl's ``Dataset.iter`` does not shuffle, so each sampled user's data is permuted when it is
built. pfl's simulator runs in this one process (its multi-process mode needs Horovod/MPI).
"""

from __future__ import annotations

import os
import sys
from itertools import chain
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from common import MODELS, Clock, load_prep, loss_fn, train_arrays, write_result
from pfl.aggregate.simulate import SimulatedBackend
from pfl.aggregate.weighting import WeightByDatapoints
from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
from pfl.callback.base import TrainingProcessCallback
from pfl.data.dataset import Dataset
from pfl.data.federated_dataset import FederatedDataset
from pfl.hyperparam import NNEvalHyperParams, NNTrainHyperParams
from pfl.metrics import Metrics, Weighted
from pfl.model.pytorch import PyTorchModel


def pfl_model(cfg: dict) -> torch.nn.Module:
    """The workload's model with the ``loss``/``metrics`` methods pfl's PyTorchModel requires."""
    base = MODELS[cfg["model"]]

    class PflModel(base):  # type: ignore[valid-type,misc]
        def loss(self, x: torch.Tensor, y: torch.Tensor, eval: bool = False) -> torch.Tensor:
            self.eval() if eval else self.train()
            return loss_fn(self(x), y)

        @torch.no_grad()
        def metrics(self, x: torch.Tensor, y: torch.Tensor, eval: bool = True) -> dict:
            logits = self(x)
            n = int(y.numel())
            return {
                "loss": Weighted(float(torch.nn.functional.cross_entropy(logits, y.long(), reduction="sum")), n),
                "accuracy": Weighted(float((logits.argmax(1) == y).sum()), n),
            }

    model = PflModel(**cfg.get("model_kwargs", {}))
    model.load_state_dict(cfg["init"])
    return model


class Timeline(TrainingProcessCallback):
    """Wall-clock timestamp at the start and after every central iteration."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []

    def on_train_begin(self, *, model) -> Metrics:  # type: ignore[no-untyped-def]
        self.times.append(Clock.now())
        self.cpu.append(Clock.cpu())
        return Metrics()

    def after_central_iteration(self, aggregate_metrics, model, *, central_iteration):  # type: ignore[no-untyped-def]
        self.times.append(Clock.now())
        self.cpu.append(Clock.cpu())
        return False, Metrics()


def main() -> None:
    prep, out = sys.argv[1], sys.argv[2]
    start = Clock.now()
    torch.set_num_threads(1)
    cfg = load_prep(prep)
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    x, y = train_arrays(cfg)
    users = {i: (x[torch.from_numpy(ix)], y[torch.from_numpy(ix)]) for i, ix in enumerate(cfg["partition"])}
    order = iter(chain.from_iterable(cfg["schedule"].tolist()))  # the shared cohort schedule
    shuffle = torch.Generator().manual_seed(cfg["seed"])

    def make_dataset(uid: int) -> Dataset:
        # pfl's Dataset.iter does not shuffle: give each sampled user a fresh permutation, as
        # the other tools reshuffle their local data every round.
        ux, uy = users[uid]
        perm = torch.randperm(len(uy), generator=shuffle)
        return Dataset((ux[perm], uy[perm]), user_id=str(uid))

    train_data = FederatedDataset(make_dataset, user_sampler=lambda: next(order))
    net = pfl_model(cfg)
    params = [p for p in net.parameters() if p.requires_grad]
    model = PyTorchModel(
        model=net, local_optimizer_create=torch.optim.SGD, central_optimizer=torch.optim.SGD(params, lr=1.0)
    )
    backend = SimulatedBackend(training_data=train_data, val_data=None, postprocessors=[WeightByDatapoints()])  # type: ignore[arg-type]
    timeline = Timeline()
    FederatedAveraging().run(
        algorithm_params=NNAlgorithmParams(
            central_num_iterations=cfg["rounds"],
            evaluation_frequency=cfg["rounds"],
            train_cohort_size=cfg["cohort"],
            val_cohort_size=0,
        ),
        backend=backend,
        model=model,
        model_train_params=NNTrainHyperParams(
            local_learning_rate=cfg["lr"], local_num_epochs=cfg["local_epochs"], local_batch_size=cfg["batch_size"]
        ),
        model_eval_params=NNEvalHyperParams(local_batch_size=500),
        callbacks=[timeline],
    )
    write_result(
        out, net.state_dict(), timeline.times[1:], start, round_start=timeline.times[0], cpu_marks=timeline.cpu
    )


if __name__ == "__main__":
    main()
