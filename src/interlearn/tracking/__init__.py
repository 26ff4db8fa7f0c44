"""Opt-in experiment tracking: TensorBoard event files and MLflow runs for ``fit`` and ``simulate``.

A tracked run gets the run's configuration as parameters at the start, one set of metrics per
epoch (``fit``) or round (``simulate``), and at the end the final checkpoint and the summary as
artifacts. Choose it in Python with ``tracking=`` (``{"tensorboard": DIR}``, ``{"mlflow": URI}``,
both, or a :class:`TrackingConfig`) or in a recipe with a ``tracking:`` mapping of the same keys.

The backends wrap the libraries' own writers (``torch.utils.tensorboard.SummaryWriter`` and the
hparams plugin; ``mlflow.MlflowClient``), imported only when used: neither library is needed
unless a run asks for it (``pip install 'interlearn[tracking]'``).

Several trainings can report into one run: :meth:`Tracker.scope` gives a view that prefixes
metric and parameter names (``scratch/train_loss``), and :func:`recording` makes every ``fit``
inside a ``with`` block report to such a view (how recipes track the fits their paradigms run).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from interlearn.errors import ConfigError
from interlearn.schema import build
from interlearn.tracking.mlflow_backend import MLflowBackend
from interlearn.tracking.tensorboard_backend import TensorBoardBackend

__all__ = [
    "TrackingConfig",
    "Tracker",
    "NULL",
    "Backend",
    "open_tracker",
    "recording",
    "section",
    "paused",
    "describe",
    "flatten",
    "BACKENDS",
    "TrackingSpec",
]

BACKENDS = ("tensorboard", "mlflow")


@dataclass(frozen=True)
class TrackingConfig:
    """Where a run is tracked.

    Attributes:
        tensorboard: a log directory; each run writes its event file into a sub-folder named
            after the run (``tensorboard --logdir DIR`` shows them side by side).
        mlflow: an MLflow tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``,
            ``file:/abs/path``, ``databricks``) or a local folder, which becomes a local file
            store (``mlruns``).
        experiment: the MLflow experiment name (created when missing).
        run_name: the run's name (default: the kind and the start time, e.g. ``fit-20250101-120000``).
    """

    tensorboard: str | None = None
    mlflow: str | None = None
    experiment: str = "interlearn"
    run_name: str | None = None

    def __post_init__(self) -> None:
        if self.tensorboard is None and self.mlflow is None:
            raise ConfigError(
                "tracking: give tensorboard: DIR and/or mlflow: URI (e.g. {tensorboard: runs/tb} or {mlflow: mlruns})"
            )
        for name in BACKENDS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(
                    f"tracking.{name}={value!r}: give a non-empty {'directory' if name == 'tensorboard' else 'tracking URI or folder'}"
                )
        if not self.experiment.strip():
            raise ConfigError("tracking.experiment: give a non-empty experiment name")


class Backend(Protocol):
    """What a tracking library's adapter implements (one run)."""

    name: str
    location: str

    def log_params(self, params: dict[str, str | int | float | bool]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_artifact(self, path: Path, name: str | None = None) -> None: ...

    def log_text(self, text: str, name: str) -> None: ...

    def finish(self, failed: bool = False) -> None: ...


def flatten(obj: Any, prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """Nested mappings (and dataclass dicts) as one level: ``{"a": {"b": 1}} -> {"a/b": 1}``."""
    out: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{sep}{k}" if prefix else str(k), sep))
    else:
        out[prefix] = obj
    return out


def _metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric scalars of a record (nested dicts flattened; strings, lists and None dropped)."""
    out = {}
    for k, v in flatten(row).items():
        if isinstance(v, bool):
            v = float(v)
        if isinstance(v, (int, float)) and not math.isinf(v):
            out[k] = float(v)
    return out


def _params(params: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for k, v in flatten(params, sep=".").items():
        out[k] = v if isinstance(v, (str, int, float, bool)) else str(v)
    return out


class Tracker:
    """One tracked run on one or more backends, or a named view into it (:meth:`scope`).

    Use it as a context manager: leaving the block finishes the run (marked failed when an
    exception escapes). A view (``owner=False``) never finishes the run it reports into.
    """

    def __init__(
        self, backends: list[Backend], prefix: str = "", owner: bool = True, counts: dict[str, int] | None = None
    ) -> None:
        self.backends, self.prefix, self.owner = backends, prefix, owner
        self._done = False
        self._counts = counts if counts is not None else {}  # shared by every view of one run

    @property
    def active(self) -> bool:
        """Whether anything is recorded (``False`` for the no-op tracker)."""
        return bool(self.backends)

    @property
    def locations(self) -> dict[str, str]:
        """Backend name -> where the run is (the TensorBoard run folder, the MLflow run id)."""
        return {b.name: b.location for b in self.backends}

    def scope(self, name: str) -> Tracker:
        """A view whose metric and parameter names start with ``name/``."""
        return Tracker(
            self.backends, f"{self.prefix}{name}/" if name else self.prefix, owner=False, counts=self._counts
        )

    def child(self, kind: str) -> Tracker:
        """A view for the next training of ``kind`` in this scope: the first keeps the scope's
        names, later ones get ``kind2/``, ``kind3/`` ... so repeated trainings do not collide."""
        key = f"{self.prefix}{kind}"
        n = self._counts[key] = self._counts.get(key, 0) + 1
        return self.scope(f"{kind}{n}" if n > 1 else "")

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log a (nested) configuration as parameters (``fit.lr``, ``config.rounds`` ...)."""
        flat = {f"{self.prefix.replace('/', '.')}{k}": v for k, v in _params(params).items()}
        for b in self.backends:
            b.log_params(flat)

    def log_metrics(self, row: Mapping[str, Any], step: int) -> None:
        """Log a record's numeric values at ``step`` (nested dicts as ``a/b``; text is skipped)."""
        flat = {f"{self.prefix}{k}": v for k, v in _metrics(row).items()}
        for b in self.backends:
            b.log_metrics(flat, step)

    def log_artifact(self, path: str | Path, name: str | None = None) -> None:
        """Attach a file or a folder (e.g. a checkpoint) to the run."""
        p = Path(path)
        if not p.exists():
            return
        for b in self.backends:
            b.log_artifact(p, f"{self.prefix}{name or p.name}")

    def log_text(self, text: str, name: str) -> None:
        """Attach ``text`` as a file named ``name`` (e.g. ``summary.md``)."""
        for b in self.backends:
            b.log_text(text, f"{self.prefix}{name}")

    def close(self, folder: str | Path | None = None) -> None:
        """End a run that produced ``folder``: its files (checkpoint, metrics, plots) become
        artifacts, then the run finishes. A view does neither (its owner attaches its own
        folder), so a training inside a recipe is not attached twice."""
        if not self.owner:
            return
        if folder is not None and Path(folder).is_dir():
            for f in sorted(Path(folder).iterdir()):
                self.log_artifact(f)
        self.finish()

    def finish(self, failed: bool = False) -> None:
        """End the run (only the owner does; views return at once)."""
        if not self.owner or self._done:
            return
        self._done = True
        for b in self.backends:
            b.finish(failed)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.finish(failed=exc_type is not None)


NULL = Tracker([], owner=False)
TrackingSpec = TrackingConfig | Mapping[str, Any] | Tracker | None
"""What ``tracking=`` accepts."""
_current: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar("interlearn_tracker", default=None)


@contextlib.contextmanager
def recording(tracker: Tracker, name: str = "") -> Iterator[Tracker]:
    """Make every ``fit``/``simulate`` without its own ``tracking=`` report to ``tracker`` (under
    ``name/``) inside the block; the first training keeps the names, later ones are numbered."""
    view = tracker.scope(name)
    token = _current.set(view)
    try:
        yield view
    finally:
        _current.reset(token)


@contextlib.contextmanager
def section(name: str) -> Iterator[None]:
    """Inside a :func:`recording` block, report the enclosed trainings under ``name/``; a no-op
    when nothing is recorded (how recipes name their parts: ``scratch``, ``transfer`` ...)."""
    current = _current.get()
    if current is None:
        yield
        return
    with recording(current, name):
        yield


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Inner trainings inside the block are not tracked (e.g. cross-validation folds)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


def describe(obj: Any) -> Any:
    """A component as parameters: a dataclass's fields (with its type), else its type's name."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"type": type(obj).__name__, **{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}
    return type(obj).__name__


def _config(spec: Any) -> TrackingConfig:
    if isinstance(spec, TrackingConfig):
        return spec
    if isinstance(spec, Mapping):
        return build(TrackingConfig, dict(spec), "tracking")
    if isinstance(spec, str) and spec in BACKENDS:
        raise ConfigError(
            f"tracking={spec!r}: give where to write, e.g. {{'{spec}': {'runs/tb' if spec == 'tensorboard' else 'mlruns'!r}}}"
        )
    raise ConfigError(
        f"tracking={spec!r}: expected {{'tensorboard': DIR}}, {{'mlflow': URI}}, a TrackingConfig or a Tracker"
    )


def open_tracker(spec: Any, kind: str, params: Mapping[str, Any] | None = None) -> Tracker:
    """The tracker a training of ``kind`` (``"fit"``, ``"simulate"``) reports to.

    Args:
        spec: ``None`` (the block's :func:`recording` tracker if any, else nothing), a mapping
            or :class:`TrackingConfig` (a new run, finished when the training ends), or an open
            :class:`Tracker` (a view of it; the caller finishes it).
        kind: names the run (and numbers repeated trainings in one scope).
        params: the training's configuration, logged as parameters.

    Returns:
        A :class:`Tracker` (use it as a context manager).

    Raises:
        ConfigError: an invalid spec, or a backend whose library is not installed.
    """
    if spec is None:
        current = _current.get()
        tracker = current.child(kind) if current is not None else NULL
    elif isinstance(spec, Tracker):
        tracker = spec.child(kind) if spec.active else NULL
    else:
        cfg = _config(spec)
        name = cfg.run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
        backends: list[Backend] = []
        if cfg.tensorboard is not None:
            backends.append(TensorBoardBackend(cfg.tensorboard, name))
        if cfg.mlflow is not None:
            backends.append(MLflowBackend(cfg.mlflow, cfg.experiment, name))
        tracker = Tracker(backends)
    if params and tracker.active:
        tracker.log_params(params)
    return tracker
