"""Wall time of a resumable benchmark run spread over several invocations.

A long federated run writes a checkpoint every few rounds into its run folder and continues from
it when the same command is run again; ``sessions.json`` in that folder logs each invocation's
seconds and rounds, so the reported time is the sum over invocations, never one invocation's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def rounds_done(run_dir: Path) -> int:
    """Rounds already recorded in ``run_dir/metrics.jsonl`` (0 for a fresh run)."""
    metrics = run_dir / "metrics.jsonl"
    return sum(1 for line in metrics.read_text().splitlines() if line.strip()) if metrics.exists() else 0


def sessions(run_dir: Path) -> list[dict]:
    """The invocations logged so far (empty for a fresh run)."""
    path = run_dir / "sessions.json"
    return json.loads(path.read_text()) if path.exists() else []


def log_session(run_dir: Path, seconds: float, rounds_before: int, rounds_after: int) -> list[dict]:
    """Append this invocation's wall time to ``sessions.json`` and return every invocation's."""
    logged = sessions(run_dir)
    logged.append(
        {"seconds": seconds, "rounds_before": rounds_before, "rounds_after": rounds_after, "finished": time.time()}
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "sessions.json").write_text(json.dumps(logged, indent=1))
    return logged
