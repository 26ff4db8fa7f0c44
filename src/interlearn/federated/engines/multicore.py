"""The multi-core engine: a cohort split across worker processes, one per core.

Each worker is a process bound to the run at start-up (the model, the client update and the
population come with it: inherited through ``fork`` on Linux, as PyTorch's DataLoader workers
do, or pickled through shared memory with ``spawn``), runs single-threaded, and trains its
share of every cohort with an inner engine (``sequential``, or ``vectorized`` where batching
wins, as for Linear/ReLU MLPs). Per round, the parent writes the global params into shared
memory that every worker reads (one copy, whatever the number of workers), sends each worker
its client ids with their generator states and private states, and reads the updates back
through shared memory (PyTorch's tensor sharing). Clients go to workers longest first, each to
the least loaded (LPT scheduling on the clients' example counts), so the cores finish together.

Each client's computation is exactly the one the inner engine does in process, with the
client's own generator, so the results equal the ``sequential`` engine's (tested within 1e-5)
whatever the number of workers. A worker that dies stops the run with an error naming it (a
crash here is a bug or out-of-memory, not a client dropping out).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import torch
import torch.multiprocessing as mp

from interlearn.errors import ConfigError, InterlearnError
from interlearn.federated.api import ClientResult, CohortOutcome, CohortTask, EngineSetup
from interlearn.federated.engines.base import EngineBase, check_task
from interlearn.federated.engines.closed_form import closed_form_reason
from interlearn.federated.engines.sequential import SequentialEngine
from interlearn.federated.engines.vectorized import VectorizedEngine
from interlearn.federated.params import model_params
from interlearn.types import ClientId, Params

__all__ = ["MultiCoreEngine", "available_cores", "assign_clients"]

log = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def assign_clients(costs: Sequence[float], workers: int) -> list[list[int]]:
    """Longest-processing-time-first: indices of ``costs`` per worker, each worker's list in
    ascending index order (so results come back in cohort order)."""
    loads = [0.0] * workers
    out: list[list[int]] = [[] for _ in range(workers)]
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        w = min(range(workers), key=lambda w: loads[w])
        out[w].append(i)
        loads[w] += costs[i]
    return [sorted(ix) for ix in out]


def _pack(results: list[tuple[ClientResult, Params | None]]) -> list[tuple[Any, ...]]:
    """Each client's update as one contiguous tensor (one shared-memory transfer per client)."""
    out = []
    for res, state in results:
        keys = list(res.update)
        flat = (
            torch.cat([res.update[k].reshape(-1) for k in keys])
            if keys and len({v.dtype for v in res.update.values()}) == 1
            else None
        )
        body = ([(k, tuple(res.update[k].shape)) for k in keys], flat) if flat is not None else (None, res.update)
        out.append((res.client_id, body, res.weight, res.metrics, res.extras, state))
    return out


def _unpack(packed: list[tuple[Any, ...]]) -> list[tuple[ClientResult, Params | None]]:
    out = []
    for cid, (layout, payload), weight, metrics, extras, state in packed:
        if layout is None:
            update = payload
        else:
            update, pos = {}, 0
            for k, shape in layout:
                n = 1
                for d in shape:
                    n *= d
                update[k] = payload[pos : pos + n].view(shape)
                pos += n
        out.append((ClientResult(cid, update, weight, metrics, extras), state))
    return out


# the engines a worker may run its share with (``inner``); imported here, not looked up in the
# engine registry, which imports this module
_INNER: dict[str, type[EngineBase]] = {"sequential": SequentialEngine, "vectorized": VectorizedEngine}


