"""The round loop: sample -> run clients -> client steps -> server steps -> aggregate ->
evaluate -> checkpoint (McMahan et al. 2017, Algorithm 1, with the composition of Reddi et al.
2021 and the system view of Bonawitz et al. 2019). Read :func:`simulate` top to bottom, then
one function per phase (:func:`_round`, :func:`_run_clients`, :func:`_aggregate`,
:func:`_evaluate`, :func:`_record`): that is the whole federated run. The engine only decides
how the cohort's clients are scheduled; everything it may do differently is declared on the
engine protocol (:class:`~interlearn.federated.api.Engine`).

Determinism: the cohort, the dropouts and every client's local generator are derived from
``(seed, round, client)``, and the torch global RNG is re-seeded per round inside a fork, so a
run killed and resumed from a checkpoint ends bit-exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.checkpoint import has_checkpoint, load_checkpoint, rng_state, save_checkpoint
from interlearn.errors import CheckpointError, ConfigError, RoundSkipped, TrainingDivergedError
from interlearn.federated.api import (
    ClientPopulation,
    ClientResult,
    ClientUpdate,
    CohortTask,
    Engine,
    EngineSetup,
    RoundContext,
    Strategy,
    UpdateStep,
)
from interlearn.federated.client.hooks import (
    ClientRound,
    apply_client_steps,
    check_remote_steps,
    client_context,
    merge_client_context,
    step_states,
)
from interlearn.federated.engines import get_engine
from interlearn.federated.params import clone_params, model_params
from interlearn.federated.plots import plot_client_accuracy, plot_history
from interlearn.federated.server.comm import download_bytes, upload_bytes
from interlearn.federated.server.evaluate import evaluate_params, summarize_accuracies
from interlearn.federated.server.sampling import (
    SAMPLINGS,
    CohortSampling,
    apply_dropout,
    check_survivors,
    client_generator,
    cohort_size,
    mix_seed,
    releases_every_round,
    resolve_sampling,
    round_generator,
)
from interlearn.federated.strategies.base import server_extras
from interlearn.tracking import Tracker, describe, open_tracker
from interlearn.types import ClientId, Params

__all__ = ["SimulationConfig", "SimulationResult", "simulate"]

log = logging.getLogger(__name__)

METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class SimulationConfig:
    """How a simulated federated run proceeds.

    Attributes:
        rounds: number of rounds (the last round index; resume continues up to it).
        clients_per_round: cohort size (give this or ``fraction``).
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
    clients_per_round: int | None = None
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
        if self.clients_per_round is not None and self.clients_per_round < 1:
            raise ConfigError(f"clients_per_round={self.clients_per_round}: must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout}: must be in [0, 1)")
        if self.min_survivors < 1:
            raise ConfigError(f"min_survivors={self.min_survivors}: must be >= 1")
        for name in ("eval_every", "client_eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)}: must be >= 0")
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

    @property
    def final_accuracy(self) -> float | None:
        """The last global test accuracy recorded, or ``None``."""
        for rec in reversed(self.history):
            if "test_accuracy" in rec:
                return float(rec["test_accuracy"])
        return None


def _save(
    run_dir: Path, run: _Run, round_: int, steps: Sequence[UpdateStep], config: SimulationConfig, population: int
) -> None:
    tensors: dict[str, torch.Tensor] = {f"params/{k}": v for k, v in run.params.items()}
    tensors.update({f"strategy/{k}": v for k, v in run.state.items()})
    for cid, st in run.client_states.items():
        for k, v in (st or {}).items():
            tensors[f"client/{cid}/{k}"] = v
    for cid, mem in run.memory.items():  # the steps' per-client memory (e.g. compression residuals)
        for k, v in mem.items():
            tensors[f"memory/{cid}/{k}"] = v
    tensors.update(rng_state())
    meta = {
        "round": round_,
        "seed": config.seed,
        "population": population,
        "totals": run.totals,
        "steps": step_states(steps),
        "config": asdict(config),
    }
    save_checkpoint(run_dir / CHECKPOINT, tensors, meta)


