"""The federated interfaces every strategy, client update, update step and engine implements.

The shape follows DESIGN.md: server-side aggregation is a pure ``init``/``aggregate`` pair
over parameter dictionaries (optax-style, STYLE.md #1); the local training a client runs is a
``ClientUpdate``; protections (clipping, noise, compression, validation, secure aggregation)
are ``UpdateStep``s composed around the strategy (STYLE.md #2); engines only decide *where*
client updates run (STYLE.md #11).

A strategy is normally an :class:`Aggregator` (how the cohort's updates are combined into one
update: weighted mean, median, trimmed mean, Krum, ...) followed by a :class:`ServerOptimizer`
(how that combined update moves the global params: plain SGD for FedAvg, momentum for FedAvgM,
Adam/Yogi/Adagrad for FedOpt); ``interlearn.federated.strategies.ServerStrategy`` glues the two.

State that must survive a checkpoint is a flat ``Params`` dict of tensors (strategy state,
client state); update steps with state override ``state_dict()``/``load_state_dict()``
(JSON-serializable dicts).

Every capability the round loop uses is declared here with its default: subclass the protocol
(``class MyStep(UpdateStep)``, ``class MyRule(Aggregator)``, ``class MyStrategy(Strategy)``)
and override what differs. The round loop never probes for optional attributes, and control
travels in typed fields of :class:`RoundContext` (``stop``, ``global_params``, ``sampling``,
``bytes_up``); ``ctx.notes`` holds only what goes into the round's record.

Data boundary: an engine hands a client's raw data only to that client's ``ClientUpdate``.
Everything the server side receives is a ``ClientResult`` (update tensors, a weight, metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from interlearn.types import ClientId, Params

if TYPE_CHECKING:
    from interlearn.federated.server.sampling import CohortSampling

__all__ = [
    "ClientPopulation",
    "CohortOutcome",
    "CohortTask",
    "EngineSetup",
    "ClientData",
    "ClientResult",
    "ClientUpdate",
    "Strategy",
    "UpdateStep",
    "Engine",
    "RoundContext",
    "Aggregator",
    "ServerOptimizer",
]


@dataclass(frozen=True)
class ClientData:
    """One client's local data. Only the client's own ``ClientUpdate`` ever reads ``x``/``y``.

    Attributes:
        client_id: the client's index in the population.
        x: inputs, first dimension = examples.
        y: targets, first dimension = examples.
    """

    client_id: ClientId
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@runtime_checkable
class ClientPopulation(Protocol):
    """A federated population as the round loop and the engines see it: how many clients, how
    many examples each holds, and one client's data on demand.

    Implemented by :class:`~interlearn.federated.population.Population` (index views over one
    dataset), :class:`~interlearn.federated.synthetic.SyntheticPopulation` (data generated
    lazily from per-client seeds, millions of clients) and the Flower server's
    ``RemotePopulation`` (ids and sizes only). Nothing else is read from a population: code that
    needs the whole dataset (label-flipping attacks) takes a ``Population`` by name.
    """

    def __len__(self) -> int:
        """The number of clients; their ids are ``0..len-1``."""
        ...

    @property
    def sizes(self) -> torch.Tensor:
        """Examples per client, (clients,) int64 (cheap: no client data is built)."""
        ...

    def client(self, cid: ClientId) -> ClientData:
        """Client ``cid``'s data, materialized (only this client's examples)."""
        ...


@dataclass(frozen=True)
class ClientResult:
    """What one client sends back to the server: never raw data.

    Attributes:
        client_id: who sent it.
        update: ``local_params - global_params`` (after client-side steps such as clipping or
            compression have been applied), keyed like the global params.
        weight: aggregation weight, normally the number of local training examples.
        metrics: scalar training metrics (loss, accuracy, steps, ...).
        extras: additional tensors uploaded for the strategy (e.g. SCAFFOLD's control-variate
            delta); empty when the strategy needs none.
    """

    client_id: ClientId
    update: Params
    weight: float
    metrics: dict[str, float] = field(default_factory=dict)
    extras: Params = field(default_factory=dict)


@dataclass
class RoundContext:
    """Per-round information shared by steps and strategies: the round index, a seeded
    generator, a log of rejected/skipped events, ``notes`` (numbers and strings that end up in
    the round's record, nothing else), and the round's typed control fields:

    * ``global_params``: the round's global params (set by the round loop; steps that validate
      keys/shapes/dtypes or release noise without any client result use them);
    * ``sampling``: how the round loop draws the cohort (privacy steps check their accounting
      against it);
    * ``stop``: a step sets it to a message to end the run after this round (a spent privacy
      budget); the loop also sets it when the time budget is spent;
    * ``bytes_up``: a step that knows what really crossed the network this round (secure
      aggregation: masked vectors and protocol messages) sets it; the record's ``bytes_up`` is
      then this number instead of the size of the results;
    * ``expected_clients``: the fixed denominator of this round's DP release (central noise sets
      it; adaptive clipping divides its unclipped count by it).

    Client hooks get a per-client context (:func:`interlearn.federated.client.hooks.client_context`):
    the generator is the client's own, ``memory`` is that client's persistent step state (it
    lives with the client: in the round loop's checkpoint, or on the Flower node), and what
    they write to ``notes``/``log`` is merged into the round's context (numbers summed).
    ``on_device`` is true when the hook runs on a real remote device (a Flower node).

    ``channel`` (server side, engines with remote clients only) sends one protocol message to
    each of some clients and returns the replies of those that answered (see
    :data:`interlearn.federated.protections.secagg.remote.Channel`): secure aggregation runs its extra
    rounds over it."""

    round: int
    generator: torch.Generator
    log: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    memory: Params = field(default_factory=dict)
    on_device: bool = False
    channel: Any = None
    global_params: Params | None = None
    sampling: CohortSampling | None = None
    stop: str | None = None
    bytes_up: int | None = None
    expected_clients: float | None = None


@runtime_checkable
class Aggregator(Protocol):
    """Combines the cohort's (post-processed) results into ONE update (a ``Params`` delta).

    The default is the example-weighted mean (:class:`~interlearn.federated.strategies.aggregate.WeightedMean`);
    robust rules (median, trimmed mean, Krum) and secure sums implement the same call. Raise
    :class:`~interlearn.errors.RoundSkipped` when nothing can be aggregated.

    Subclass it for the default :attr:`uses_weights` (``True``); a rule that ignores
    ``ClientResult.weight`` (median, Krum) sets ``uses_weights = False``.
    """

    name: str

    @property
    def uses_weights(self) -> bool:
        """Whether ``ClientResult.weight`` changes the result (the default: yes)."""
        return True

    def __call__(self, results: Sequence[ClientResult]) -> Params: ...


@runtime_checkable
class ServerOptimizer(Protocol):
    """Applies a combined update to the global params: ``x <- opt(x, delta)`` (Reddi et al. 2021
    treat ``-delta`` as a pseudo-gradient). State is a flat ``Params`` dict (checkpointable)."""

    def init(self, params: Params) -> Params: ...

    def step(self, params: Params, delta: Params, state: Params) -> tuple[Params, Params]: ...


@runtime_checkable
class Strategy(Protocol):
    """Server-side aggregation: a pure function pair (state is returned, never mutated).

    ``state`` is a flat ``Params`` dict (possibly empty) so that any strategy can be
    checkpointed. Subclass it for the defaults: a strategy that sends tensors to the clients
    with the model (SCAFFOLD's server control variate) overrides :meth:`server_extras`.
    """

    def server_extras(self, state: Params) -> Params:
        """Tensors sent to every client with the model this round (default: none)."""
        return {}

    def init(self, params: Params) -> Params:
        """Return the initial server state for ``params`` (momentum buffers, control variates)."""
        ...

    def aggregate(
        self,
        params: Params,
        results: Sequence[ClientResult],
        state: Params,
    ) -> tuple[Params, Params]:
        """Combine the cohort's results into new global params and a new state."""
        ...


@runtime_checkable
class ClientUpdate(Protocol):
    """Local training on one client. Pure given its inputs: the engine supplies the global
    params, the client's data, the client's persistent state (or ``None``) and a generator."""

    def __call__(
        self,
        model: torch.nn.Module,
        params: Params,
        data: ClientData,
        client_state: Params | None,
        server_extras: Params,
        generator: torch.Generator,
    ) -> tuple[ClientResult, Params | None]:
        """Train locally and return the result to upload and the client's new private state."""
        ...


@runtime_checkable
class UpdateStep(Protocol):
    """A composable protection or transform around aggregation (clip, noise, compress,
    validate, secure aggregation). Client-side hooks run in order on each client's result;
    server-side hooks run in reverse order before the strategy; ``after`` runs on the
    new global params in order. Subclass it: every hook defaults to the identity and every
    capability to "no".

    Client hooks run on the client side of the boundary (the raw data is already gone: they
    see only the result and the client's own context: generator, ``memory``, notes); with the
    Flower engine they run on the node itself, after the server's ``state_dict()`` of each
    step has been loaded there. A step may set ``ctx.stop`` to a message to end the run after
    this round (e.g. a privacy budget is spent).

    Attributes:
        name: a label for logs and error messages.
        sampling: the cohort sampling this step accounts for (central DP), or ``None``; the
            round loop samples that way when ``SimulationConfig.sampling`` is ``None``.
        releases_every_round: the step must release an update every round, even an empty
            one (central DP: skipping a round would depend on who took part).
        needs_channel: the step's protocol needs more messages than the round's one (secure
            aggregation); an engine with remote clients must offer ``protocol_channel``.
    """

    name: str = "step"
    sampling: CohortSampling | None = None
    releases_every_round: bool = False
    needs_channel: bool = False

    def client(self, result: ClientResult, ctx: RoundContext) -> ClientResult:
        """Transform one client's result on the client (default: unchanged)."""
        return result

    def server(self, results: Sequence[ClientResult], ctx: RoundContext) -> list[ClientResult]:
        """Transform the cohort's results before the strategy (default: unchanged)."""
        return list(results)

    def after(self, old: Params, new: Params, ctx: RoundContext) -> Params:
        """Transform the new global params (default: unchanged)."""
        return new

    def state_dict(self) -> dict[str, Any] | None:
        """State that must survive a resume, JSON-serializable (default: none)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (default: nothing to restore)."""
        return None


@dataclass(frozen=True)
class EngineSetup:
    """What an engine is bound to for a whole run (:meth:`Engine.start`).

    Attributes:
        model: the architecture (a scratch vessel; its weights are overwritten by params).
        client_update: the local training every client runs.
        population: the clients' data (``population.client(cid)`` materializes one client; a
            lazy population generates it; a deployed population holds ids and sizes only).
        max_cohort: the largest cohort the run will hand over (engines may size buffers by it).
    """

    model: torch.nn.Module
    client_update: ClientUpdate
    population: ClientPopulation
    max_cohort: int = 0

    def same_run(self, other: EngineSetup) -> bool:
        """Whether ``other`` binds the very same model, client update and population (an
        engine already started for it need not start again)."""
        return (
            self.model is other.model
            and self.client_update is other.client_update
            and self.population is other.population
        )


@dataclass(frozen=True)
class CohortTask:
    """One round's work for an engine: the clients to train and what the server sends them.

    Attributes:
        round: the round index.
        params: the global params.
        clients: the ids of the clients to train, in cohort order.
        client_states: each client's private state (``None`` before its first round).
        server_extras: tensors the strategy sends with the model (SCAFFOLD's control variate).
        generators: one generator per client (its local batch order); engines leave each in
            the state local training left it.
        client_round: when the engine's clients run the update steps' client hooks themselves
            (``Engine.runs_client_steps``), the step states they need.
        client_update: this round's client update (its schedules resolved for the round);
            ``None``: the one the engine was started with.
    """

    round: int
    params: Params
    clients: Sequence[ClientId]
    client_states: dict[ClientId, Params | None]
    server_extras: Params
    generators: Sequence[torch.Generator]
    client_round: Any = None
    client_update: ClientUpdate | None = None


@dataclass
class CohortOutcome:
    """What an engine returns for a round.

    Attributes:
        results: ``(result, new client state)`` for every client that finished, in cohort order.
        dropped: clients lost on the way (a dead worker or node, a timeout).
        client_contexts: for clients that ran the update steps' client hooks themselves, the
            notes and log lines those hooks wrote, by client id.
        nodes: where each client ran, by client id, when the engine spreads clients over
            machines (a Ray node id); empty for in-process engines. The round's record counts
            clients per node (``engine_nodes``).
    """

    results: list[tuple[ClientResult, Params | None]]
    dropped: list[ClientId] = field(default_factory=list)
    client_contexts: dict[ClientId, tuple[dict[str, Any], list[str]]] = field(default_factory=dict)
    nodes: dict[ClientId, str] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """Where and how a cohort's client updates run (one after another, batched, on worker
    processes, on Ray, on Flower nodes). The same client update and strategy run on every
    engine; an engine only schedules. Every capability the round loop uses is declared here;
    :class:`interlearn.federated.engines.base.EngineBase` gives the defaults.

    Attributes:
        name: the engine's registry name.
        runs_client_steps: the engine's clients run the update steps' client hooks themselves
            (real devices); the round loop then sends the step states with the task
            (``CohortTask.client_round``) and reads the hooks' notes from the outcome.
    """

    name: str
    runs_client_steps: bool

    def start(self, setup: EngineSetup) -> None:
        """Bind to a run before its first round (start workers, warm up); idempotent."""
        ...

    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        """Train the task's clients; results in cohort order. An engine may leave out clients it
        lost (listed in ``CohortOutcome.dropped``): the round loop aggregates what it gets."""
        ...

    def protocol_channel(self, round_: int) -> Any:
        """A channel for multi-message protocols to the clients (secure aggregation on real
        devices), or ``None`` when the clients run in process."""
        ...

    def client_accuracies(
        self,
        model: torch.nn.Module,
        params: Params,
        population: ClientPopulation,
        clients: Sequence[ClientId] | None = None,
    ) -> dict[ClientId, float]:
        """Each client's accuracy of ``params`` on its own data (only the numbers leave)."""
        ...

    def describe(self) -> str:
        """One line for the run log: the engine and what it decided (``auto``'s choice)."""
        ...

    def stop(self) -> None:
        """Release workers and other resources (the engine can be started again)."""
        ...