def _worker_main(conn: Any, setup: EngineSetup, inner: str, threads: int) -> None:
    """A worker's loop: bind the inner engine, then answer ``params`` / ``run`` / ``stop`` messages."""
    torch.set_num_threads(threads)
    params: Params = {}
    try:
        engine = _INNER[inner]()
        engine.start(setup)
        conn.send(("ready", None))
    except BaseException as exc:  # noqa: BLE001  (reported to the parent)
        conn.send(("error", (exc, traceback.format_exc())))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        kind = msg[0]
        if kind == "stop":
            return
        if kind == "params":
            params = msg[1]
            continue
        _, round_, ids, states, extras, gen_states, client_round, update = msg
        try:
            gens = []
            for st in gen_states:
                g = torch.Generator()
                g.set_state(st)
                gens.append(g)
            out = engine.run_cohort(CohortTask(round_, params, ids, states, extras, gens, client_round, update))
            conn.send(("ok", (_pack(out.results), [g.get_state() for g in gens], out.dropped, out.client_contexts)))
        except BaseException as exc:  # noqa: BLE001  (re-raised in the parent with its type)
            try:
                conn.send(("error", (exc, traceback.format_exc())))
            except Exception:  # noqa: BLE001  (an exception that does not pickle)
                conn.send(("error", (InterlearnError(f"{type(exc).__name__}: {exc}"), traceback.format_exc())))


