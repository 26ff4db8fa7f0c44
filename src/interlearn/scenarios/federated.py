"""Tour scenario: federated learning on non-IID clients, and what differential privacy costs.

The digits are split over 16 clients with a Dirichlet label skew (alpha = 0.3: most clients
see a few classes). FedAvg (McMahan et al. 2017) is compared with every client training alone
(what a client gets without collaborating) and with pooling all data centrally (the upper
bound, which moves the raw data); see :func:`interlearn.federated.tour.tour_rows`. Then
DP-FedAvg (McMahan et al. 2018: clipped client updates, Gaussian noise on their sum, Opacus'
RDP accountant for the subsampled Gaussian mechanism over all rounds, computed once at the end)
at three noise multipliers gives accuracy against (epsilon, delta = 1e-5).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from interlearn.data import load_digits
from interlearn.federated.api import UpdateStep
from interlearn.federated.partition import dirichlet
from interlearn.federated.population import Population
from interlearn.federated.privacy import ClipUpdates, GaussianNoise, PrivacyAccountant
from interlearn.federated.sampling import CohortSampling
from interlearn.federated.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.federated.tour import ALPHA, CLIENTS_PER_ROUND, LOCAL, NUM_CLIENTS, ROUNDS, tour_rows
from interlearn.models.mlp import digits_mlp
from interlearn.plotting import log_x, pyplot, save_figure
from interlearn.report import Section, verdict
from interlearn.scenarios.base import Scenario

__all__ = ["run", "NOISE_MULTIPLIERS", "CLIP_NORM"]

NOISE_MULTIPLIERS = (0.3, 0.6, 1.2)
CLIP_NORM = 1.0
DELTA = 1e-5
THRESHOLD = 0.01


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


def run(out: Path, seed: int = 0, progress: bool = False) -> Scenario:
    """FedAvg vs local-only vs centralized, then DP-FedAvg at each noise multiplier; one section."""
    folder = Path(out) / "federated"
    folder.mkdir(parents=True, exist_ok=True)
    tr, te = load_digits(seed=seed)
    rows = tour_rows((tr.x, tr.y), (te.x, te.y), folder, seed=seed, progress=False)

    history = [json.loads(s) for s in (folder / "metrics.jsonl").read_text().splitlines() if s.strip()]
    population = Population(tr.x, tr.y, dirichlet(tr.y, NUM_CLIENTS, alpha=ALPHA, seed=seed, min_size=10))
    points: list[tuple[float, float]] = []
    for z in NOISE_MULTIPLIERS:
        t0 = time.perf_counter()
        q = CLIENTS_PER_ROUND / NUM_CLIENTS
        clip = ClipUpdates(CLIP_NORM)
        sampling = CohortSampling.build(
            "poisson", NUM_CLIENTS, clients_per_round=CLIENTS_PER_ROUND
        )  # McMahan et al. 2018's mechanism
        steps: list[UpdateStep] = [
            clip,
            GaussianNoise(clip, z, sampling=sampling),
        ]  # DP-FedAvg; epsilon is accounted once below, not every round
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
            test=(te.x, te.y),
        )
        eps = PrivacyAccountant(delta=DELTA).epsilon_after(noise_multiplier=z, sample_rate=q, steps=ROUNDS)
        rows[f"dp_z{z:g}"] = {
            "accuracy": res.final_accuracy,
            "epsilon": eps,
            "noise_multiplier": z,
            "clip_norm": CLIP_NORM,
            "train_seconds": time.perf_counter() - t0,
            "rounds": ROUNDS,
        }
        points.append((eps, _final(res.final_accuracy)))
        if progress:
            print(f"  DP-FedAvg z={z:g}: epsilon {eps:.1f}, accuracy {res.final_accuracy:.3f}", flush=True)
    fed, local, central = rows["federated"]["accuracy"], rows["local_only"]["accuracy"], rows["centralized"]["accuracy"]
    _plot(history, central, local, points, fed, folder / "federated.png")
    best_dp = max(points, key=lambda p: p[1])
    tight = min(points, key=lambda p: p[0])
    why = (
        f"Collaboration pays on skewed data: alone, a client sees few classes. Privacy does not come free at this scale: with "
        f"{CLIENTS_PER_ROUND} clients per round the noise that hides one client is as large as the averaged update, so DP-FedAvg "
        f"scores {best_dp[1]:.1%} at epsilon {best_dp[0]:.0f} and {tight[1]:.1%} at epsilon {tight[0]:.1f} (no DP: {fed:.1%}). "
        "User-level DP needs hundreds to thousands of clients per round (McMahan et al. 2018; BENCHMARKS.md, fl_privacy)."
    )
    section = Section(
        paradigm="Federated learning",
        question=f"With the digits spread over {NUM_CLIENTS} clients that each see a few classes, how close does FedAvg get to pooling the "
        "data, how far above training alone, and what does differential privacy cost?",
        baseline="local only (mean client)",
        baseline_value=local,
        result=f"FedAvg, {ROUNDS} rounds",
        result_value=fed,
        verdict=verdict(fed - local, THRESHOLD, what="federated training")
        + f"; {100 * (central - fed):.1f} points below pooling the data ({central:.1%})",
        why=why,
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
                    "setting": f"DP-FedAvg z={rows[f'dp_z{z:g}']['noise_multiplier']:g}",
                    "accuracy": round(rows[f"dp_z{z:g}"]["accuracy"], 3),
                    "epsilon": round(rows[f"dp_z{z:g}"]["epsilon"], 1),
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
    )
    return Scenario(rows, [section])
