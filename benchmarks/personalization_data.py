"""The personalization benchmark's users and global models (``benchmarks/personalization.py``).

Every dataset comes on its natural per-user split, with a per-user **validation** split cut
from the user's own training data (the global model never trains on it):

* ``femnist``: LEAF's FEMNIST writers (their 90/10 train/test split, by sample); a seeded
  random 20% of each writer's training images is validation (their images are stored in the
  NIST form's order, digits then letters, so the last 20% would be a block of a few classes).
* ``shakespeare_chars``: LEAF's Shakespeare users (play + role, last 20% of lines test) in
  TFF's layout (80-character chunks, a label at every position); the last 20% of each user's
  training chunks is validation.
* ``shakespeare_words``: the same users at the word level (:mod:`interlearn.data.shakespeare_words`,
  whose loader already keeps the last 20% of each user's training words as validation).

The global model is trained with interlearn's FedAvg (:func:`interlearn.federated.server.simulation.simulate`)
for a stated number of rounds, checkpointed in ``<cache-dir>/<dataset>/federated`` (an
interrupted run continues) and saved as ``<cache-dir>/<dataset>/global`` (a rerun loads it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from interlearn.data.femnist import load_femnist
from interlearn.data.shakespeare import load_shakespeare
from interlearn.data.shakespeare_words import BOS, OOV, PAD, load_shakespeare_words, masked_cross_entropy
from interlearn.data.tensors import TensorData
from interlearn.federated.client import LocalSGD
from interlearn.federated.params import load_params, model_params
from interlearn.federated.population import Population
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.models.char_lstm import char_lstm
from interlearn.models.femnist_cnn import femnist_cnn
from interlearn.models.word_cifg import word_cifg
from interlearn.recipes import keyboard_words as kw
from interlearn.tasks import cross_entropy

DATASETS = ("femnist", "shakespeare_chars", "shakespeare_words")

# FedAvg accuracy of the global model in Marfoq et al. 2022 (kNN-Per, ICML), main table.
LITERATURE = {
    "femnist": {"fedavg": 0.834, "knn_per_gain": 0.048, "best_gradient_gain": 0.019},
    "shakespeare_chars": {"fedavg": 0.481, "knn_per_gain": 0.033, "best_gradient_gain": 0.0},
    "shakespeare_words": {"gboard_relative_gain": 0.145},
}


@dataclass(frozen=True)
class User:
    """One user's training (datastore, fine-tuning), validation (choices) and test (report) data."""

    name: str
    train: TensorData
    val: TensorData
    test: TensorData


@dataclass(frozen=True)
class Dataset:
    """Users plus what the methods need to know about the task."""

    name: str
    users: list[User]
    make_model: Callable[[], nn.Module]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ignore_labels: tuple[int, ...]  # labels never scored (PAD, OOV, BOS for words: top-1 recall)
    mask_classes: tuple[int, ...]  # never predicted (the word keyboard's special tokens)
    layer: str  # the module whose input is the memory's representation
    head: tuple[str, ...]  # the personal layers of FedRep / head fine-tuning
    meta: dict[str, Any]


def _split_last(d: TensorData, fraction: float) -> tuple[TensorData, TensorData]:
    n_val = max(int(len(d) * fraction), 1) if len(d) >= 2 else 0
    cut = len(d) - n_val
    return TensorData(d.x[:cut], d.y[:cut]), TensorData(d.x[cut:], d.y[cut:])


def load_dataset(name: str, data_dir: str | None, smoke: bool = False) -> Dataset:
    """The users of ``name`` (``smoke``: a handful of users of Tiny Shakespeare / few writers,
    tiny models)."""
    if name == "femnist":
        train = load_femnist("train", data_dir, max_users=12 if smoke else None)
        test = load_femnist("test", data_dir, max_users=12 if smoke else None)
        users = []
        for i, (u, d) in enumerate(zip(train.users, train.data)):
            x = 1.0 - d.x  # MNIST polarity (ink bright), as benchmarks/femnist.py
            # a writer's images come in the NIST form's blocks (digits, upper, lower case): a
            # seeded random fifth is validation, as LEAF's own train/test split is by sample
            order = torch.randperm(len(d), generator=torch.Generator().manual_seed(i))
            tr, va = _split_last(TensorData(x[order], d.y[order]), 0.2)
            t = test.of(u)
            users.append(User(u, tr, va, TensorData(1.0 - t.x, t.y)))
        users = _smoke(users) if smoke else users
        dense = 64 if smoke else 2048
        return Dataset(
            name,
            users,
            lambda: femnist_cnn(62, dense),
            cross_entropy,
            (),
            (),
            "head",
            ("head.*",),
            {"writers": len(users), "dense": dense},
        )
    if name == "shakespeare_chars":
        data = load_shakespeare(
            data_dir, source="tiny" if smoke else "complete", mode="sequence", max_users=8 if smoke else None
        )
        users = []
        for u in data.users:
            tr, va = _split_last(u.train, 0.2)
            if len(tr) and len(va):
                users.append(User(u.name, tr, va, u.test))
        users = _smoke(users) if smoke else users
        vocab, hidden = len(data.vocab), 16 if smoke else 256
        return Dataset(
            name,
            users,
            lambda: char_lstm(vocab, hidden=hidden, output="all"),
            cross_entropy,
            (),
            (),
            "head",
            ("head.*",),
            {"vocab": vocab, "hidden": hidden, "source": data.source, "chars": data.vocab.chars},
        )
    if name == "shakespeare_words":
        wd = load_shakespeare_words(
            data_dir,
            source="tiny" if smoke else "complete",
            vocab_size=200 if smoke else 5000,
            max_users=8 if smoke else None,
        )
        users = [User(u.name, u.train, u.val, u.test) for u in wd.users if len(u.val) and len(u.test)]
        users = _smoke(users) if smoke else users
        vocab, embed, hidden = len(wd.vocab), 16 if smoke else 96, 16 if smoke else 256
        return Dataset(
            name,
            users,
            lambda: word_cifg(vocab, embed, hidden),
            masked_cross_entropy,
            (PAD, OOV, BOS),
            (PAD, OOV, BOS),
            "proj",  # the representation is the projection's output: what the tied output layer reads
            kw.HEAD,
            {"vocab": vocab, "embed": embed, "hidden": hidden, "words": list(wd.vocab.words), "source": wd.source},
        )
    raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")


