"""The round loop: sample -> dispatch -> client steps -> server steps -> aggregate -> evaluate
-> checkpoint (McMahan et al. 2017, Algorithm 1, with the composition of Reddi et al. 2021 and
the system view of Bonawitz et al. 2019). Read :func:`simulate` top to bottom: it is the whole
federated run.

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
from interlearn.federated.api import ClientResult, ClientUpdate, Engine, RoundContext, Strategy, UpdateStep
from interlearn.federated.client_steps import (
    ClientRound,
    apply_client_steps,
    check_remote_steps,
    client_context,
    merge_client_context,
    step_states,
)
from interlearn.federated.comm import download_bytes, upload_bytes
from interlearn.federated.engines import get_engine
from interlearn.federated.evaluate import client_accuracies, evaluate_params, summarize_accuracies
from interlearn.federated.params import clone_params, model_params
from interlearn.federated.population import Population
from interlearn.federated.sampling import (
    SAMPLINGS,
    _mix,
    apply_dropout,
    check_survivors,
    client_generator,
    cohort_size,
    releases_every_round,
    resolve_sampling,
    round_generator,
)
from interlearn.federated.strategies.base import server_extras
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
    """

    params: Params
    history: list[dict[str, Any]]
    client_accuracy: dict[ClientId, float] = field(default_factory=dict)
    strategy_state: Params = field(default_factory=dict)
    bytes_down: int = 0
    bytes_up: int = 0
    stopped: str | None = None
    run_dir: Path | None = None

    @property
    def final_accuracy(self) -> float | None:
        """The last global test accuracy recorded, or ``None``."""
        for rec in reversed(self.history):
            if "test_accuracy" in rec:
                return float(rec["test_accuracy"])
        return None


def _save(run_dir: Path, round_: int, params: Params, state: Params, client_states: dict[ClientId, Params | None],
          memory: dict[ClientId, Params], steps: Sequence[UpdateStep], totals: dict[str, int], config: SimulationConfig,
          population: int) -> None:
    tensors: dict[str, torch.Tensor] = {f"params/{k}": v for k, v in params.items()}
    tensors.update({f"strategy/{k}": v for k, v in state.items()})
    for cid, st in client_states.items():
        for k, v in (st or {}).items():
            tensors[f"client/{cid}/{k}"] = v
    for cid, mem in memory.items():  # the steps' per-client memory (e.g. compression residuals)
        for k, v in mem.items():
            tensors[f"memory/{cid}/{k}"] = v
    tensors.update(rng_state())
    meta = {"round": round_, "seed": config.seed, "population": population, "totals": totals,
            "steps": step_states(steps), "config": asdict(config)}
    save_checkpoint(run_dir / CHECKPOINT, tensors, meta)


def _load(run_dir: Path, config: SimulationConfig, population: int, steps: Sequence[UpdateStep]
          ) -> tuple[int, Params, Params, dict[ClientId, Params | None], dict[ClientId, Params], dict[str, int]]:
    tensors, meta = load_checkpoint(run_dir / CHECKPOINT)
    if meta.get("seed") != config.seed or meta.get("population") != population:
        raise CheckpointError(
            f"checkpoint in {run_dir / CHECKPOINT} is for seed={meta.get('seed')}, population={meta.get('population')}; "
            f"this run has seed={config.seed}, population={population}: use the same run or start without resume"
        )
    params: Params = {}
    state: Params = {}
    clients: dict[ClientId, Params | None] = {}
    memory: dict[ClientId, Params] = {}
    for name, t in tensors.items():
        head, _, rest = name.partition("/")
        if head == "params":
            params[rest] = t
        elif head == "strategy":
            state[rest] = t
        elif head == "client":
            cid, _, key = rest.partition("/")
            clients.setdefault(int(cid), {})[key] = t  # type: ignore[index]
        elif head == "memory":
            cid, _, key = rest.partition("/")
            memory.setdefault(int(cid), {})[key] = t
    for step, st in zip(steps, meta.get("steps", [])):
        if st is not None and hasattr(step, "load_state_dict"):
            step.load_state_dict(st)  # type: ignore[attr-defined]
    return int(meta["round"]), params, state, clients, memory, dict(meta.get("totals", {}))


def _to(params: Params, device: torch.device) -> Params:
    return {k: v.to(device) for k, v in params.items()}


def _finite(params: Params) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in params.values() if v.is_floating_point())