def _load(
    run_dir: Path, config: SimulationConfig, population: int, steps: Sequence[UpdateStep], device: torch.device
) -> _Run:
    tensors, meta = load_checkpoint(run_dir / CHECKPOINT)
    if meta.get("seed") != config.seed or meta.get("population") != population:
        raise CheckpointError(
            f"checkpoint in {run_dir / CHECKPOINT} is for seed={meta.get('seed')}, population={meta.get('population')}; "
            f"this run has seed={config.seed}, population={population}: use the same run or start without resume"
        )
    run = _Run(params={}, state={}, start=int(meta["round"]) + 1, totals=dict(meta.get("totals", {})))
    clients: dict[ClientId, Params] = {}
    for name, t in tensors.items():
        head, _, rest = name.partition("/")
        t = t.to(device)
        if head == "params":
            run.params[rest] = t
        elif head == "strategy":
            run.state[rest] = t
        elif head in ("client", "memory"):
            cid, _, key = rest.partition("/")
            (clients if head == "client" else run.memory).setdefault(int(cid), {})[key] = t
    run.client_states = dict(clients)
    for step, st in zip(steps, meta.get("steps", [])):
        if st is not None and hasattr(step, "load_state_dict"):
            step.load_state_dict(st)
    return run


@dataclass
class _Run:
    """The state a run carries from round to round (and what a checkpoint holds)."""

    params: Params
    state: Params
    start: int = 1
    totals: dict[str, int] = field(default_factory=lambda: {"bytes_down": 0, "bytes_up": 0})
    client_states: dict[ClientId, Params | None] = field(default_factory=dict)
    memory: dict[ClientId, Params] = field(default_factory=dict)  # the steps' per-client memory
    history: list[dict[str, Any]] = field(default_factory=list)
    client_accuracy: dict[ClientId, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    """What every round of a run shares: how the cohort is drawn, and whether a round must
    release (central DP: a round is never skipped because of who took part)."""

    sampling: CohortSampling
    release: bool


def _finite(params: Params) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in params.values() if v.is_floating_point())


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
) -> SimulationResult:
    """Run federated training in simulation (see the module docstring).

    Args:
        model: the architecture (its current weights are the initial global model unless
            ``initial_params`` is given); the engines use it as a scratch vessel.
        population: the clients' data: a :class:`~interlearn.federated.population.Population`
            (index views), a lazily generated one
            (:class:`~interlearn.federated.synthetic.SyntheticPopulation`), any
            :class:`~interlearn.federated.api.ClientPopulation`.
        client_update: local training (e.g. :class:`~interlearn.federated.client.LocalSGD`).
        strategy: server aggregation (e.g. ``get_strategy("fedavg")``).
        config: rounds, cohort, dropouts, evaluation, checkpoints, seed, progress.
        engine: an engine or its name: ``"auto"`` (the fastest for this model and machine; its
            choice is logged), ``"sequential"``, ``"vectorized"``, ``"multicore"``, ``"ray"``.
            An engine built from a name is stopped at the end; one passed in is left running.
        steps: update steps (clip, noise, compress, validate, secure aggregation) in client
            order; server hooks run in reverse.
        test: a global test set ``(x, y)``.
        run_dir: folder for ``metrics.jsonl``, ``checkpoint/`` and plots.
        resume: continue from ``run_dir``'s checkpoint (a fresh start when there is none).
        initial_params: global params to start from instead of the model's weights.
        on_round: called with each round's record after it is written.
        tracking: TensorBoard/MLflow tracking (:mod:`interlearn.tracking`): the config as
            params, each round's record as metrics, the run folder as artifacts.

    Returns:
        A :class:`SimulationResult`.

    Raises:
        ConfigError: checkpoints or resume without ``run_dir``; a cohort larger than the
            population; update steps the engine cannot carry to its clients.
        CheckpointError: resuming from a checkpoint of another run.
        TrainingDivergedError: the global params became NaN/Inf (the last checkpoint is kept).
    """
    eng = get_engine(engine) if isinstance(engine, str) else engine
    out = Path(run_dir) if run_dir is not None else None
    size = _check_run(config, len(population), out, resume)
    plan = _Plan(
        resolve_sampling(
            config.sampling, len(population), config.fraction, config.clients_per_round, config.dropout, steps
        ),
        releases_every_round(steps, config.min_survivors),
    )
    run = _open_run(model, strategy, config, len(population), steps, out, resume, initial_params)
    eng.start(EngineSetup(model, client_update, population, size))
    if eng.runs_client_steps:
        check_remote_steps(steps, eng)
    if config.progress:
        print(f"engine: {eng.describe()}", flush=True)
    tracker = open_tracker(
        tracking,
        "simulate",
        {
            "config": asdict(config),
            "strategy": describe(strategy),
            "client_update": describe(client_update),
            "engine": eng.describe(),
            "clients": len(population),
            "steps": [describe(s) for s in steps],
        },
    )
    stopped: str | None = None
    began = time.perf_counter()
    try:
        for r in range(run.start, config.rounds + 1):
            rec, ctx = _round(r, eng, population, strategy, config, steps, run, plan)
            if (
                config.time_budget_s is not None
                and time.perf_counter() - began >= config.time_budget_s
                and r < config.rounds
            ):
                ctx.notes["stop"] = f"time budget of {config.time_budget_s:g} s spent after round {r}"
            last = r == config.rounds or bool(ctx.notes.get("stop"))
            _evaluate(rec, eng, model, population, config, test, run, last, r)
            rec.update({k: v for k, v in ctx.notes.items() if isinstance(v, (int, float, str, bool))})
            if ctx.log:
                rec["log"] = list(ctx.log)
            if r == run.start:
                rec["engine"] = eng.describe()
            _record(rec, run, out, config, steps, len(population), last, on_round, tracker)
            if ctx.notes.get("stop"):
                stopped = str(ctx.notes["stop"])
                break
    except BaseException:
        tracker.finish(failed=True)
        raise
    finally:
        described = eng.describe()  # before stop(): auto forgets its choice when stopped
        if isinstance(engine, str):
            eng.stop()
    if out is not None and run.history:
        plot_history(run.history, out / "accuracy.png")
        if run.client_accuracy:
            plot_client_accuracy(list(run.client_accuracy.values()), out / "client_accuracy.png")
    tracker.close(out)
    return SimulationResult(
        run.params,
        run.history,
        run.client_accuracy,
        run.state,
        run.totals["bytes_down"],
        run.totals["bytes_up"],
        stopped,
        out,
        described,
    )


