"""What hangs on the round loop: resume, checkpoints, ``metrics.jsonl``, progress lines,
tracking and plots, each a :class:`Callback` of :func:`~interlearn.federated.server.simulation.simulate`.

A callback sees the :class:`~interlearn.federated.server.loop.Server` and its
:class:`~interlearn.federated.server.loop.RunState` at three moments: ``on_start`` (it may
return another state: resuming from a checkpoint does), ``on_round`` (after each round, with
its record) and ``on_end`` (``failed=True`` when the run raised). Subclass :class:`Callback`
and override what you need; pass yours as ``simulate(..., callbacks=[...])``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch

from interlearn.checkpoint import has_checkpoint, load_checkpoint, rng_state, save_checkpoint
from interlearn.errors import CheckpointError
from interlearn.federated.client.hooks import step_states
from interlearn.federated.plots import plot_client_accuracy, plot_history
from interlearn.federated.server.loop import RunState, Server
from interlearn.tracking import Tracker, describe, open_tracker
from interlearn.types import ClientId, Params

__all__ = ["Callback", "RunFolder", "Progress", "OnRound", "Tracking", "Plots", "METRICS", "CHECKPOINT"]

METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint"


class Callback(Protocol):
    """Hooks around the rounds; every one defaults to doing nothing."""

    def on_start(self, server: Server, state: RunState) -> RunState:
        """Before the first round of this invocation; returns the state to run from."""
        return state

    def on_round(self, server: Server, state: RunState, record: dict[str, Any]) -> None:
        """After each round, with its record (already in ``state.history``)."""
        return None

    def on_end(self, server: Server, state: RunState, failed: bool) -> None:
        """After the last round, or when the run raised (``failed``)."""
        return None


class RunFolder(Callback):
    """The run folder: ``metrics.jsonl`` (one line per round), the checkpoint every
    ``checkpoint_every`` rounds and after the last one, and resuming from it.

    A resumed run keeps the records up to the checkpoint; later ones are redone.
    """

    def __init__(self, out: Path, resume: bool = False, checkpoint_every: int = 0) -> None:
        self.out, self.resume, self.every = out, resume, checkpoint_every

    def on_start(self, server: Server, state: RunState) -> RunState:
        self.out.mkdir(parents=True, exist_ok=True)
        metrics = self.out / METRICS
        if self.resume and has_checkpoint(self.out / CHECKPOINT):
            state = load_run(self.out / CHECKPOINT, server, next(iter(state.params.values())).device)
            if metrics.exists():
                kept = [json.loads(s) for s in metrics.read_text().splitlines() if s.strip()]
                state.history = [h for h in kept if h.get("round", 0) <= state.round]
            if server.config.progress:
                print(f"resuming after round {state.round} from {self.out / CHECKPOINT}", flush=True)
        metrics.write_text("".join(json.dumps(h) + "\n" for h in state.history))
        return state

    def on_round(self, server: Server, state: RunState, record: dict[str, Any]) -> None:
        with (self.out / METRICS).open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.every and (record["round"] % self.every == 0 or server.done(state)):
            save_run(self.out / CHECKPOINT, server, state)


def save_run(path: Path, server: Server, state: RunState) -> None:
    """Write the run state, the steps' states and the RNG state as one checkpoint."""
    tensors: dict[str, torch.Tensor] = {f"params/{k}": v for k, v in state.params.items()}
    tensors.update({f"strategy/{k}": v for k, v in state.state.items()})
    for cid, st in state.client_states.items():
        for k, v in (st or {}).items():
            tensors[f"client/{cid}/{k}"] = v
    for cid, mem in state.memory.items():  # the steps' per-client memory (e.g. compression residuals)
        for k, v in mem.items():
            tensors[f"memory/{cid}/{k}"] = v
    tensors.update(rng_state())
    meta = {
        "round": state.round,
        "seed": server.config.seed,
        "population": len(server.population),
        "totals": state.totals,
        "steps": step_states(server.steps),
        "config": asdict(server.config),
    }
    save_checkpoint(path, tensors, meta)


