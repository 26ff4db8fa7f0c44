"""TensorBoard backend: one event-file folder per run, written with PyTorch's ``SummaryWriter``.

Metrics are scalars (``add_scalar``); the configuration goes to the hparams plugin (the
HPARAMS tab) and, readable as a table, to the TEXT tab; artifacts are copied into the run
folder's ``artifacts/`` (TensorBoard itself has no artifact store).
"""

from __future__ import annotations

import atexit
import shutil
from pathlib import Path

from interlearn.errors import ConfigError

__all__ = ["TensorBoardBackend"]


class TensorBoardBackend:
    """Write one run into ``log_dir/run_name``.

    Raises:
        ConfigError: the ``tensorboard`` package is not installed.
    """

    name = "tensorboard"

    def __init__(self, log_dir: str, run_name: str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch's writer needs the tensorboard package
            raise ConfigError(
                f"tracking: {{tensorboard: {log_dir}}} needs the tensorboard package: pip install 'interlearn[tracking]'"
            ) from exc
        self.folder = Path(log_dir) / run_name
        self.location = str(self.folder)
        self.writer = SummaryWriter(log_dir=str(self.folder))
        self._open = True
        atexit.register(self._abandon)

    def log_params(self, params: dict[str, str | int | float | bool]) -> None:
        from torch.utils.tensorboard.summary import hparams

        exp, start, end = hparams(dict(params), {})
        writer = self.writer.file_writer
        if writer is not None:  # None only after close()
            for summary in (exp, start, end):
                writer.add_summary(summary)
        table = "| parameter | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in params.items())
        self.writer.add_text("params", table)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, global_step=step)

    def log_artifact(self, path: Path, name: str | None = None) -> None:
        dest = self.folder / "artifacts" / (name or path.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(path, dest)

    def log_text(self, text: str, name: str) -> None:
        dest = self.folder / "artifacts" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
        self.writer.add_text(name, text)

    def finish(self, failed: bool = False) -> None:
        if not self._open:
            return
        if failed:
            self.writer.add_text("status", "FAILED")
        self.writer.close()
        self._open = False
        atexit.unregister(self._abandon)

    def _abandon(self) -> None:  # the process ends with the run still open (an exception escaped)
        self.finish(failed=True)
