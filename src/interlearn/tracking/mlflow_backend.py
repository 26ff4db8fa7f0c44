"""MLflow backend: one MLflow run through ``MlflowClient``, on any tracking URI.

A plain folder (``mlruns``) becomes a local file store. MLflow 3 keeps that store in
maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set; a local folder is
what "track locally" means here, so that variable is set (when unset) for such a URI only.
Pass ``sqlite:///mlflow.db`` (needs the full ``mlflow`` package) or a server URL for the others.
"""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path

from interlearn.errors import ConfigError

__all__ = ["MLflowBackend", "tracking_uri"]

_SCHEMES = ("file:", "sqlite:", "postgresql", "mysql", "mssql", "http:", "https:", "databricks", "uc:")
_BATCH = 100  # MLflow's log_batch limit for parameters


def tracking_uri(value: str) -> str:
    """A tracking URI as given, or a local folder as an absolute ``file:`` URI."""
    if value.startswith(_SCHEMES):
        return value
    if "://" in value:
        raise ConfigError(
            f"tracking.mlflow={value!r}: unknown URI scheme; use a folder, file:, sqlite:///, http(s):// or databricks"
        )
    return Path(value).expanduser().resolve().as_uri()


class MLflowBackend:
    """Write one run into the experiment ``experiment`` at ``uri``.

    Raises:
        ConfigError: MLflow is not installed, or the tracking store cannot be reached.
    """

    name = "mlflow"

    def __init__(self, uri: str, experiment: str, run_name: str) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise ConfigError(
                f"tracking: {{mlflow: {uri}}} needs MLflow: pip install 'interlearn[tracking]' (or mlflow)"
            ) from exc
        self.uri = tracking_uri(uri)
        if self.uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            exp = self.client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)
            self.run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
        except Exception as exc:  # MlflowException, connection errors: say which store failed
            raise ConfigError(
                f"tracking.mlflow={uri!r}: MLflow could not open a run there ({type(exc).__name__}: {exc})"
            ) from exc
        self.location = self.run_id
        self._open = True
        atexit.register(self._abandon)

    def log_params(self, params: dict[str, str | int | float | bool]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_artifact(self, path: Path, name: str | None = None) -> None:
        parent, _, leaf = (name or path.name).rpartition("/")
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path="/".join(p for p in (parent, leaf) if p))
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path=parent or None)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    def finish(self, failed: bool = False) -> None:
        if not self._open:
            return
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
        self._open = False
        atexit.unregister(self._abandon)

    def _abandon(self) -> None:  # the process ends with the run still open (an exception escaped)
        self.finish(failed=True)