def simulate(
    model: nn.Module,
    population: Population,
    client_update: ClientUpdate,
    strategy: Strategy,
    config: SimulationConfig,
    *,
    engine: str | Engine = "sequential",
    steps: Sequence[UpdateStep] = (),
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    initial_params: Params | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> SimulationResult:
    """Run federated training in simulation (see the module docstring).

    Args:
        model: the architecture (its current weights are the initial global model unless
            ``initial_params`` is given); the engines use it as a scratch vessel.
        population: the clients' data as index views.
        client_update: local training (e.g. :class:`~interlearn.federated.client.LocalSGD`).
        strategy: server aggregation (e.g. ``get_strategy("fedavg")``).
        config: rounds, cohort, dropouts, evaluation, checkpoints, seed, progress.
        engine: an engine or its name (``"sequential"``, ``"vectorized"``, ``"ray"``).
        steps: update steps (clip, noise, compress, validate, secure aggregation) in client
            order; server hooks run in reverse.
        test: a global test set ``(x, y)``.
        run_dir: folder for ``metrics.jsonl``, ``checkpoint/`` and plots.
        resume: continue from ``run_dir``'s checkpoint (a fresh start when there is none).
        initial_params: global params to start from instead of the model's weights.
        on_round: called with each round's record after it is written.

    Returns:
        A :class:`SimulationResult`.

    Raises:
        ConfigError: checkpoints or resume without ``run_dir``; a cohort larger than the
            population.
        CheckpointError: resuming from a checkpoint of another run.
        TrainingDivergedError: the global params became NaN/Inf (the last checkpoint is kept).
    """
    eng = get_engine(engine) if isinstance(engine, str) else engine
    out = Path(run_dir) if run_dir is not None else None
    if out is None and (config.checkpoint_every or resume):
        raise ConfigError("checkpoint_every / resume need a run_dir to hold the checkpoint")
    n_clients = len(population)
    size = cohort_size(n_clients, config.fraction, config.clients_per_round)
    if config.min_survivors > size:
        raise ConfigError(f"min_survivors={config.min_survivors} exceeds the cohort size {size}: no round could ever run")
    sampling = resolve_sampling(config.sampling, n_clients, config.fraction, config.clients_per_round, config.dropout, steps)
    release = releases_every_round(steps, config.min_survivors)  # central DP: every round releases

    params = clone_params(initial_params) if initial_params is not None else model_params(model)
    state = strategy.init(params)
    client_states: dict[ClientId, Params | None] = {}
    memory: dict[ClientId, Params] = {}  # the steps' per-client memory (clients on remote engines keep their own)
    remote_steps = bool(getattr(eng, "runs_client_steps", False))  # Flower: the nodes run the client hooks
    if remote_steps:
        check_remote_steps(steps, eng)
    totals = {"bytes_down": 0, "bytes_up": 0}
    start = 1
    history: list[dict[str, Any]] = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        metrics_path = out / METRICS
        if resume and has_checkpoint(out / CHECKPOINT):
            done, params, state, client_states, memory, totals = _load(out, config, n_clients, steps)
            dev = next(iter(model_params(model).values())).device
            params, state = _to(params, dev), _to(state, dev)
            client_states = {c: _to(s, dev) if s is not None else None for c, s in client_states.items()}
            memory = {c: _to(m, dev) for c, m in memory.items()}
            start = done + 1
            if metrics_path.exists():  # keep the records up to the checkpoint; later ones are redone
                kept = [json.loads(s) for s in metrics_path.read_text().splitlines() if s.strip()]
                history = [h for h in kept if h.get("round", 0) <= done]
            if config.progress:
                print(f"resuming after round {done} from {out / CHECKPOINT}", flush=True)
        metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history))

    stopped: str | None = None
    accs: dict[ClientId, float] = {}
    for r in range(start, config.rounds + 1):
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"round": r}
        ctx = RoundContext(r, round_generator(config.seed, r, 1))
        ctx.notes["global_params"] = params  # reference for steps that validate keys/shapes/dtypes
        ctx.notes["sampling"] = sampling  # what the privacy steps check their accounting against
        if remote_steps and hasattr(eng, "protocol_channel"):
            ctx.channel = eng.protocol_channel(r)  # protocol rounds to the clients (secure aggregation)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(config.seed, r, 3))  # model-internal randomness (dropout layers)
            cohort = sampling.draw(round_generator(config.seed, r, 0))
            survivors, dropped = apply_dropout(cohort, config.dropout, round_generator(config.seed, r, 2))
            extras = server_extras(strategy, state)
            rec.update(cohort=len(cohort), dropped=len(dropped))
            rec["bytes_down"] = download_bytes(params, extras, len(cohort))
            try:
                check_survivors(len(survivors), config.min_survivors, r, release=release)
                # ---- client side: only here does raw data exist, and only the cohort's
                data = [population.client(c) for c in survivors]
                gens = [client_generator(config.seed, r, c) for c in survivors]
                states_in = {c: client_states.get(c) for c in survivors}
                if not data:  # an empty (Poisson) cohort: under DP the server steps still release
                    outs = []
                elif remote_steps:  # the clients run the steps' client hooks themselves
                    round_info = ClientRound(r, config.seed, step_states(steps))
                    outs = eng.run_cohort(model, client_update, params, data, states_in, extras, gens,  # type: ignore[call-arg]
                                          client_round=round_info)
                else:
                    outs = eng.run_cohort(model, client_update, params, data, states_in, extras, gens)
                del data
                if getattr(eng, "last_dropped", None):  # Ray/Flower: lost workers or nodes
                    rec["engine_dropped"] = [int(c) for c in eng.last_dropped]
                results: list[ClientResult] = []
                new_client_states: dict[ClientId, Params | None] = {}
                new_memory: dict[ClientId, Params] = {}
                for res, st in outs:
                    cid = res.client_id
                    if remote_steps:
                        notes, lines = eng.last_client_contexts.get(cid, ({}, []))  # type: ignore[attr-defined]
                    else:
                        cctx = client_context(r, config.seed, cid, memory.get(cid))
                        res = apply_client_steps(steps, res, cctx)
                        notes, lines = cctx.notes, cctx.log
                        if cctx.memory:
                            new_memory[cid] = cctx.memory
                    merge_client_context(ctx, notes, lines)
                    results.append(res)
                    if st is not None:
                        new_client_states[cid] = st
                # ---- server side: ClientResults only
                rec["reported"] = len(results)
                rec["bytes_up"] = upload_bytes(results)
                rec["train_loss"] = _mean_metric(results, "loss")
                check_survivors(len(results), config.min_survivors, r, release=release)
                for step in reversed(steps):
                    results = step.server(results, ctx)
                if "secagg/bytes_up" in ctx.notes:  # masked vectors + protocol messages, not placeholders
                    rec["bytes_up"] = int(ctx.notes["secagg/bytes_up"])
                new_params, new_state = strategy.aggregate(params, results, state)
                for step in steps:
                    new_params = step.after(params, new_params, ctx)
            except RoundSkipped as exc:
                log.warning("%s", exc)
                rec["skipped"] = str(exc)
            else:
                if not _finite(new_params):
                    raise TrainingDivergedError(
                        f"round {r}: the global params became NaN/Inf; lower the client or server learning rate "
                        "(the last checkpoint, if any, is kept)"
                    )
                params, state = new_params, new_state
                client_states.update(new_client_states)
                memory.update(new_memory)
        totals["bytes_down"] += rec["bytes_down"]
        totals["bytes_up"] += rec.get("bytes_up", 0)
        rec["round_seconds"] = time.perf_counter() - t0
        last = r == config.rounds or bool(ctx.notes.get("stop"))
        if test is not None and ((config.eval_every and r % config.eval_every == 0) or last):
            ev = evaluate_params(model, params, test[0], test[1])
            rec["test_accuracy"], rec["test_loss"] = ev["accuracy"], ev["loss"]
        if config.client_eval and ((config.client_eval_every and r % config.client_eval_every == 0) or last):
            # engines whose clients hold their own data (Flower) evaluate there
            evaluate_clients = getattr(eng, "client_accuracies", None) or client_accuracies
            accs = evaluate_clients(model, params, population, _eval_sample(n_clients, config))
            rec["client_accuracy"] = summarize_accuracies(list(accs.values()))
        rec.update({k: v for k, v in ctx.notes.items() if isinstance(v, (int, float, str, bool))})
        if ctx.log:
            rec["log"] = list(ctx.log)
        history.append(rec)
        if out is not None:
            with (out / METRICS).open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            if config.checkpoint_every and (r % config.checkpoint_every == 0 or last):
                _save(out, r, params, state, client_states, memory, steps, totals, config, n_clients)
        if config.progress:
            print(_progress_line(rec, config.rounds), flush=True)
        if on_round is not None:
            on_round(rec)
        if ctx.notes.get("stop"):
            stopped = str(ctx.notes["stop"])
            break
    if out is not None and history:
        from interlearn.federated.plots import plot_client_accuracy, plot_history

        plot_history(history, out / "accuracy.png")
        if accs:
            plot_client_accuracy(list(accs.values()), out / "client_accuracy.png")
    return SimulationResult(params, history, accs, state, totals["bytes_down"], totals["bytes_up"], stopped, out)


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
