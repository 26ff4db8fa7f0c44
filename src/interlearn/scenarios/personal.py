"""Tour scenario: personalization by a local memory on top of the federated model, per user.

The digits are split over 16 clients with a Dirichlet label skew, as in the federated scenario;
each client keeps 60 % of its examples to train on, 20 % to validate and 20 % to test, all on
the device. FedAvg trains the global model on the training parts. Then every client builds
kNN-Per's memory (Marfoq et al. 2022; :mod:`interlearn.federated.personalization.memory`): the global model's
hidden representation of its own examples and their labels, mixed with the global prediction,
the mixture weight chosen on its validation part (the global model itself when the memory does
not help there). The plot shows every user's test accuracy before and after.

The boundary is the skew: a memory of one's own examples pays when a user's data differs from
the population's; as the Dirichlet concentration grows the clients become IID and the global
model already fits everyone, so the gain shrinks to nothing. Three seeds (partition, split,
initial weights, sampling) at every skew.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interlearn.data import load_digits
from interlearn.data.tensors import TensorData
from interlearn.federated.partition import dirichlet
from interlearn.federated.personalization.memory import MemoryConfig, encode, personalize_memory
from interlearn.federated.population import Population
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.federated.tour import ALPHA, CLIENTS_PER_ROUND, LOCAL, NUM_CLIENTS, ROUNDS
from interlearn.models.mlp import digits_mlp
from interlearn.plotting import log_x, pyplot, save_figure
from interlearn.report import Section
from interlearn.scenarios.base import Scenario
from interlearn.scenarios.stats import Gain, boundary, gain_verdict, paired_gain

__all__ = ["run", "ALPHAS", "REPEATS", "MEMORY"]

ALPHAS = (0.1, ALPHA, 1.0, 10.0)
"""Dirichlet concentrations, most skewed first (``ALPHA`` is the federated scenario's)."""
REPEATS = 3
MEMORY = MemoryConfig(layer="2")
"""The representation is the input of the MLP's last linear layer (``"2"``): its hidden layer."""
SPLIT = (0.6, 0.2)  # train and validation fractions of each client's examples; the rest is its test part


@dataclass(frozen=True)
class Users:
    """Per-user test accuracy of the global model and of the personalized one, and test sizes."""

    global_acc: list[float]
    memory_acc: list[float]
    sizes: list[int]
    memory_bytes: list[int]

    def weighted(self, accs: list[float]) -> float:
        """Example-weighted mean over users (as the personalization papers report)."""
        return sum(a * n for a, n in zip(accs, self.sizes)) / sum(self.sizes)

    @property
    def gains(self) -> list[float]:
        return [m - g for m, g in zip(self.memory_acc, self.global_acc)]


def _splits(y: torch.Tensor, alpha: float, seed: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Each client's (train, validation, test) example indices."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for part in dirichlet(y, NUM_CLIENTS, alpha=alpha, seed=seed, min_size=10):
        idx = torch.as_tensor(part)[torch.randperm(len(part), generator=g)]
        a, b = int(SPLIT[0] * len(idx)), int((SPLIT[0] + SPLIT[1]) * len(idx))
        out.append((idx[:a], idx[a:b], idx[b:]))
    return out


def personalize_users(alpha: float, seed: int) -> Users:
    """FedAvg on the clients' training parts, then every client's memory; accuracy on their test parts."""
    tr, te = load_digits(seed=seed)
    x, y = torch.cat([tr.x, te.x]), torch.cat([tr.y, te.y])
    splits = _splits(y, alpha, seed)
    cfg = SimulationConfig(
        rounds=ROUNDS, clients_per_round=CLIENTS_PER_ROUND, seed=seed, client_eval=False, progress=False
    )
    model = digits_mlp(seed=seed)
    population = Population(x, y, [s[0] for s in splits])
    params = simulate(model, population, LOCAL, get_strategy("fedavg"), cfg, engine="vectorized").params
    users = Users([], [], [], [])
    for train, val, test in splits:
        enc = [encode(model, params, TensorData(x[i], y[i]), MEMORY) for i in (train, val, test)]
        memory, _ = personalize_memory(enc[0], enc[1], 10, MEMORY)
        users.global_acc.append(float((enc[2].log_probs.argmax(1) == enc[2].labels).float().mean()))
        users.memory_acc.append(memory.accuracy(enc[2]))
        users.sizes.append(len(test))
        users.memory_bytes.append(memory.nbytes)
    return users


def _plot(users: Users, gains: dict[float, Gain], path: Path) -> Path:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    a.scatter(users.global_acc, users.memory_acc, s=[6 + n for n in users.sizes], alpha=0.7)
    lo = min(users.global_acc + users.memory_acc) - 0.02
    a.plot([lo, 1.0], [lo, 1.0], color="k", lw=1, ls="--", label="no change")
    a.set_xlabel("global model (test accuracy per user)")
    a.set_ylabel("global model + local memory")
    a.set_title(f"each user, alpha = {ALPHA:g} (dot size: test examples)", fontsize=9)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    xs = list(gains)
    b.errorbar(xs, [100 * gains[x].mean for x in xs], yerr=[200 * gains[x].se for x in xs], marker="o", capsize=3)
    b.axhline(0, color="k", lw=1)
    log_x(b)
    b.set_xlabel("Dirichlet alpha (larger: clients more alike)")
    b.set_ylabel("weighted gain (points, ± 2 SE)")
    b.set_title("where the memory stops paying", fontsize=9)
    b.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


@dataclass(frozen=True)
class _Curve:
    """Every skew's runs (one per seed), their weighted accuracies and the paired gains."""

    runs: dict[float, list[Users]]
    glob: dict[float, list[float]]
    mem: dict[float, list[float]]
    gains: dict[float, Gain]

    @classmethod
    def measure(cls, seeds: list[int]) -> _Curve:
        runs = {a: [personalize_users(a, s) for s in seeds] for a in ALPHAS}
        glob = {a: [u.weighted(u.global_acc) for u in runs[a]] for a in ALPHAS}
        mem = {a: [u.weighted(u.memory_acc) for u in runs[a]] for a in ALPHAS}
        return cls(runs, glob, mem, {a: paired_gain(mem[a], glob[a], seeds) for a in ALPHAS})

    @property
    def user_gains(self) -> list[float]:
        """Every user's gain at the federated scenario's skew, over all seeds."""
        return [g for u in self.runs[ALPHA] for g in u.gains]

    def rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {
            f"alpha{a:g}": {
                "global_accuracy": statistics.fmean(self.glob[a]),
                "memory_accuracy": statistics.fmean(self.mem[a]),
                **self.gains[a].row(),
            }
            for a in ALPHAS
        }
        g = self.user_gains
        rows[f"alpha{ALPHA:g}"] |= {
            "users": len(g),
            "improved_fraction": sum(x > 0 for x in g) / len(g),
            "hurt_fraction": sum(x <= -0.01 for x in g) / len(g),
            "median_memory_bytes": statistics.median(b for u in self.runs[ALPHA] for b in u.memory_bytes),
        }
        return rows


def _boundary(c: _Curve) -> tuple[str, str]:
    """The boundary paragraph and its few words for the terminal table."""
    stop = boundary(ALPHAS, [c.gains[a] for a in ALPHAS], side="high")
    curve = ", ".join(f"alpha {a:g}: {100 * c.gains[a].mean:+.1f} ± {100 * c.gains[a].se:.1f}" for a in ALPHAS)
    if stop is None:
        return f"Memory minus global model (points ± SE): {curve}. It still pays at the least skewed setting tried.", (
            "not within alpha <= 10"
        )
    worst = min(100 * c.gains[a].mean for a in ALPHAS[ALPHAS.index(stop) :])
    per_user = statistics.median(n for u in c.runs[ALPHA] for n in u.sizes)
    return (
        f"Memory minus global model (points ± SE): {curve}. From alpha = {stop:g} on, clients are alike enough that "
        "the global model already fits each one and the memory stops paying. The gate (a user keeps the global model "
        f"unless the memory does better on their validation part) sees about {per_user:.0f} examples per user, too "
        f"few to always tell: the worst mean gain past the boundary is {worst:+.1f} points.",
        f"at alpha >= {stop:g} (near-IID clients)",
    )


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """The memory's per-user gain at the federated scenario's skew, and at each skew of :data:`ALPHAS`; one section."""
    folder = Path(out) / "federated"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [seed + i for i in range(REPEATS)]
    c = _Curve.measure(seeds)
    if progress:
        for a in ALPHAS:
            print(f"  memory, alpha {a:g}: {100 * c.gains[a].mean:+.1f} points over the global model", flush=True)
    _plot(c.runs[ALPHA][0], c.gains, folder / "personalization.png")
    g = c.user_gains
    improved, hurt = sum(x > 0 for x in g), sum(x <= -0.01 for x in g)
    text, stops = _boundary(c)
    section = Section(
        paradigm="Federated personalization",
        question=f"On the same non-IID clients (alpha = {ALPHA:g}), does a memory of each user's own examples, kept on the "
        f"device, beat the global FedAvg model on that user's own test examples? ({REPEATS} seeds.)",
        baseline="global FedAvg model",
        baseline_value=statistics.fmean(c.glob[ALPHA]),
        result="global model + local memory (kNN-Per)",
        result_value=statistics.fmean(c.mem[ALPHA]),
        verdict=gain_verdict(c.gains[ALPHA], "the local memory")
        + f"; {improved} of {len(g)} users improved, {hurt} lost a point or more",
        why="A user who sees a few classes is better served by their own neighbours than by a model of everyone.",
        plot="federated/personalization.png",
        table=[
            {
                "alpha": a,
                "global": round(statistics.fmean(c.glob[a]), 3),
                "memory": round(statistics.fmean(c.mem[a]), 3),
            }
            for a in ALPHAS
        ],
        seeds=seeds,
        difference_se=c.gains[ALPHA].se,
        boundary=text,
        stops=stops,
    )
    return Scenario(c.rows(), [section])
