"""Matplotlib, imported when a plot is drawn.

Every plot in interlearn goes through :func:`pyplot`: ``matplotlib.pyplot`` costs about half a
second to import (more than the rest of interlearn), and most runs draw no plot, so it is
imported on the first plot rather than with the package. Plots are written to files, with the
non-interactive ``Agg`` backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["pyplot", "log_x", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the ``Agg`` backend (imported on the first call)."""
    import matplotlib  # deferred: see the module docstring

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_x(ax: Any) -> None:
    """A logarithmic x axis labelled with plain numbers (``100``, not ``10^2``)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter  # deferred with pyplot

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Lay ``fig`` out, write it to ``path`` (PNG; parent folders created) and close it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out