def _check_run(config: SimulationConfig, n_clients: int, out: Path | None, resume: bool) -> int:
    """The (expected) cohort size; refuses settings no round could run with."""
    if out is None and (config.checkpoint_every or resume):
        raise ConfigError("checkpoint_every / resume need a run_dir to hold the checkpoint")
    size = cohort_size(n_clients, config.fraction, config.clients_per_round)
    if config.min_survivors > size:
        raise ConfigError(
            f"min_survivors={config.min_survivors} exceeds the cohort size {size}: no round could ever run"
        )
    return size


def _open_run(
    model: nn.Module,
    strategy: Strategy,
    config: SimulationConfig,
    n_clients: int,
    steps: Sequence[UpdateStep],
    out: Path | None,
    resume: bool,
    initial_params: Params | None,
) -> _Run:
    """A fresh run, or the one ``out``'s checkpoint holds (its metrics up to the checkpoint kept)."""
    params = clone_params(initial_params) if initial_params is not None else model_params(model)
    run = _Run(params, strategy.init(params))
    if out is None:
        return run
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / METRICS
    if resume and has_checkpoint(out / CHECKPOINT):
        device = next(iter(params.values())).device
        run = _load(out, config, n_clients, steps, device)
        if metrics_path.exists():  # keep the records up to the checkpoint; later ones are redone
            kept = [json.loads(s) for s in metrics_path.read_text().splitlines() if s.strip()]
            run.history = [h for h in kept if h.get("round", 0) < run.start]
        if config.progress:
            print(f"resuming after round {run.start - 1} from {out / CHECKPOINT}", flush=True)
    metrics_path.write_text("".join(json.dumps(h) + "\n" for h in run.history))
    return run


