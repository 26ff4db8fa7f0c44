"""Plots of a federated run (matplotlib, Agg backend, PNG): accuracy vs round, the
distribution of client accuracies, and the labels-per-client heatmap of a partition."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from interlearn.plotting import pyplot, save_figure

__all__ = ["plot_history", "plot_client_accuracy", "plot_partition", "plot_personal_gains"]


def plot_history(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Test accuracy (and mean client training loss) vs round."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    pts = [(h["round"], h["test_accuracy"]) for h in history if "test_accuracy" in h]
    if pts:
        ax.plot(*zip(*pts), marker=".", label="test accuracy")
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    loss = [
        (h["round"], h["train_loss"])
        for h in history
        if isinstance(h.get("train_loss"), float) and h["train_loss"] == h["train_loss"]
    ]
    if loss:
        ax2 = ax.twinx()
        ax2.plot(*zip(*loss), color="tab:orange", alpha=0.6, label="client train loss")
        ax2.set_ylabel("train loss")
    ax.set_title("federated training")
    return save_figure(fig, path, dpi=100)


def plot_client_accuracy(accuracies: Sequence[float], path: str | Path) -> Path:
    """Histogram of per-client accuracies of the global model."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(list(accuracies), bins=20, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
    ax.set_xlabel("client accuracy")
    ax.set_ylabel("clients")
    ax.set_title(f"client accuracy distribution ({len(accuracies)} clients)")
    return save_figure(fig, path, dpi=100)


def plot_partition(counts: torch.Tensor, path: str | Path, max_clients: int = 100) -> Path:
    """Heatmap of examples per (client, class); ``counts`` is (clients, classes) as returned in
    ``partition_stats(...)["counts"]``. At most ``max_clients`` rows are drawn."""
    plt = pyplot()
    c = counts[:max_clients].float()
    fig, ax = plt.subplots(figsize=(6, max(3.0, min(12.0, 0.12 * c.shape[0] + 1))))
    im = ax.imshow(c.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("class")
    ax.set_ylabel("client")
    ax.set_title(
        f"labels per client ({counts.shape[0]} clients"
        + (f", first {max_clients})" if counts.shape[0] > max_clients else ")")
    )
    fig.colorbar(im, ax=ax, label="examples")
    return save_figure(fig, path, dpi=100)


def plot_personal_gains(gains: dict[str, Sequence[float]], path: str | Path, title: str = "Personalization") -> Path:
    """Per-user gain over the global model, one histogram per method (gains as fractions, drawn
    in points); the bars left of zero are users the method made worse. PNG.

    Args:
        gains: ``{method: [personalized accuracy - global accuracy per user]}``.
        path: output file.
        title: the figure's title.
    """
    plt = pyplot()
    pts = {m: [100 * x for x in g] for m, g in gains.items()}
    lo = min([min(v) for v in pts.values() if v] + [-1.0])
    hi = max([max(v) for v in pts.values() if v] + [1.0])
    width = max((hi - lo) / 30, 0.5)
    bins = [lo + i * width for i in range(int((hi - lo) / width) + 2)]
    fig, axes = plt.subplots(1, len(pts), figsize=(3.2 * len(pts), 3), sharey=True, squeeze=False)
    for ax, (m, v) in zip(axes[0], pts.items()):
        better, worse = sum(x > 0 for x in v), sum(x <= -1 for x in v)
        ax.hist(v, bins=bins, color="tab:blue", alpha=0.8)
        ax.axvline(0, color="k", lw=1)
        mean = sum(v) / len(v) if v else 0.0
        ax.set_title(f"{m}\nmean {mean:+.2f}, {better} up, {worse} down >= 1", fontsize=8)
        ax.set_xlabel("gain (points)")
    axes[0][0].set_ylabel("users")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
