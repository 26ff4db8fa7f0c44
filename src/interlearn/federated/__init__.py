"""Federated learning: the data stays on the clients, only updates reach the server.

The pieces (each one small and replaceable; interfaces in :mod:`interlearn.federated.api`)::

    population = Population(x, y, partition("shards", y, num_clients=100, classes_per_client=2))
    result = simulate(model, population,
                      client_update=LocalSGD(epochs=1, batch_size=10, lr=0.1),
                      strategy=get_strategy("fedavg"),
                      config=SimulationConfig(rounds=20, clients_per_round=10, seed=0),
                      test=(x_test, y_test), run_dir="runs/fedavg")    # engine="auto" picks the fastest

How to plug things in:

* **An UpdateStep** (clipping, noise, compression, validation, secure aggregation) subclasses
  :class:`UpdateStep` and overrides some of three hooks (each defaults to the identity):
  ``client(result, ctx) -> result`` runs on each client's :class:`ClientResult` (client side, in
  list order); ``server(results, ctx) -> results`` runs on the cohort's results before
  aggregation (reverse order, so it can undo client-side transforms; it may collapse them into
  one aggregate result); ``after(old, new, ctx) -> new`` runs on the new global params. Pass
  them as ``simulate(..., steps=[clip, noise])``. ``state_dict()/load_state_dict()`` make their
  state survive a resume; the capabilities (``sampling``, ``releases_every_round``,
  ``needs_channel``) are declared on the class; setting ``ctx.stop`` ends the run after the
  round. ``ctx.notes`` carries only what goes into the round's record.
* **The round loop** is a :class:`Server` (``init() -> state``, ``round(state) -> (state,
  record)``); :func:`simulate` is a short loop over it with :class:`Callback` objects for the
  run folder, checkpoints, progress, plots and tracking. Values that change with the round
  (client learning rate and epochs, cohort size, noise multiplier) take a :class:`Schedule`.
* **A strategy** subclasses :class:`Strategy`: ``init(params) -> state`` + ``aggregate(params,
  results, state) -> (params, state)`` with ``state`` a flat tensor dict (``server_extras(state)``
  defaults to nothing sent with the model). Most are a :class:`ServerStrategy` =
  an **aggregator** (``__call__(results) -> delta``: the weighted mean by default; robust rules
  plug in here, e.g. ``get_strategy("fedadam", aggregator=my_median)``) + a **server optimizer**
  (``init``/``step(params, delta, state)``). Register new ones with ``register_strategy`` /
  ``register_aggregator`` so recipes can name them (``register_client_update`` and
  ``register_step`` do the same for client updates and update steps).
* **A client update** is written as one step (:class:`StepUpdate`: ``objective`` + ``apply``,
  the optimizer's math, see :class:`LocalSGD`, :class:`ScaffoldClient`); every engine runs
  that step. Any callable ``(model, params, data, client_state, server_extras, generator) ->
  (ClientResult, new_state)`` also works, on every engine but ``vectorized``.
* **Protections** are update steps and aggregators, in :mod:`interlearn.federated.protections`: clipping
  (:class:`ClipUpdates`), central or local Gaussian noise with its accountant
  (:class:`GaussianNoise`, :class:`PrivacyAccountant`, :func:`dp_fedavg_steps`, :func:`dp_noise`;
  example-level DP-SGD on each client: :class:`DPSGDClientUpdate`; an empirical audit:
  :class:`CanaryAudit`), validation (:class:`ValidateUpdates`), compression
  (:class:`CompressUpdates`), secure aggregation (:class:`SecureAggregation`), and robust
  aggregators (:class:`Median`, :class:`TrimmedMean`, :class:`Krum`, :class:`NormBound`,
  :class:`Bulyan`; by name through ``get_aggregator``). The ``federated`` recipe names them in
  its ``steps`` list and ``strategy.aggregator``.
* **Personalization** (:mod:`interlearn.federated.personalization`): :class:`DittoUpdate`,
  :class:`FedPerUpdate`, local fine-tuning, a local memory; on-device distillation:
  :class:`FedDistillUpdate` (:mod:`interlearn.federated.client`); q-FedAvg's client:
  :class:`QFFLClient` (:mod:`interlearn.federated.strategies`).
* **An engine** only schedules clients (:class:`Engine`: ``start(setup)``,
  ``run_cohort(task) -> CohortOutcome``, ...; subclass :class:`EngineBase` from
  :mod:`interlearn.federated.engines` for the defaults and register it with ``register_engine``). ``auto`` (the default) picks the fastest of
  ``sequential`` (the reference), ``vectorized`` (batched steps over the stacked cohort),
  ``multicore`` (worker processes, one per core); ``ray`` scales out to machines.
"""

from interlearn._moved import install as _install_moved
from interlearn.federated.api import (
    Aggregator,
    ClientResult,
    ClientUpdate,
    Engine,
    RoundContext,
    ServerOptimizer,
    Strategy,
    UpdateStep,
)
from interlearn.federated.client import LocalSGD, ScaffoldClient, StepUpdate
from interlearn.federated.client.registry import register_client_update
from interlearn.federated.engines import get_engine, register_engine
from interlearn.federated.params import model_params
from interlearn.federated.partition import partition, partition_stats
from interlearn.federated.population import Population
from interlearn.federated.schedule import Schedule
from interlearn.federated.server.callbacks import Callback
from interlearn.federated.server.evaluate import evaluate_params
from interlearn.federated.server.loop import Server
from interlearn.federated.server.simulation import SimulationConfig, SimulationResult, simulate
from interlearn.federated.strategies import (
    ServerStrategy,
    get_aggregator,
    get_strategy,
    register_aggregator,
    register_strategy,
)
from interlearn.federated.synthetic import SyntheticPopulation
from interlearn.federated.update_steps import register_step

# Modules moved in 0.x (issue 21): their old paths import, with a DeprecationWarning, for one release.
MOVED = {
    f"interlearn.federated.{old}": f"interlearn.federated.{new}"
    for old, new in {
        "simulation": "server.simulation",
        "sampling": "server.sampling",
        "comm": "server.comm",
        "evaluate": "server.evaluate",
        "client_steps": "client.hooks",
        "lora": "client.lora_update",
        "distill": "client.distill_update",
        "aggregate": "strategies.aggregate",
        "privacy": "protections.privacy",
        "secagg": "protections.secagg",
        "robust": "protections.robust",
        "bulyan": "protections.bulyan",
        "validation": "protections.validation",
        "compression": "protections.compression",
        "attacks": "protections.attacks",
        "personal_select": "personalization.select",
        "memory": "personalization.memory",
        "ditto": "personalization.ditto",
    }.items()
}
_install_moved(MOVED)

__all__ = [
    "Aggregator",
    "Callback",
    "ClientResult",
    "ClientUpdate",
    "Engine",
    "LocalSGD",
    "Population",
    "RoundContext",
    "Schedule",
    "ScaffoldClient",
    "Server",
    "ServerOptimizer",
    "ServerStrategy",
    "SimulationConfig",
    "SimulationResult",
    "StepUpdate",
    "Strategy",
    "SyntheticPopulation",
    "UpdateStep",
    "evaluate_params",
    "get_aggregator",
    "get_engine",
    "get_strategy",
    "model_params",
    "partition",
    "partition_stats",
    "register_aggregator",
    "register_client_update",
    "register_engine",
    "register_step",
    "register_strategy",
    "simulate",
]