def _round(
    r: int,
    eng: Engine,
    population: ClientPopulation,
    strategy: Strategy,
    config: SimulationConfig,
    steps: Sequence[UpdateStep],
    run: _Run,
    plan: _Plan,
) -> tuple[dict[str, Any], RoundContext]:
    """One round: sample -> run clients -> client steps -> server steps -> aggregate. Updates ``run``."""
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"round": r}
    ctx = RoundContext(r, round_generator(config.seed, r, 1))
    ctx.notes["global_params"] = run.params  # reference for steps that validate keys/shapes/dtypes
    ctx.notes["sampling"] = plan.sampling  # what the privacy steps check their accounting against
    ctx.channel = eng.protocol_channel(r) if eng.runs_client_steps else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mix_seed(config.seed, r, 3))  # server-side randomness of the round
        cohort = plan.sampling.draw(round_generator(config.seed, r, 0))
        survivors, dropped = apply_dropout(cohort, config.dropout, round_generator(config.seed, r, 2))
        extras = server_extras(strategy, run.state)
        rec.update(cohort=len(cohort), dropped=len(dropped), bytes_down=download_bytes(run.params, extras, len(cohort)))
        try:
            check_survivors(len(survivors), config.min_survivors, r, release=plan.release)
            results, new_states, new_memory = _run_clients(eng, r, survivors, extras, steps, run, config, ctx, rec)
            new_params, new_state = _aggregate(results, steps, strategy, run, ctx, rec, config, r, plan.release)
        except RoundSkipped as exc:
            log.warning("%s", exc)
            rec["skipped"] = str(exc)
        else:
            if not _finite(new_params):
                raise TrainingDivergedError(
                    f"round {r}: the global params became NaN/Inf; lower the client or server learning rate "
                    "(the last checkpoint, if any, is kept)"
                )
            run.params, run.state = new_params, new_state
            run.client_states.update(new_states)
            run.memory.update(new_memory)
    run.totals["bytes_down"] += rec["bytes_down"]
    run.totals["bytes_up"] += rec.get("bytes_up", 0)
    rec["round_seconds"] = time.perf_counter() - t0
    return rec, ctx


def _run_clients(
    eng: Engine,
    r: int,
    survivors: list[ClientId],
    extras: Params,
    steps: Sequence[UpdateStep],
    run: _Run,
    config: SimulationConfig,
    ctx: RoundContext,
    rec: dict[str, Any],
) -> tuple[list[ClientResult], dict[ClientId, Params | None], dict[ClientId, Params]]:
    """The client side: the engine trains the survivors, then each result passes the steps'
    client hooks (here, or on the device when the engine's clients run them)."""
    if not survivors:  # an empty (Poisson) cohort: under central DP the server steps still release
        return [], {}, {}
    client_round = ClientRound(r, config.seed, step_states(steps)) if eng.runs_client_steps else None
    task = CohortTask(
        r,
        run.params,
        survivors,
        {c: run.client_states.get(c) for c in survivors},
        extras,
        [client_generator(config.seed, r, c) for c in survivors],
        client_round,
    )
    outcome = eng.run_cohort(task)
    if outcome.dropped:  # lost workers or nodes
        rec["engine_dropped"] = [int(c) for c in outcome.dropped]
    if outcome.nodes:  # where the clients ran (a Ray cluster's nodes): clients per node
        per_node: dict[str, int] = {}
        for node in outcome.nodes.values():
            per_node[node] = per_node.get(node, 0) + 1
        rec["engine_nodes"] = per_node
    results: list[ClientResult] = []
    new_states: dict[ClientId, Params | None] = {}
    new_memory: dict[ClientId, Params] = {}
    for res, st in outcome.results:
        cid = res.client_id
        if eng.runs_client_steps:
            notes, lines = outcome.client_contexts.get(cid, ({}, []))
        else:
            cctx = client_context(r, config.seed, cid, run.memory.get(cid))
            res = apply_client_steps(steps, res, cctx)
            notes, lines = cctx.notes, cctx.log
            if cctx.memory:
                new_memory[cid] = cctx.memory
        merge_client_context(ctx, notes, lines)
        results.append(res)
        if st is not None:
            new_states[cid] = st
    return results, new_states, new_memory


