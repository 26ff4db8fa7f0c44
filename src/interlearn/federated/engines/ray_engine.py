"""The Ray engine: each client update of a cohort runs as a Ray task, on local cores or a cluster.

Ray (Moritz et al. 2018, "Ray: A Distributed Framework for Emerging AI Applications", OSDI)
schedules the tasks; the strategy, the client update and every update step are the same objects
the in-process engines use, so with the same seed the Ray engine's model equals the sequential
engine's (the client update is deterministic given its inputs and its generator's state, and both
run it single-threaded).

How it maps onto Ray:

* ``ray.init()`` is called once, on the first cohort (or by :meth:`RayEngine.start`), locally with
  ``num_cpus`` cores or against ``address`` (``"auto"``, ``"head:6379"`` or
  ``"ray://head:10001"``) for a cluster started with ``ray start``. Start-up is paid once per run,
  not per round.
* Tasks are scheduled with Ray's ``"SPREAD"`` strategy by default, so a cohort spreads over the
  cluster's nodes rather than filling the driver's node first; each result comes back with the id
  of the node that computed it (``CohortOutcome.nodes``; the round's record counts clients per
  node under ``engine_nodes``).
* The model and the client update are put in Ray's object store once per run; each client's data
  is put once (the first time the client is sampled); the global params once per round. Tasks
  receive object references, so nothing is re-serialized per client. The model is therefore
  shipped as it was at the first cohort: tensors the client update does not overwrite from the
  global params (a frozen pretrained base) must not change during a run; a different model
  object is shipped anew.
* Client state (SCAFFOLD's control variate, ...) is passed to the task and the new state returned,
  exactly like the sequential engine does, so stateful clients keep their state across rounds
  even when their next round lands on another worker or machine.
* The generator's state travels with the task and the advanced state is copied back into the
  caller's generator, so the caller sees exactly what an in-process engine would leave behind.
* A lost worker or node (``WorkerCrashedError``, ``NodeDiedError``, lost objects) or a client
  slower than ``timeout_s`` is a *dropout*: the client is left out of the cohort's results and
  listed in the outcome's ``dropped``; the run continues. An exception raised by the client
  update itself is a bug or a rejected input and is re-raised with its original type.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import (
    ClientData,
    ClientPopulation,
    ClientResult,
    ClientUpdate,
    CohortOutcome,
    CohortTask,
    EngineSetup,
)
from interlearn.federated.engines.base import EngineBase, check_task, task_update
from interlearn.types import ClientId, Params

__all__ = ["RayEngine"]

log = logging.getLogger(__name__)


def _run_client(
    model: torch.nn.Module,
    client_update: ClientUpdate,
    params: Params,
    data: ClientData,
    client_state: Params | None,
    server_extras: Params,
    generator_state: torch.Tensor,
    num_threads: int,
) -> tuple[ClientResult, Params | None, torch.Tensor, str]:
    """Body of the Ray task: one client's local update, on whichever worker Ray picks; returns
    the id of the node it ran on too."""
    import ray

    torch.set_num_threads(num_threads)
    generator = torch.Generator()
    generator.set_state(generator_state)
    result, new_state = client_update(model, params, data, client_state, server_extras, generator)
    return result, new_state, generator.get_state(), str(ray.get_runtime_context().get_node_id())


def _warm() -> int:
    """A no-op task: loading this module on a worker imports torch and interlearn there."""
    import interlearn.federated.client  # noqa: F401  (the usual client updates)

    return torch.get_num_threads()


class RayEngine(EngineBase):
    """Runs a cohort's client updates as Ray tasks (see the module docstring).

    Args:
        address: ``None`` starts a local Ray instance; ``"auto"`` joins the cluster this machine
            belongs to (``ray start --head`` / ``ray start --address=...``); ``"ray://host:10001"``
            connects through Ray Client.
        num_cpus: cores of the local instance (``None``: all); ignored with ``address``.
        cpus_per_client: Ray CPU resources one client update requests.
        num_threads: torch threads inside a task (1 keeps results bitwise equal to the
            single-threaded sequential engine and avoids oversubscription).
        max_retries: Ray retries of a task whose worker died; 0 (default) turns a lost worker
            into a dropout immediately, as a lost device is in real federated learning.
        timeout_s: seconds to wait for a cohort; clients still running afterwards are
            cancelled and count as dropouts (``None``: wait for all).
        init_kwargs: extra keyword arguments for ``ray.init`` (``runtime_env``, ``namespace``,
            ...).
        warmup: at start-up, run one no-op task per schedulable slot so worker processes are
            started and have imported torch before the first round (start-up is then paid in
            :meth:`start`, not in round 1).
        scheduling: Ray's scheduling strategy for the client tasks: ``"SPREAD"`` (default:
            over every node of a cluster) or ``"DEFAULT"`` (Ray's hybrid policy, which fills
            the local node first).

    Raises:
        ConfigError: on a non-positive ``num_cpus``, ``cpus_per_client``, ``num_threads`` or
            ``timeout_s``, a negative ``max_retries``, or an unknown ``scheduling``.

    Example:
        >>> engine = RayEngine(num_cpus=2)            # local
        >>> engine = RayEngine(address="auto")        # on a cluster started with `ray start`
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_client: float = 1.0,
        num_threads: int = 1,
        max_retries: int = 0,
        timeout_s: float | None = None,
        init_kwargs: dict[str, Any] | None = None,
        warmup: bool = True,
        scheduling: str = "SPREAD",
    ) -> None:
        super().__init__()
        if num_cpus is not None and num_cpus < 1:
            raise ConfigError(f"num_cpus={num_cpus}: must be >= 1 or None (all cores)")
        if not cpus_per_client > 0:
            raise ConfigError(f"cpus_per_client={cpus_per_client}: must be > 0")
        if num_threads < 1:
            raise ConfigError(f"num_threads={num_threads}: must be >= 1")
        if max_retries < 0:
            raise ConfigError(f"max_retries={max_retries}: must be >= 0")
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigError(f"timeout_s={timeout_s}: must be > 0 or None")
        if scheduling not in ("SPREAD", "DEFAULT"):
            raise ConfigError(f"scheduling={scheduling!r}: choose 'SPREAD' or 'DEFAULT'")
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_client = float(cpus_per_client)
        self.num_threads = int(num_threads)
        self.max_retries = int(max_retries)
        self.timeout_s = timeout_s
        self.init_kwargs = dict(init_kwargs or {})
        self.warmup = warmup
        self.scheduling = scheduling
        self.startup_seconds: float | None = None
        self._owns_ray = False
        self._task: Any = None
        # Object-store references cached for the run: (object, ref) so the id stays valid.
        self._model_ref: tuple[Any, Any] | None = None
        self._update_ref: tuple[Any, Any] | None = None
        self._data_refs: dict[ClientId, tuple[Any, Any]] = {}

    # ----------------------------------------------------------------- lifecycle
    def start(self, setup: EngineSetup | None = None) -> None:
        """Connect to (or start) Ray once (later calls only rebind the run). Sets ``startup_seconds``."""
        if setup is not None:
            EngineBase.start(self, setup)
        if self._task is not None:
            return
        try:
            import ray
        except ImportError as exc:  # optional dependency
            raise ConfigError("the ray engine needs Ray: pip install 'interlearn[federated]' (or ray>=2.40)") from exc
        t0 = time.perf_counter()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            kwargs.update(self.init_kwargs)
            if self.address is not None:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.num_cpus, **kwargs)
            self._owns_ray = True
        self._task = ray.remote(_run_client).options(
            num_cpus=self.cpus_per_client, max_retries=self.max_retries, scheduling_strategy=self.scheduling
        )
        if self.warmup:
            slots = int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_client)
            warm = ray.remote(_warm).options(num_cpus=self.cpus_per_client)
            ray.get([warm.remote() for _ in range(max(1, min(slots, 64)))])
        self.startup_seconds = time.perf_counter() - t0

    def stop(self) -> None:
        """Drop cached objects; stop Ray if this engine started it."""
        self.shutdown()

    def shutdown(self) -> None:
        """Drop cached objects; stop Ray if this engine started it."""
        self._model_ref = self._update_ref = None
        self._data_refs.clear()
        self._task = None
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> RayEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ----------------------------------------------------------------- object store
    def _cached(self, slot: tuple[Any, Any] | None, obj: Any) -> tuple[Any, Any]:
        import ray

        if slot is not None and slot[0] is obj:
            return slot
        return (obj, ray.put(obj))

    def _data_ref(self, population: ClientPopulation, cid: ClientId) -> Any:
        """The client's data in the object store, put once per population and client."""
        import ray

        hit = self._data_refs.get(cid)
        if hit is None or hit[0] is not population:
            data: ClientData = population.client(cid)
            hit = (population, ray.put(data))
            self._data_refs[cid] = hit
        return hit[1]

    # ----------------------------------------------------------------- the cohort
    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        """Run the client update of every client of ``task`` as a Ray task.

        Returns:
            ``(result, new_client_state)`` for every client that finished, in cohort order;
            clients lost to a dead worker/node or the timeout are listed in ``dropped``.

        Raises:
            ConfigError: when the task's clients and generators differ in length.
            Exception: whatever the client update raised, with its original type.
        """
        setup = self.bound()
        check_task(task)
        self.start()
        refs = self._submit(setup, task)
        return self._collect(task, refs, self._late(refs))

    def _submit(self, setup: EngineSetup, task: CohortTask) -> list[Any]:
        """One Ray task per client; the model, update, parameters and data go through the object store."""
        import ray

        self._model_ref = self._cached(self._model_ref, setup.model)
        self._update_ref = self._cached(self._update_ref, task_update(setup, task))
        params_ref = ray.put({k: v.detach() for k, v in task.params.items()})
        extras_ref = ray.put(dict(task.server_extras))
        return [
            self._task.remote(
                self._model_ref[1],
                self._update_ref[1],
                params_ref,
                self._data_ref(setup.population, cid),
                task.client_states.get(cid),
                extras_ref,
                gen.get_state(),
                self.num_threads,
            )
            for cid, gen in zip(task.clients, task.generators)
        ]

    def _late(self, refs: list[Any]) -> set[int]:
        """The ids of the refs still running at the timeout (cancelled); none without one."""
        import ray

        if self.timeout_s is None:
            return set()
        _, pending = ray.wait(refs, num_returns=len(refs), timeout=self.timeout_s)
        for ref in pending:
            ray.cancel(ref, force=True)
        return {id(r) for r in pending}

    def _collect(self, task: CohortTask, refs: list[Any], late: set[int]) -> CohortOutcome:
        """Every finished client's result, in cohort order; late or lost clients are dropouts."""
        import ray
        from ray import exceptions as rex

        lost = (
            rex.WorkerCrashedError,
            rex.NodeDiedError,
            rex.ObjectLostError,
            rex.LocalRayletDiedError,
            rex.RaySystemError,
            rex.TaskCancelledError,
            rex.OutOfMemoryError,
        )
        out: list[tuple[ClientResult, Params | None]] = []
        dropped: list[ClientId] = []
        nodes: dict[ClientId, str] = {}
        for cid, gen, ref in zip(task.clients, task.generators, refs):
            if id(ref) in late:
                log.warning("client %s: no result within %ss, counted as a dropout", cid, self.timeout_s)
                dropped.append(cid)
                continue
            try:
                result, new_state, gen_state, node = ray.get(ref)
            except rex.RayTaskError as err:  # the client update itself raised
                cause = err.as_instanceof_cause()
                raise cause from None
            except lost as err:
                log.warning("client %s: worker lost (%s), counted as a dropout", cid, type(err).__name__)
                dropped.append(cid)
                continue
            gen.set_state(gen_state)
            out.append((result, new_state))
            nodes[cid] = node
        return CohortOutcome(out, dropped, nodes=nodes)

    def describe(self) -> str:
        return f"ray ({self.address or 'local'}, {self.cpus_per_client:g} CPU per client, {self.scheduling})"

    def __repr__(self) -> str:
        return f"RayEngine(address={self.address!r}, num_cpus={self.num_cpus})"
