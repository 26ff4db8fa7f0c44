"""A federated run in simulation: :func:`simulate`, a short loop over a
:class:`~interlearn.federated.server.loop.Server` (the round itself: sample -> run clients ->
client steps -> server steps -> aggregate -> evaluate) with callbacks around it (resume,
checkpoints, ``metrics.jsonl``, progress, plots, tracking:
:mod:`interlearn.federated.server.callbacks`). Copy :func:`simulate` to change the loop: the
Server's ``init``/``round`` are the whole federated run. The engine only decides how the
cohort's clients are scheduled; everything it may do differently is declared on the engine
protocol (:class:`~interlearn.federated.api.Engine`).

Determinism: the cohort, the dropouts and every client's local generator are derived from
``(seed, round, client)``, and the torch global RNG is re-seeded per round inside a fork, so a
run killed and resumed from a checkpoint ends bit-exactly where an uninterrupted run ends,
schedules included (a :class:`~interlearn.federated.schedule.Schedule` is a pure function of
the round).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientPopulation, ClientUpdate, Engine, Strategy, UpdateStep
from interlearn.federated.schedule import Schedule, at
from interlearn.federated.server.callbacks import Callback, OnRound, Plots, Progress, RunFolder, Tracking
from interlearn.federated.server.loop import RunState, Server
from interlearn.federated.server.sampling import SAMPLINGS, cohort_size
from interlearn.types import ClientId, Params

__all__ = ["SimulationConfig", "SimulationResult", "default_callbacks", "run_rounds", "simulate"]


@dataclass(frozen=True)
class SimulationConfig:
    """How a simulated federated run proceeds.

    Attributes:
        rounds: number of rounds (the last round index; resume continues up to it).
        clients_per_round: cohort size (give this or ``fraction``); a
            :class:`~interlearn.federated.schedule.Schedule` changes it with the round.
        fraction: cohort as a fraction of the population (McMahan's ``C``).
        dropout: probability that a sampled client fails to report (simulated straggler).
        min_survivors: a round with fewer reporting clients is skipped (logged, not fatal).
        eval_every: global test evaluation every N rounds (and always after the last round).
        client_eval_every: per-client accuracies every N rounds (0: only after the last round).
        client_eval_max: evaluate at most this many clients (a seeded sample) for the
            client-accuracy distribution.
        client_eval: ``False`` turns per-client evaluation off entirely.
        checkpoint_every: write a checkpoint every N rounds (0: never; needs a run folder).
        seed: the run's seed (sampling, dropouts, local batches).
        progress: print one line per round.
        time_budget_s: stop after the first round that ends this many seconds after the run
            (this invocation) started; ``None``: run every round. The result says it stopped.
        sampling: ``"fixed"`` (``clients_per_round`` without replacement), ``"poisson"`` (each
            client joins with probability ``clients_per_round / N`` or ``fraction``), or
            ``None``: what the update steps account for (central DP), else fixed.
    """

    rounds: int
    clients_per_round: int | Schedule | None = None
    fraction: float | None = None
    dropout: float = 0.0
    min_survivors: int = 1
    eval_every: int = 1
    client_eval_every: int = 0
    client_eval_max: int = 1000
    client_eval: bool = True
    checkpoint_every: int = 0
    seed: int = 0
    progress: bool = True
    time_budget_s: float | None = None
    sampling: str | None = None

    def cohort_at(self, round_: int) -> int | None:
        """``clients_per_round`` in round ``round_`` (a schedule is called; ``None`` with ``fraction``)."""
        if self.clients_per_round is None:
            return None
        return int(at(self.clients_per_round, round_))

    def check_cohorts(self, num_clients: int) -> int:
        """The largest cohort of the run (engines size their buffers by it).

        Raises:
            ConfigError: a cohort larger than the population, or ``min_survivors`` above some
                round's cohort (no such round could run).
        """
        sizes = {cohort_size(num_clients, self.fraction, self.cohort_at(r)) for r in self._cohort_rounds()}
        if self.min_survivors > min(sizes):
            raise ConfigError(
                f"min_survivors={self.min_survivors} exceeds the cohort size {min(sizes)}: no round could ever run"
            )
        return max(sizes)

    def _cohort_rounds(self) -> range:
        # a scheduled cohort size is checked in every round, a fixed one once
        return range(1, self.rounds + 1) if isinstance(self.clients_per_round, Schedule) else range(1, 2)

    def __post_init__(self) -> None:
        if self.sampling is not None and self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling={self.sampling!r}: choose one of {list(SAMPLINGS)} (or None)")
        if int(self.rounds) < 1:
            raise ConfigError(f"rounds={self.rounds}: must be >= 1")
        if (self.clients_per_round is None) == (self.fraction is None):
            raise ConfigError(
                f"give exactly one of clients_per_round or fraction (got clients_per_round={self.clients_per_round}, fraction={self.fraction})"
            )
        if self.fraction is not None and not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"fraction={self.fraction}: must be in (0, 1]")
        sizes = [(r, self.cohort_at(r)) for r in self._cohort_rounds()]
        bad = [r for r, size in sizes if size is not None and size < 1]
        if bad:
            raise ConfigError(f"clients_per_round={self.clients_per_round}: must be >= 1 (in round {bad[0]})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout}: must be in [0, 1)")
        if self.min_survivors < 1:
            raise ConfigError(f"min_survivors={self.min_survivors}: must be >= 1")
        for name, value in (
            ("eval_every", self.eval_every),
            ("client_eval_every", self.client_eval_every),
            ("checkpoint_every", self.checkpoint_every),
        ):
            if value < 0:
                raise ConfigError(f"{name}={value}: must be >= 0")
        if self.client_eval_max < 1:
            raise ConfigError(f"client_eval_max={self.client_eval_max}: must be >= 1")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ConfigError(f"time_budget_s={self.time_budget_s}: must be > 0 seconds or None (no budget)")


@dataclass
class SimulationResult:
    """What :func:`simulate` returns.

    Attributes:
        params: the final global params.
        history: one dict per round (also written to ``metrics.jsonl``).
        client_accuracy: the last per-client accuracies (client id -> accuracy).
        strategy_state: the final server state.
        bytes_down / bytes_up: totals over the run (this process's rounds and resumed ones).
        stopped: why the run ended early (an update step asked), or ``None``.
        run_dir: the run folder, when one was given.
        engine: the engine that ran the clients (``auto``'s choice included).
        client_states: each client's private state at the end (SCAFFOLD's control variates,
            FedPer's personal head).
    """

    params: Params
    history: list[dict[str, Any]]
    client_accuracy: dict[ClientId, float] = field(default_factory=dict)
    strategy_state: Params = field(default_factory=dict)
    bytes_down: int = 0
    bytes_up: int = 0
    stopped: str | None = None
    run_dir: Path | None = None
    engine: str = ""
    client_states: dict[ClientId, Params | None] = field(default_factory=dict)

    @classmethod
    def of(cls, state: RunState, run_dir: Path | None, engine: str) -> SimulationResult:
        """The result of a run that ended in ``state``."""
        down, up = state.totals["bytes_down"], state.totals["bytes_up"]
        s = state
        return cls(
            s.params, s.history, s.client_accuracy, s.state, down, up, s.stopped, run_dir, engine, s.client_states
        )

    @property
    def final_accuracy(self) -> float | None:
        """The last global test accuracy recorded, or ``None``."""
        for rec in reversed(self.history):
            if "test_accuracy" in rec:
                return float(rec["test_accuracy"])
        return None


def simulate(
    model: nn.Module,
    population: ClientPopulation,
    client_update: ClientUpdate,
    strategy: Strategy,
    config: SimulationConfig,
    *,
    engine: str | Engine = "auto",
    steps: Sequence[UpdateStep] = (),
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    initial_params: Params | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    tracking: Any = None,
    callbacks: Sequence[Callback] = (),
) -> SimulationResult:
    """Run federated training in simulation (see the module docstring).

    Args:
        model: the architecture; its weights are the initial global model (or ``initial_params``).
        population: the clients' data (any :class:`~interlearn.federated.api.ClientPopulation`).
        client_update: local training (e.g. :class:`~interlearn.federated.client.LocalSGD`).
        strategy: server aggregation (e.g. ``get_strategy("fedavg")``).
        config: rounds, cohort, dropouts, evaluation, checkpoints, seed, progress.
        engine: an engine or its name (``"auto"``: the fastest here, its choice logged); one
            built from a name is stopped at the end, one passed in is left running.
        steps: update steps in client order (their server hooks run in reverse).
        test: a global test set ``(x, y)``.
        run_dir: folder for ``metrics.jsonl``, ``checkpoint/`` and plots.
        resume: continue from ``run_dir``'s checkpoint (a fresh start when there is none).
        initial_params: global params to start from instead of the model's weights.
        on_round: called with each round's record after it is written.
        tracking: TensorBoard/MLflow tracking (:mod:`interlearn.tracking`).
        callbacks: more :class:`~interlearn.federated.server.callbacks.Callback` objects (after
            :func:`default_callbacks`).

    Returns:
        A :class:`SimulationResult`.

    Raises:
        ConfigError: checkpoints/resume without ``run_dir``, a cohort over the population, steps
            the engine cannot carry to its clients, plug-ins that do not declare their interface.
        CheckpointError: resuming from a checkpoint of another run.
        TrainingDivergedError: the global params became NaN/Inf (the last checkpoint is kept).
    """
    out = Path(run_dir) if run_dir is not None else None
    if out is None and (config.checkpoint_every or resume):
        raise ConfigError("checkpoint_every / resume need a run_dir to hold the checkpoint")
    server = Server(model, population, client_update, strategy, config, engine=engine, steps=steps, test=test)
    hooks = default_callbacks(config, out, resume, on_round, tracking) + list(callbacks)
    state = run_rounds(server, hooks, initial_params)
    return SimulationResult.of(state, out, server.described)


def run_rounds(server: Server, callbacks: Sequence[Callback], initial_params: Params | None = None) -> RunState:
    """The whole loop: ``init``, then ``round`` until done, with the callbacks around it; the
    engine is released at the end (copy this function to change the loop)."""
    state = server.init(initial_params)
    try:
        for cb in callbacks:
            state = cb.on_start(server, state)
        while not server.done(state):
            state, record = server.round(state)
            for cb in callbacks:
                cb.on_round(server, state, record)
    except BaseException:
        for cb in callbacks:
            cb.on_end(server, state, failed=True)
        raise
    finally:
        server.stop()
    for cb in callbacks:
        cb.on_end(server, state, failed=False)
    return state


def default_callbacks(
    config: SimulationConfig,
    out: Path | None,
    resume: bool,
    on_round: Callable[[dict[str, Any]], None] | None,
    tracking: Any,
) -> list[Callback]:
    """What :func:`simulate` hangs on the loop, in order: the run folder (resume, metrics,
    checkpoints), progress lines, ``on_round``, plots, tracking (last: it uploads the folder)."""
    hooks: list[Callback] = []
    if out is not None:
        hooks.append(RunFolder(out, resume, config.checkpoint_every))
    if config.progress:
        hooks.append(Progress())
    if on_round is not None:
        hooks.append(OnRound(on_round))
    if out is not None:
        hooks.append(Plots(out))
    hooks.append(Tracking(tracking, out))
    return hooks