def _aggregate(
    results: list[ClientResult],
    steps: Sequence[UpdateStep],
    strategy: Strategy,
    run: _Run,
    ctx: RoundContext,
    rec: dict[str, Any],
    config: SimulationConfig,
    r: int,
    release: bool,
) -> tuple[Params, Params]:
    """The server side (ClientResults only): server hooks in reverse, the strategy, ``after`` hooks."""
    rec["reported"] = len(results)
    rec["bytes_up"] = upload_bytes(results)
    rec["train_loss"] = _mean_metric(results, "loss")
    check_survivors(len(results), config.min_survivors, r, release=release)
    for step in reversed(steps):
        results = step.server(results, ctx)
    if "secagg/bytes_up" in ctx.notes:  # masked vectors + protocol messages, not placeholders
        rec["bytes_up"] = int(ctx.notes["secagg/bytes_up"])
    new_params, new_state = strategy.aggregate(run.params, results, run.state)
    for step in steps:
        new_params = step.after(run.params, new_params, ctx)
    return new_params, new_state


def _evaluate(
    rec: dict[str, Any],
    eng: Engine,
    model: nn.Module,
    population: ClientPopulation,
    config: SimulationConfig,
    test: tuple[torch.Tensor, torch.Tensor] | None,
    run: _Run,
    last: bool,
    r: int,
) -> None:
    """Global test accuracy and the per-client accuracy distribution, when due."""
    if test is not None and ((config.eval_every and r % config.eval_every == 0) or last):
        ev = evaluate_params(model, run.params, test[0], test[1])
        rec["test_accuracy"], rec["test_loss"] = ev["accuracy"], ev["loss"]
    if config.client_eval and ((config.client_eval_every and r % config.client_eval_every == 0) or last):
        run.client_accuracy = eng.client_accuracies(
            model, run.params, population, _eval_sample(len(population), config)
        )
        rec["client_accuracy"] = summarize_accuracies(list(run.client_accuracy.values()))


def _record(
    rec: dict[str, Any],
    run: _Run,
    out: Path | None,
    config: SimulationConfig,
    steps: Sequence[UpdateStep],
    n_clients: int,
    last: bool,
    on_round: Callable[[dict[str, Any]], None] | None,
    tracker: Tracker,
) -> None:
    """Keep the round's record: history, metrics.jsonl, the checkpoint when due, progress, callback, tracker."""
    run.history.append(rec)
    if out is not None:
        with (out / METRICS).open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if config.checkpoint_every and (rec["round"] % config.checkpoint_every == 0 or last):
            _save(out, run, rec["round"], steps, config, n_clients)
    if config.progress:
        print(_progress_line(rec, config.rounds), flush=True)
    if on_round is not None:
        on_round(rec)
    tracker.log_metrics(rec, step=rec["round"])


def _eval_sample(n: int, config: SimulationConfig) -> list[ClientId] | None:
    if n <= config.client_eval_max:
        return None
    g = round_generator(config.seed, 0, 4)
    return sorted(int(c) for c in torch.randperm(n, generator=g)[: config.client_eval_max])


def _mean_metric(results: Sequence[ClientResult], key: str) -> float:
    vals = [float(r.metrics[key]) for r in results if key in r.metrics]
    return sum(vals) / len(vals) if vals else math.nan


def _progress_line(rec: dict[str, Any], rounds: int) -> str:
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
