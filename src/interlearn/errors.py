"""The exception hierarchy: every error interlearn raises on bad input is an ``InterlearnError``.

Messages name the bad value and say how to fix it (see STYLE.md #14).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "InterlearnError",
    "ConfigError",
    "ShapeError",
    "DataError",
    "CheckpointError",
    "TrainingDivergedError",
    "UpdateRejected",
    "RoundSkipped",
    "closest",
    "unknown_name",
]


class InterlearnError(Exception):
    """Base class of every error interlearn raises on purpose."""


class ConfigError(InterlearnError, ValueError):
    """A configuration value (recipe field, function argument) is invalid."""


class ShapeError(InterlearnError, ValueError):
    """Tensor or module shapes do not fit together."""


class DataError(InterlearnError, ValueError):
    """Input data is malformed (wrong shapes, NaNs, labels out of range, missing files)."""


class CheckpointError(InterlearnError):
    """A checkpoint cannot be written, read, or does not match the run."""


class TrainingDivergedError(InterlearnError, FloatingPointError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


class UpdateRejected(InterlearnError):
    """A federated client update failed validation (keys, shapes, dtypes, non-finite, norm)."""


class RoundSkipped(InterlearnError):
    """A federated round could not be aggregated (too few survivors or valid updates)."""


def closest(name: str, candidates: Iterable[str], n: int = 5) -> str:
    """Return a human-readable hint listing the candidates closest to ``name``."""
    cands = list(candidates)
    near = difflib.get_close_matches(name, cands, n=n, cutoff=0.3)
    if not near:
        near = cands[:n]
    return ", ".join(repr(c) for c in near) + (" ..." if len(cands) > len(near) else "")


def unknown_name(kind: str, name: object, known: Iterable[str], plural: str | None = None) -> ConfigError:
    """The error for a name that is not one of ``known``: it lists the known names and the
    closest ones (``raise unknown_name("engine", name, ENGINES)``)."""
    names = sorted(known)
    return ConfigError(
        f"unknown {kind} {name!r}; known {plural or kind + 's'}: {names} (closest: {closest(str(name), names)})"
    )
