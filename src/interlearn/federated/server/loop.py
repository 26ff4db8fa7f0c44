"""The open round loop: a :class:`Server` with ``init() -> state`` and ``round(state) ->
(state, record)`` (McMahan et al. 2017, Algorithm 1, with the composition of Reddi et al. 2021
and the system view of Bonawitz et al. 2019).

One round: sample the cohort -> the engine trains the survivors -> the update steps' client
hooks -> their server hooks (reverse order) -> the strategy -> the ``after`` hooks -> evaluate
when due. Read :meth:`Server.round` top to bottom, then one method per phase. Everything around
the rounds (resume, checkpoints, ``metrics.jsonl``, progress lines, plots, tracking) hangs on
the loop as callbacks (:mod:`interlearn.federated.server.callbacks`), and
:func:`~interlearn.federated.server.simulation.simulate` is a short loop over a Server that you
can copy and rewrite::

    server = Server(model, population, LocalSGD(lr=0.1), get_strategy("fedavg"), config)
    state = server.init()
    while not server.done(state):
        state, record = server.round(state)
    server.stop()

Determinism: the cohort, the dropouts and every client's local generator are derived from
``(seed, round, client)``, and the torch global RNG is re-seeded per round inside a fork, so a
run killed and resumed from a checkpoint ends bit-exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from interlearn.errors import ConfigError, RoundSkipped, TrainingDivergedError
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
from interlearn.federated.client.step import StepUpdate
from interlearn.federated.engines import get_engine
from interlearn.federated.params import clone_params, model_params
from interlearn.federated.server.comm import download_bytes, upload_bytes
from interlearn.federated.server.evaluate import evaluate_params, summarize_accuracies
from interlearn.federated.server.sampling import (
    CohortSampling,
    apply_dropout,
    check_survivors,
    client_generator,
    mix_seed,
    releases_every_round,
    resolve_sampling,
    round_generator,
)
from interlearn.types import ClientId, Params

if TYPE_CHECKING:
    from interlearn.federated.server.simulation import SimulationConfig

__all__ = ["RunState", "Server"]

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """What a run carries from round to round (and what a checkpoint holds).

    Attributes:
        params: the global params.
        state: the strategy's state (a flat tensor dict).
        round: the last round done (0 before the first).
        totals: bytes down/up over the run (resumed rounds included).
        client_states: each client's private state (SCAFFOLD's control variates, FedPer's head).
        memory: the update steps' per-client memory (compression residuals).
        history: one record per round.
        client_accuracy: the last per-client accuracies.
        stopped: why the run ended early (a step or the time budget asked), or ``None``.
    """

    params: Params
    state: Params
    round: int = 0
    totals: dict[str, int] = field(default_factory=lambda: {"bytes_down": 0, "bytes_up": 0})
    client_states: dict[ClientId, Params | None] = field(default_factory=dict)
    memory: dict[ClientId, Params] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    client_accuracy: dict[ClientId, float] = field(default_factory=dict)
    stopped: str | None = None


@dataclass
class _Cohort:
    """One round's clients after training: their results, new states and step memory."""

    results: list[ClientResult] = field(default_factory=list)
    states: dict[ClientId, Params | None] = field(default_factory=dict)
    memory: dict[ClientId, Params] = field(default_factory=dict)