def _smoke(users: list[User], n_users: int = 4, n_items: int = 6) -> list[User]:
    """A few users with a few examples each (the smoke test)."""
    cut = lambda d: TensorData(d.x[:n_items], d.y[:n_items])
    return [User(u.name, cut(u.train), cut(u.val), cut(u.test)) for u in users[:n_users]]


def sample_users(ds: Dataset, n: int, min_labels: int, seed: int) -> list[User]:
    """A seeded random sample of ``n`` users among those with at least ``min_labels`` scored
    labels in each of validation and test (all of them when fewer qualify)."""

    def count(d: TensorData) -> int:
        keep = torch.ones_like(d.y, dtype=torch.bool)
        for label in ds.ignore_labels:
            keep &= d.y != label
        return int(keep.sum())

    ok = [u for u in ds.users if count(u.val) >= min_labels and count(u.test) >= min_labels]
    if len(ok) <= n:
        return ok
    rng = random.Random(seed)
    return sorted(rng.sample(ok, n), key=lambda u: u.name)


def federated_update(ds: Dataset, smoke: bool) -> tuple[LocalSGD, str]:
    """The clients' local training of each dataset (and the engine), as in the repo's benchmarks:
    FEMNIST as ``benchmarks/femnist.py``, characters as ``benchmarks/shakespeare.py`` (Reddi et
    al. 2021), words as ``benchmarks/keyboard_words.py``."""
    steps = 2 if smoke else None
    if ds.name == "femnist":
        return LocalSGD(epochs=1, steps=steps, batch_size=10, lr=0.06), "sequential"
    if ds.name == "shakespeare_chars":
        return LocalSGD(epochs=1, steps=steps, batch_size=4, lr=1.0), "sequential"
    return (
        LocalSGD(epochs=1, steps=steps, batch_size=10, lr=3e-3, optimizer="adam", loss=masked_cross_entropy),
        "sequential",
    )


def global_model(
    ds: Dataset, rounds: int, cache_dir: Path, seed: int = 0, smoke: bool = False, progress: bool = True
) -> tuple[nn.Module, dict[str, torch.Tensor], dict[str, Any]]:
    """FedAvg for ``rounds`` rounds over every user's training split (10 clients per round),
    resumable; a finished run is loaded from ``cache_dir/<dataset>/global``.

    Returns:
        The model (holding the global weights), its params, and provenance (rounds, seconds).
    """
    torch.manual_seed(seed)
    model = ds.make_model()
    root = cache_dir / ds.name
    final = root / "global"
    if has_checkpoint(final):
        tensors, meta = load_checkpoint(final)
        if int(meta.get("rounds", -1)) == rounds:
            load_params(model, tensors)
            return model, model_params(model), meta
    update, engine = federated_update(ds, smoke)
    pop = Population.from_clients([(u.train.x, u.train.y) for u in ds.users])
    sim = SimulationConfig(
        rounds=rounds,
        clients_per_round=min(10, len(ds.users)),
        eval_every=0,
        client_eval=False,
        checkpoint_every=min(10, rounds),
        seed=seed,
        progress=progress,
    )
    t = time.perf_counter()
    res = simulate(
        model, pop, update, get_strategy("fedavg"), sim, engine=engine, run_dir=root / "federated", resume=True
    )
    load_params(model, res.params)
    params = model_params(model)
    meta = {
        "rounds": rounds,
        "clients_per_round": sim.clients_per_round,
        "local": {
            "epochs": update.epochs,
            "batch_size": update.batch_size,
            "lr": update.lr,
            "optimizer": update.optimizer,
        },
        "strategy": "fedavg",
        "engine": res.engine,
        "seconds_last_invocation": time.perf_counter() - t,
        "seed": seed,
    }
    save_checkpoint(final, params, meta)
    return model, params, meta