class MultiCoreEngine(EngineBase):
    """Runs each cohort on worker processes, one per core (see the module docstring).

    Args:
        workers: worker processes (``None``: every core this process may use, at most the
            cohort size).
        inner: the engine each worker runs its share with: ``"sequential"``, ``"vectorized"``
            or ``"auto"`` (``vectorized`` for Linear/ReLU MLPs with closed-form gradients,
            else ``sequential``).
        start_method: ``"fork"`` (default on Linux: workers inherit the data, start in
            milliseconds) or ``"spawn"`` (everywhere; the population travels once through
            shared memory).
        threads: torch threads per worker (1: no oversubscription, results equal to the
            single-threaded sequential engine).

    Raises:
        ConfigError: a bad ``workers``, ``inner``, ``start_method`` or ``threads``.

    Example:
        >>> engine = MultiCoreEngine(workers=2)
    """

    name = "multicore"

    def __init__(
        self, workers: int | None = None, inner: str = "auto", start_method: str | None = None, threads: int = 1
    ) -> None:
        super().__init__()
        if workers is not None and workers < 1:
            raise ConfigError(f"workers={workers}: must be >= 1 or None (every core)")
        if inner not in ("auto", "sequential", "vectorized"):
            raise ConfigError(f"inner={inner!r}: choose 'auto', 'sequential' or 'vectorized'")
        if start_method is not None and start_method not in mp.get_all_start_methods():
            raise ConfigError(f"start_method={start_method!r}: this platform offers {mp.get_all_start_methods()}")
        if threads < 1:
            raise ConfigError(f"threads={threads}: must be >= 1")
        self.workers = workers
        self.inner = inner
        self.start_method = start_method
        self.threads = threads
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        self._shared: Params = {}
        self._inner_name = ""

    # ----------------------------------------------------------------- lifecycle
    def start(self, setup: EngineSetup) -> None:
        """Start the workers for this run (a no-op when they already serve this setup).

        Raises:
            ConfigError: the model lives on an accelerator (use the in-process engines there).
            InterlearnError: a worker failed to start.
        """
        if self._procs and self.setup is not None and self.setup.same_run(setup):
            return
        self.stop()
        if any(p.device.type != "cpu" for p in setup.model.parameters()):
            raise ConfigError(
                "the multicore engine runs CPU models; on an accelerator use engine='vectorized' or 'sequential'"
            )
        super().start(setup)
        self._inner_name = self.inner if self.inner != "auto" else _inner_for(setup)
        n = self.workers or available_cores()
        if setup.max_cohort:
            n = min(n, setup.max_cohort)
        method = self.start_method or ("fork" if sys.platform.startswith("linux") else "spawn")
        ctx: Any = mp.get_context(method)
        for _ in range(max(1, n)):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, setup, self._inner_name, self.threads), daemon=True)
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        try:
            self._gather(range(len(self._conns)))  # "ready": the workers are bound and warmed up
        except BaseException:
            self.stop()
            raise
        self._publish(model_params(setup.model))  # the shared-memory layout, before round 1

    def stop(self) -> None:
        """Stop the workers (the engine can be started again)."""
        for conn in self._conns:
            try:
                conn.send(("stop",))
            except (OSError, EOFError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns, self._shared = [], [], {}
        super().stop()

    def describe(self) -> str:
        return f"multicore ({len(self._procs)} workers x {self._inner_name})"

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass

    # ----------------------------------------------------------------- messages
    def _receive(self, i: int) -> tuple[str, Any]:
        """One reply of worker ``i``: ``(kind, body)``; a dead worker stops the engine.

        Raises:
            InterlearnError: the worker died.
        """
        try:
            return self._conns[i].recv()
        except (EOFError, ConnectionResetError, OSError) as exc:
            self._procs[i].join(timeout=2)
            code = self._procs[i].exitcode
            self.stop()
            raise InterlearnError(
                f"multicore worker {i} died (exit code {code}); it may have run out of memory: "
                "lower workers= or use engine='sequential'"
            ) from exc

    def _gather(self, workers: Sequence[int]) -> list[Any]:
        """Every listed worker's reply (all of them read, so none is left for the next round);
        the first worker error is re-raised with its own type."""
        replies = [self._receive(i) for i in workers]
        for i, (kind, body) in zip(workers, replies):
            if kind == "error":
                exc, tb = body
                log.error("multicore worker %d failed:\n%s", i, tb)
                raise exc
        return [body for _, body in replies]

    def _publish(self, params: Params) -> None:
        """Write the global params into shared memory (sent to the workers once per layout)."""
        same = self._shared.keys() == params.keys() and all(
            self._shared[k].shape == v.shape and self._shared[k].dtype == v.dtype for k, v in params.items()
        )
        if not same:
            self._shared = {k: v.detach().clone().share_memory_() for k, v in params.items()}
            for conn in self._conns:
                conn.send(("params", self._shared))
            return
        with torch.no_grad():
            for k, v in params.items():
                self._shared[k].copy_(v)

    # ----------------------------------------------------------------- the cohort
    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        """Results in cohort order, computed by the workers.

        Raises:
            InterlearnError: a worker died.
            Exception: whatever the client update raised, with its type.
        """
        setup = self.bound()
        check_task(task)
        if not self._procs:
            raise ConfigError("the multicore engine was stopped: call start() again")
        self._publish(task.params)
        sizes = setup.population.sizes
        costs = [float(sizes[c]) for c in task.clients]
        plan = [ix for ix in assign_clients(costs, len(self._procs)) if ix]
        for w, ix in enumerate(plan):
            ids = [task.clients[i] for i in ix]
            msg = (
                "run",
                task.round,
                ids,
                {c: task.client_states.get(c) for c in ids},
                task.server_extras,
                [task.generators[i].get_state() for i in ix],
                task.client_round,
                task.client_update,  # this round's (scheduled) client update; None: the workers' own
            )
            self._conns[w].send(msg)
        by_index: dict[int, tuple[ClientResult, Params | None]] = {}
        dropped: list[ClientId] = []
        contexts: dict[ClientId, tuple[dict[str, Any], list[str]]] = {}
        for w, (packed, gen_states, lost, ctxs) in zip(range(len(plan)), self._gather(range(len(plan)))):
            ix = plan[w]
            for i, st in zip(ix, gen_states):
                task.generators[i].set_state(st)
            position = {task.clients[i]: i for i in ix}
            for res in _unpack(packed):
                by_index[position[res[0].client_id]] = res
            dropped += lost
            contexts.update(ctxs)
        return CohortOutcome([by_index[i] for i in sorted(by_index)], dropped, contexts)

    def __repr__(self) -> str:
        return f"MultiCoreEngine(workers={self.workers}, inner={self.inner!r})"


def _inner_for(setup: EngineSetup) -> str:
    return "vectorized" if closed_form_reason(setup.model, setup.client_update) is None else "sequential"