class Server:
    """The federated server of one run: samples, dispatches to the engine, aggregates, evaluates.

    Args:
        model: the architecture (a scratch vessel for the engines and evaluation).
        population: the clients' data (any :class:`~interlearn.federated.api.ClientPopulation`).
        client_update: local training (its schedules are resolved every round).
        strategy: server aggregation.
        config: a :class:`~interlearn.federated.server.simulation.SimulationConfig`.
        engine: an engine or its name (one built from a name is stopped by :meth:`stop`).
        steps: update steps in client order.
        test: a global test set ``(x, y)``.

    Raises:
        ConfigError: a cohort larger than the population, ``min_survivors`` above a cohort, a
            step that is not an :class:`~interlearn.federated.api.UpdateStep`, or a strategy
            that is not a :class:`~interlearn.federated.api.Strategy`.
    """

    def __init__(
        self,
        model: nn.Module,
        population: ClientPopulation,
        client_update: ClientUpdate,
        strategy: Strategy,
        config: SimulationConfig,
        *,
        engine: str | Engine = "auto",
        steps: Sequence[UpdateStep] = (),
        test: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        _check_plugins(strategy, steps)
        self.model, self.population, self.client_update = model, population, client_update
        self.strategy, self.config, self.steps, self.test = strategy, config, list(steps), test
        self.engine: Engine = get_engine(engine) if isinstance(engine, str) else engine
        self.owns_engine = isinstance(engine, str)
        self.max_cohort = config.check_cohorts(len(population))
        self.release = releases_every_round(self.steps, config.min_survivors)
        self.sampling_at(1)  # a sampling the steps do not account for is refused before the engine starts
        self.described = ""
        self._began = time.perf_counter()
        self._first_round = True

    def init(self, initial_params: Params | None = None) -> RunState:
        """A fresh run state (the model's weights or ``initial_params``); starts the engine."""
        params = clone_params(initial_params) if initial_params is not None else model_params(self.model)
        state = RunState(params, self.strategy.init(params))
        first = self.update_at(1)
        self.engine.start(EngineSetup(self.model, first, self.population, self.max_cohort))
        if self.engine.runs_client_steps:
            check_remote_steps(self.steps, self.engine)
            if first is not self.client_update:
                raise ConfigError(
                    f"the {self.engine.name!r} engine's clients build their own client update: a schedule of the "
                    "learning rate or epochs cannot reach them; use constant values there"
                )
        self.described = self.engine.describe()
        self._began = time.perf_counter()
        return state

    def done(self, state: RunState) -> bool:
        """Whether the run is over: every round done, or a stop was asked."""
        return state.round >= self.config.rounds or state.stopped is not None

    def update_at(self, round_: int) -> ClientUpdate:
        """The client update of round ``round_`` (a :class:`StepUpdate`'s schedules resolved)."""
        return self.client_update.at_round(round_) if isinstance(self.client_update, StepUpdate) else self.client_update

    def scheduled_update(self, round_: int) -> ClientUpdate | None:
        """The update of round ``round_`` for the engine when a schedule changes it, else ``None``
        (the engine keeps the one it was started with; nothing is re-sent)."""
        update = self.update_at(round_)
        return None if update is self.client_update else update

    def sampling_at(self, round_: int) -> CohortSampling:
        """How round ``round_`` draws its cohort (the config's sampling, or the steps')."""
        c = self.config
        return resolve_sampling(
            c.sampling, len(self.population), c.fraction, c.cohort_at(round_), c.dropout, self.steps
        )

    def round(self, state: RunState) -> tuple[RunState, dict[str, Any]]:
        """Run the next round; returns the state (updated in place) and the round's record.

        Raises:
            TrainingDivergedError: the global params became NaN/Inf.
        """
        r = state.round + 1
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"round": r}
        ctx = RoundContext(r, round_generator(self.config.seed, r, 1), global_params=state.params)
        ctx.sampling = sampling = self.sampling_at(r)
        ctx.channel = self.engine.protocol_channel(r) if self.engine.runs_client_steps else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed(self.config.seed, r, 3))  # server-side randomness of the round
            self._train_and_aggregate(state, sampling, ctx, rec)
        state.totals["bytes_down"] += rec["bytes_down"]
        state.totals["bytes_up"] += rec.get("bytes_up", 0)
        rec["round_seconds"] = time.perf_counter() - t0
        state.round = r
        self._finish(state, ctx, rec)
        return state, rec

    def _train_and_aggregate(
        self, state: RunState, sampling: CohortSampling, ctx: RoundContext, rec: dict[str, Any]
    ) -> None:
        """Sample -> clients -> steps -> strategy; a skipped round leaves ``state`` unchanged."""
        r, seed = ctx.round, self.config.seed
        cohort = sampling.draw(round_generator(seed, r, 0))
        survivors, dropped = apply_dropout(cohort, self.config.dropout, round_generator(seed, r, 2))
        extras = dict(self.strategy.server_extras(state.state))
        rec.update(
            cohort=len(cohort), dropped=len(dropped), bytes_down=download_bytes(state.params, extras, len(cohort))
        )
        try:
            check_survivors(len(survivors), self.config.min_survivors, r, release=self.release)
            clients = self._run_clients(state, survivors, extras, ctx, rec)
            new_params, new_state = self._aggregate(state, clients.results, ctx, rec)
        except RoundSkipped as exc:
            log.warning("%s", exc)
            rec["skipped"] = str(exc)
            return
        if not _finite(new_params):
            raise TrainingDivergedError(
                f"round {r}: the global params became NaN/Inf; lower the client or server learning rate "
                "(the last checkpoint, if any, is kept)"
            )
        state.params, state.state = new_params, new_state
        state.client_states.update(clients.states)
        state.memory.update(clients.memory)

    def _run_clients(
        self, state: RunState, survivors: list[ClientId], extras: Params, ctx: RoundContext, rec: dict[str, Any]
    ) -> _Cohort:
        """The client side: the engine trains the survivors, then each result passes the steps'
        client hooks (here, or on the device when the engine's clients run them)."""
        if not survivors:  # an empty (Poisson) cohort: under central DP the server steps still release
            return _Cohort()
        r, seed, remote = ctx.round, self.config.seed, self.engine.runs_client_steps
        task = CohortTask(
            r,
            state.params,
            survivors,
            {c: state.client_states.get(c) for c in survivors},
            extras,
            [client_generator(seed, r, c) for c in survivors],
            ClientRound(r, seed, step_states(self.steps)) if remote else None,
            self.scheduled_update(r),
        )
        outcome = self.engine.run_cohort(task)
        _engine_notes(outcome.dropped, outcome.nodes, rec)
        out = _Cohort()
        for res, st in outcome.results:
            cid = res.client_id
            if remote:
                notes, lines = outcome.client_contexts.get(cid, ({}, []))
            else:
                cctx = client_context(r, seed, cid, state.memory.get(cid))
                res = apply_client_steps(self.steps, res, cctx)
                notes, lines = cctx.notes, cctx.log
                if cctx.memory:
                    out.memory[cid] = cctx.memory
            merge_client_context(ctx, notes, lines)
            out.results.append(res)
            if st is not None:
                out.states[cid] = st
        return out

    def _aggregate(
        self, state: RunState, results: list[ClientResult], ctx: RoundContext, rec: dict[str, Any]
    ) -> tuple[Params, Params]:
        """The server side (ClientResults only): server hooks in reverse, the strategy, ``after`` hooks."""
        rec["reported"] = len(results)
        rec["bytes_up"] = upload_bytes(results)
        rec["train_loss"] = _mean_metric(results, "loss")
        check_survivors(len(results), self.config.min_survivors, ctx.round, release=self.release)
        for step in reversed(self.steps):
            results = step.server(results, ctx)
        if ctx.bytes_up is not None:  # a step knows what really crossed the network (secagg's messages)
            rec["bytes_up"] = int(ctx.bytes_up)
        new_params, new_state = self.strategy.aggregate(state.params, results, state.state)
        for step in self.steps:
            new_params = step.after(state.params, new_params, ctx)
        return new_params, new_state

    def _finish(self, state: RunState, ctx: RoundContext, rec: dict[str, Any]) -> None:
        """Stop requests, evaluation when due, the round's notes and log into its record."""
        c, r = self.config, ctx.round
        if c.time_budget_s is not None and time.perf_counter() - self._began >= c.time_budget_s and r < c.rounds:
            ctx.stop = f"time budget of {c.time_budget_s:g} s spent after round {r}"
        state.stopped = ctx.stop
        self.evaluate(state, rec, last=self.done(state))
        rec.update({k: v for k, v in ctx.notes.items() if isinstance(v, (int, float, str, bool))})
        if ctx.stop is not None:
            rec["stop"] = ctx.stop
        if ctx.log:
            rec["log"] = list(ctx.log)
        if self._first_round:
            rec["engine"] = self.engine.describe()
            self._first_round = False
        state.history.append(rec)

    def evaluate(self, state: RunState, rec: dict[str, Any], last: bool) -> None:
        """Global test accuracy and the per-client accuracy distribution, when due (or ``last``)."""
        c, r = self.config, state.round
        if self.test is not None and ((c.eval_every and r % c.eval_every == 0) or last):
            ev = evaluate_params(self.model, state.params, self.test[0], self.test[1])
            rec["test_accuracy"], rec["test_loss"] = ev["accuracy"], ev["loss"]
        if c.client_eval and ((c.client_eval_every and r % c.client_eval_every == 0) or last):
            n = len(self.population)
            state.client_accuracy = self.engine.client_accuracies(
                self.model, state.params, self.population, _eval_sample(n, c)
            )
            rec["client_accuracy"] = summarize_accuracies(list(state.client_accuracy.values()))

    def stop(self) -> None:
        """Release the engine when this server built it (one passed in is left running)."""
        self.described = self.engine.describe() or self.described  # auto forgets its choice when stopped
        if self.owns_engine:
            self.engine.stop()