def load_run(path: Path, server: Server, device: torch.device) -> RunState:
    """The run state a checkpoint holds (the steps' states are loaded into ``server.steps``).

    Raises:
        CheckpointError: the checkpoint is of another seed or population.
    """
    tensors, meta = load_checkpoint(path)
    seed, n = server.config.seed, len(server.population)
    if meta.get("seed") != seed or meta.get("population") != n:
        raise CheckpointError(
            f"checkpoint in {path} is for seed={meta.get('seed')}, population={meta.get('population')}; "
            f"this run has seed={seed}, population={n}: use the same run or start without resume"
        )
    state = RunState(params={}, state={}, round=int(meta["round"]), totals=dict(meta.get("totals", {})))
    clients: dict[ClientId, Params] = {}
    for name, t in tensors.items():
        head, _, rest = name.partition("/")
        t = t.to(device)
        if head == "params":
            state.params[rest] = t
        elif head == "strategy":
            state.state[rest] = t
        elif head in ("client", "memory"):
            cid, _, key = rest.partition("/")
            (clients if head == "client" else state.memory).setdefault(int(cid), {})[key] = t
    state.client_states = dict(clients)
    for step, st in zip(server.steps, meta.get("steps", [])):
        if st is not None:
            step.load_state_dict(st)
    return state


class Progress(Callback):
    """One line for the engine, then one line per round."""

    def on_start(self, server: Server, state: RunState) -> RunState:
        print(f"engine: {server.engine.describe()}", flush=True)
        return state

    def on_round(self, server: Server, state: RunState, record: dict[str, Any]) -> None:
        print(progress_line(record, server.config.rounds), flush=True)


class OnRound(Callback):
    """Call ``fn(record)`` after each round (``simulate(on_round=...)``)."""

    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.fn = fn

    def on_round(self, server: Server, state: RunState, record: dict[str, Any]) -> None:
        self.fn(record)


class Tracking(Callback):
    """TensorBoard/MLflow (:mod:`interlearn.tracking`): the config as params, each record as
    metrics, the run folder as artifacts at the end."""

    def __init__(self, tracking: Any, out: Path | None) -> None:
        self.tracking, self.out = tracking, out
        self.tracker: Tracker | None = None

    def on_start(self, server: Server, state: RunState) -> RunState:
        params = {
            "config": asdict(server.config),
            "strategy": describe(server.strategy),
            "client_update": describe(server.client_update),
            "engine": server.engine.describe(),
            "clients": len(server.population),
            "steps": [describe(s) for s in server.steps],
        }
        self.tracker = open_tracker(self.tracking, "simulate", params)
        return state

    def on_round(self, server: Server, state: RunState, record: dict[str, Any]) -> None:
        if self.tracker is not None:
            self.tracker.log_metrics(record, step=record["round"])

    def on_end(self, server: Server, state: RunState, failed: bool) -> None:
        if self.tracker is None:
            return
        if failed:
            self.tracker.finish(failed=True)
        else:
            self.tracker.close(self.out)


class Plots(Callback):
    """``accuracy.png`` and ``client_accuracy.png`` in the run folder at the end."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_end(self, server: Server, state: RunState, failed: bool) -> None:
        if failed or not state.history:
            return
        plot_history(state.history, self.out / "accuracy.png")
        if state.client_accuracy:
            plot_client_accuracy(list(state.client_accuracy.values()), self.out / "client_accuracy.png")


def progress_line(rec: dict[str, Any], rounds: int) -> str:
    """``round 3/20  clients 10/10  loss 0.4321  test acc 0.9100  0.12s``."""
    parts = [f"round {rec['round']}/{rounds}"]
    if "skipped" in rec:
        parts.append(f"SKIPPED ({rec['skipped']})")
    else:
        parts.append(f"clients {rec.get('reported', 0)}/{rec['cohort']}")
        if not math.isnan(rec.get("train_loss", math.nan)):
            parts.append(f"loss {rec['train_loss']:.4f}")
    if "test_accuracy" in rec:
        parts.append(f"test acc {rec['test_accuracy']:.4f}")
    parts.append(f"{rec['round_seconds']:.2f}s")
    return "  ".join(parts)
