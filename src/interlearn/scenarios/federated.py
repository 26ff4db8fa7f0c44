"""Tour scenario: federated learning on non-IID clients, and what differential privacy costs.

The digits are split over 16 clients with a Dirichlet label skew (alpha = 0.3: most clients
see a few classes). FedAvg (McMahan et al. 2017) is compared with every client training alone
(what a client gets without collaborating) and with pooling all data centrally (the upper
bound, which moves the raw data); see :func:`interlearn.federated.tour.tour_rows`. Then
DP-FedAvg (McMahan et al. 2018: clipped client updates, Gaussian noise on their sum, Opacus'
RDP accountant for the subsampled Gaussian mechanism over all rounds, computed once at the end)
at three noise multipliers gives accuracy against (epsilon, delta = 1e-5), and the boundary:
the privacy level at which collaboration no longer beats training alone. Three seeds
(partition, initial weights, client sampling) for every number.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from interlearn.data import load_digits
from interlearn.federated.api import UpdateStep
from interlearn.federated.partition import dirichlet
from interlearn.federated.population import Population
from interlearn.federated.protections.privacy import ClipUpdates, GaussianNoise, PrivacyAccountant
from interlearn.federated.server.sampling import CohortSampling
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.federated.tour import ALPHA, CLIENTS_PER_ROUND, LOCAL, NUM_CLIENTS, ROUNDS, tour_rows
from interlearn.models.mlp import digits_mlp
from interlearn.plotting import log_x, pyplot, save_figure
from interlearn.report import Section
from interlearn.scenarios.base import Scenario
from interlearn.scenarios.stats import Gain, boundary, gain_verdict, paired_gain

__all__ = ["run", "NOISE_MULTIPLIERS", "CLIP_NORM", "REPEATS"]

NOISE_MULTIPLIERS = (0.5, 1.0, 2.0)
REPEATS = 3
CLIP_NORM = 1.0
DELTA = 1e-5


def _final(accuracy: float | None) -> float:
    if accuracy is None:  # eval_every=ROUNDS evaluates the last round
        raise RuntimeError("the run's last round was not evaluated")
    return accuracy


def _plot(
    history: list[dict[str, Any]],
    central: float,
    local: float,
    points: list[tuple[float, float]],
    nodp: float,
    path: Path,
) -> Path:
    plt = pyplot()

    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    pts = [(h["round"], h["test_accuracy"]) for h in history if "test_accuracy" in h]
    a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label="FedAvg")
    a.axhline(central, ls="--", color="C2", label="centralized (pooled data)")
    a.axhline(local, ls=":", color="C3", label="local only (mean client)")
    a.set_xlabel("round")
    a.set_ylabel("test accuracy")
    a.set_title("accuracy vs rounds (16 non-IID clients)")
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    b.plot([p[0] for p in points], [p[1] for p in points], marker="o", label="DP-FedAvg")
    b.axhline(nodp, ls="--", color="C1", label="FedAvg, no DP")
    b.axhline(local, ls=":", color="C3", label="local only")
    log_x(b)
    b.set_xlabel(f"epsilon (delta = {DELTA:g})")
    b.set_ylabel("test accuracy")
    b.set_title("privacy cost")
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


def _dp_accuracy(population: Population, test: tuple[torch.Tensor, torch.Tensor], z: float, seed: int) -> float:
    """DP-FedAvg (clipped client updates, Gaussian noise on their sum) at noise multiplier ``z``."""
    clip = ClipUpdates(CLIP_NORM)
    sampling = CohortSampling.build("poisson", NUM_CLIENTS, clients_per_round=CLIENTS_PER_ROUND)  # McMahan et al. 2018
    steps: list[UpdateStep] = [clip, GaussianNoise(clip, z, sampling=sampling)]  # epsilon is accounted once, below
    cfg = SimulationConfig(
        rounds=ROUNDS,
        clients_per_round=CLIENTS_PER_ROUND,
        seed=seed,
        eval_every=ROUNDS,
        client_eval=False,
        progress=False,
    )
    res = simulate(
        digits_mlp(seed=seed),
        population,
        LOCAL,
        get_strategy("fedavg"),
        cfg,
        engine="vectorized",
        steps=steps,
        test=test,
    )
    return _final(res.final_accuracy)


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """FedAvg vs local-only vs centralized, then DP-FedAvg at each noise multiplier, 3 seeds; one section."""
    folder = Path(out) / "federated"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [seed + i for i in range(REPEATS)]
    per_seed, dp = _runs(folder, seed, seeds, progress)
    q = CLIENTS_PER_ROUND / NUM_CLIENTS
    eps = {z: PrivacyAccountant(delta=DELTA).epsilon_after(noise_multiplier=z, sample_rate=q, steps=ROUNDS) for z in dp}
    acc = {k: [r[k]["accuracy"] for r in per_seed] for k in ("federated", "local_only", "centralized")}
    rows = _rows(per_seed, acc, dp, eps, seeds)
    gain = paired_gain(acc["federated"], acc["local_only"], seeds)
    dp_gains = [paired_gain(dp[z], acc["local_only"], seeds) for z in NOISE_MULTIPLIERS]
    rows["federated_vs_local"] = gain.row()
    rows["dp_vs_local"] = {f"z{z:g}": g.row() | {"epsilon": eps[z]} for z, g in zip(NOISE_MULTIPLIERS, dp_gains)}
    fed, central = (statistics.fmean(acc[k]) for k in ("federated", "centralized"))
    history = [json.loads(s) for s in (folder / "metrics.jsonl").read_text().splitlines() if s.strip()]
    points = [(eps[z], rows[f"dp_z{z:g}"]["accuracy"]) for z in NOISE_MULTIPLIERS]
    _plot(history, central, statistics.fmean(acc["local_only"]), points, fed, folder / "federated.png")
    return Scenario(rows, [_section(rows, eps, seeds, gain, _dp_boundary(eps, dp_gains))])


def _runs(
    folder: Path, seed: int, seeds: list[int], progress: bool
) -> tuple[list[dict[str, dict[str, Any]]], dict[float, list[float]]]:
    """Per seed, the tour's rows (FedAvg, local only, centralized) and DP-FedAvg's accuracy at each noise multiplier."""
    tr, te = load_digits(seed=seed)
    per_seed: list[dict[str, dict[str, Any]]] = []
    dp: dict[float, list[float]] = {z: [] for z in NOISE_MULTIPLIERS}
    for i, s in enumerate(seeds):
        t0 = time.perf_counter()
        # the first seed's run folder is the section's (metrics, partition heatmap); the others go beside it
        run_dir = folder if i == 0 else folder / f"seed{s}"
        per_seed.append(tour_rows((tr.x, tr.y), (te.x, te.y), run_dir, seed=s, progress=False))
        population = Population(tr.x, tr.y, dirichlet(tr.y, NUM_CLIENTS, alpha=ALPHA, seed=s, min_size=10))
        for z in NOISE_MULTIPLIERS:
            dp[z].append(_dp_accuracy(population, (te.x, te.y), z, s))
        if progress:
            r = per_seed[-1]
            dps = ", ".join(f"z={z:g}: {dp[z][-1]:.3f}" for z in NOISE_MULTIPLIERS)
            print(
                f"  seed {s}: FedAvg {r['federated']['accuracy']:.3f}, local only {r['local_only']['accuracy']:.3f}, "
                f"centralized {r['centralized']['accuracy']:.3f}; DP-FedAvg {dps} ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
    return per_seed, dp


def _rows(
    per_seed: list[dict[str, dict[str, Any]]],
    acc: dict[str, list[float]],
    dp: dict[float, list[float]],
    eps: dict[float, float],
    seeds: list[int],
) -> dict[str, dict[str, Any]]:
    """Summary rows: each setting's mean accuracy over the seeds (and the first seed's other metrics)."""
    rows: dict[str, dict[str, Any]] = {}
    for k in acc:
        rows[k] = {
            **{m: v for m, v in per_seed[0][k].items() if m != "accuracy"},
            "accuracy": statistics.fmean(acc[k]),
            "accuracy_per_seed": acc[k],
            "seeds": seeds,
        }
    for z in NOISE_MULTIPLIERS:
        rows[f"dp_z{z:g}"] = {
            "accuracy": statistics.fmean(dp[z]),
            "accuracy_per_seed": dp[z],
            "epsilon": eps[z],
            "noise_multiplier": z,
            "clip_norm": CLIP_NORM,
            "rounds": ROUNDS,
            "seeds": seeds,
        }
    return rows


def _dp_boundary(eps: dict[float, float], dp_gains: list[Gain]) -> tuple[str, str]:
    """Where differential privacy erases the gain over training alone: ``(boundary text, stops)``."""
    stop = boundary(NOISE_MULTIPLIERS, dp_gains, side="high")
    dp_line = ", ".join(
        f"epsilon {eps[z]:.1f}: {100 * g.mean:+.1f} ± {100 * g.se:.1f}" for z, g in zip(NOISE_MULTIPLIERS, dp_gains)
    )
    if stop is None:
        b = (
            f"Even at epsilon {eps[NOISE_MULTIPLIERS[-1]]:.1f} (user-level DP, delta = {DELTA:g}) DP-FedAvg beats training "
            f"alone. DP-FedAvg minus local only (points ± SE): {dp_line}."
        )
        return b, f"not down to epsilon {eps[NOISE_MULTIPLIERS[-1]]:.1f}"
    b = (
        f"With user-level differential privacy at epsilon {eps[stop]:.1f} or less (delta = {DELTA:g}) collaboration stops "
        f"paying: with {CLIENTS_PER_ROUND} clients per round, the noise that hides one client is as large as the averaged "
        f"update. DP-FedAvg minus local only (points ± SE): {dp_line}. User-level DP needs hundreds to thousands of "
        "clients per round (McMahan et al. 2018; BENCHMARKS.md, fl_privacy)."
    )
    return b, f"DP at epsilon <= {eps[stop]:.1f}"


def _section(
    rows: dict[str, dict[str, Any]], eps: dict[float, float], seeds: list[int], gain: Gain, edge: tuple[str, str]
) -> Section:
    """The report's section; ``edge`` is :func:`_dp_boundary`'s ``(boundary text, stops)``."""
    fed, local, central = (rows[k]["accuracy"] for k in ("federated", "local_only", "centralized"))
    return Section(
        paradigm="Federated learning",
        question=f"With the digits spread over {NUM_CLIENTS} clients that each see a few classes, how far above training "
        f"alone does FedAvg get, how close to pooling the data, and where does differential privacy erase the gain? ({REPEATS} seeds: "
        "partition, initial weights, sampling.)",
        baseline="local only (mean client)",
        baseline_value=local,
        result=f"FedAvg, {ROUNDS} rounds",
        result_value=fed,
        verdict=gain_verdict(gain, "federated training")
        + f"; {100 * (central - fed):.1f} points below pooling the data ({central:.1%})",
        why="Collaboration pays on skewed data: alone, a client sees a few classes and cannot recognise the others.",
        plot="federated/federated.png",
        table=[
            {"setting": "local only", "accuracy": round(local, 3), "epsilon": "—", "bytes sent": 0},
            {
                "setting": "FedAvg",
                "accuracy": round(fed, 3),
                "epsilon": "inf",
                "bytes sent": rows["federated"]["bytes_communicated"],
            },
            *[
                {
                    "setting": f"DP-FedAvg z={z:g}",
                    "accuracy": round(rows[f"dp_z{z:g}"]["accuracy"], 3),
                    "epsilon": round(eps[z], 1),
                    "bytes sent": rows["federated"]["bytes_communicated"],
                }
                for z in NOISE_MULTIPLIERS
            ],
            {
                "setting": "centralized",
                "accuracy": round(central, 3),
                "epsilon": "—",
                "bytes sent": rows["centralized"]["bytes_communicated"],
            },
        ],
        seeds=seeds,
        difference_se=gain.se,
        boundary=edge[0],
        stops=edge[1],
    )