def _check_plugins(strategy: Strategy, steps: Sequence[UpdateStep]) -> None:
    """Refuse plug-ins that do not declare the capabilities the loop uses (see ``api``)."""
    if not isinstance(strategy, Strategy):
        raise ConfigError(
            f"strategy {strategy!r} lacks part of the Strategy interface (init, aggregate, server_extras): "
            "subclass interlearn.federated.Strategy for the defaults"
        )
    bad = [repr(s) for s in steps if not isinstance(s, UpdateStep)]
    if bad:
        raise ConfigError(
            f"update step(s) {bad} lack part of the UpdateStep interface: subclass interlearn.federated.UpdateStep "
            "(every hook defaults to the identity, every capability to no)"
        )


def _engine_notes(dropped: list[ClientId], nodes: dict[ClientId, str], rec: dict[str, Any]) -> None:
    """Clients the engine lost, and clients per node when it spread them over machines."""
    if dropped:
        rec["engine_dropped"] = [int(c) for c in dropped]
    if nodes:
        per_node: dict[str, int] = {}
        for node in nodes.values():
            per_node[node] = per_node.get(node, 0) + 1
        rec["engine_nodes"] = per_node


def _finite(params: Params) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in params.values() if v.is_floating_point())


def _eval_sample(n: int, config: SimulationConfig) -> list[ClientId] | None:
    if n <= config.client_eval_max:
        return None
    g = round_generator(config.seed, 0, 4)
    return sorted(int(c) for c in torch.randperm(n, generator=g)[: config.client_eval_max])


def _mean_metric(results: Sequence[ClientResult], key: str) -> float:
    vals = [float(r.metrics[key]) for r in results if key in r.metrics]
    return sum(vals) / len(vals) if vals else math.nan
