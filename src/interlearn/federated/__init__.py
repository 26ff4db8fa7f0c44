"""Federated learning: the data stays on the clients, only updates reach the server.

The pieces (each one small and replaceable; interfaces in :mod:`interlearn.federated.api`)::

    population = Population(x, y, partition("shards", y, num_clients=100, classes_per_client=2))
    result = simulate(model, population,
                      client_update=LocalSGD(epochs=1, batch_size=10, lr=0.1),
                      strategy=get_strategy("fedavg"),
                      config=SimulationConfig(rounds=20, clients_per_round=10, seed=0),
                      test=(x_test, y_test), run_dir="runs/fedavg")    # engine="auto" picks the fastest

How to plug things in:

* **An UpdateStep** (clipping, noise, compression, validation, secure aggregation) is any object
  with ``name`` and three hooks: ``client(result, ctx) -> result`` runs on each client's
  :class:`ClientResult` (client side, in list order); ``server(results, ctx) -> results`` runs
  on the cohort's results before aggregation (reverse order, so it can undo client-side
  transforms; it may collapse them into one aggregate result); ``after(old, new, ctx) -> new``
  runs on the new global params. Pass them as ``simulate(..., steps=[clip, noise])``. Optional
  ``state_dict()/load_state_dict()`` make their state survive a resume; setting
  ``ctx.notes["stop"]`` ends the run after the round.
* **A strategy** is ``init(params) -> state`` + ``aggregate(params, results, state) -> (params,
  state)`` with ``state`` a flat tensor dict. Most are a :class:`ServerStrategy` =
  an **aggregator** (``__call__(results) -> delta``: the weighted mean by default; robust rules
  plug in here, e.g. ``get_strategy("fedadam", aggregator=my_median)``) + a **server optimizer**
  (``init``/``step(params, delta, state)``). Register new ones with ``register_strategy`` /
  ``register_aggregator`` so recipes can name them (``register_client_update`` and
  ``register_step`` do the same for client updates and update steps).
* **A client update** is written as one step (:class:`StepUpdate`: ``objective`` + ``apply``,
  the optimizer's math, see :class:`LocalSGD`, :class:`ScaffoldClient`); every engine runs
  that step. Any callable ``(model, params, data, client_state, server_extras, generator) ->
  (ClientResult, new_state)`` also works, on every engine but ``vectorized``.
* **Protections** are update steps and aggregators, all exported here: clipping
  (:class:`ClipUpdates`), central or local Gaussian noise with its accountant
  (:class:`GaussianNoise`, :class:`PrivacyAccountant`, :func:`dp_fedavg_steps`, :func:`dp_noise`;
  example-level DP-SGD on each client: :class:`DPSGDClientUpdate`; an empirical audit:
  :class:`CanaryAudit`), validation (:class:`ValidateUpdates`), compression
  (:class:`CompressUpdates`), secure aggregation (:class:`SecureAggregation`), and robust
  aggregators (:class:`Median`, :class:`TrimmedMean`, :class:`Krum`, :class:`NormBound`,
  :class:`Bulyan`; by name through ``get_aggregator``). The ``federated`` recipe names them in
  its ``steps`` list and ``strategy.aggregator``.
* **Personalization** client updates: :class:`DittoUpdate`, :class:`FedPerUpdate`; on-device
  distillation: :class:`FedDistillUpdate`; q-FedAvg's client: :class:`QFFLClient`.
* **An engine** only schedules clients (:class:`Engine`: ``start(setup)``,
  ``run_cohort(task) -> CohortOutcome``, ...; subclass :class:`EngineBase` for the defaults and
  register it with ``register_engine``). ``auto`` (the default) picks the fastest of
  ``sequential`` (the reference), ``vectorized`` (batched steps over the stacked cohort),
  ``multicore`` (worker processes, one per core); ``ray`` scales out to machines.
"""

from typing import TYPE_CHECKING, Any

from interlearn.federated.aggregate import WeightedMean, weighted_mean
from interlearn.federated.api import (
    Aggregator,
    ClientData,
    ClientPopulation,
    ClientResult,
    ClientUpdate,
    CohortOutcome,
    CohortTask,
    Engine,
    EngineSetup,
    RoundContext,
    ServerOptimizer,
    Strategy,
    UpdateStep,
)
from interlearn.federated.bulyan import Bulyan
from interlearn.federated.client import LocalSGD, ScaffoldClient, StepContext, StepUpdate, batch_schedule, run_client
from interlearn.federated.client.registry import CLIENT_UPDATES, get_client_update, register_client_update
from interlearn.federated.comm import download_bytes, params_bytes, upload_bytes
from interlearn.federated.compression import CompressUpdates
from interlearn.federated.distill import FedDistillUpdate
from interlearn.federated.ditto import DittoUpdate
from interlearn.federated.engines import (
    ENGINES,
    AutoEngine,
    EngineBase,
    MultiCoreEngine,
    SequentialEngine,
    VectorizedEngine,
    get_engine,
    register_engine,
    run_cohort_on,
)
from interlearn.federated.evaluate import client_accuracies, evaluate_params, params_accuracy
from interlearn.federated.params import load_params, model_params
from interlearn.federated.partition import dirichlet, iid, natural, partition, partition_stats, quantity_skew, shards
from interlearn.federated.personalization import FedPerUpdate
from interlearn.federated.population import Population
from interlearn.federated.privacy import (
    CanaryAudit,
    ClipUpdates,
    CohortSampling,
    DPSGDClientUpdate,
    GaussianNoise,
    PrivacyAccountant,
    PrivacyBudgetExhausted,
    dp_fedavg_steps,
    dp_noise,
)
from interlearn.federated.robust import Krum, Median, NormBound, TrimmedMean
from interlearn.federated.simulation import SimulationConfig, SimulationResult, simulate
from interlearn.federated.strategies import (
    AGGREGATORS,
    STRATEGIES,
    QFFLClient,
    ServerStrategy,
    get_aggregator,
    get_strategy,
    known_aggregators,
    known_strategies,
    register_aggregator,
    register_strategy,
)
from interlearn.federated.synthetic import SyntheticPopulation
from interlearn.federated.update_steps import UPDATE_STEPS, get_step, register_step
from interlearn.federated.validation import ValidateUpdates

if TYPE_CHECKING:
    from interlearn.federated.secagg import SecureAggregation


def __getattr__(name: str) -> Any:
    # Secure aggregation needs the optional `cryptography` package (interlearn[privacy]), so it
    # is imported when first asked for, and `import interlearn.federated` works without it.
    if name == "SecureAggregation":
        from interlearn.federated.secagg import SecureAggregation

        return SecureAggregation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLIENT_UPDATES",
    "UPDATE_STEPS",
    "get_client_update",
    "get_step",
    "register_client_update",
    "register_step",
    "AGGREGATORS",
    "Aggregator",
    "AutoEngine",
    "Bulyan",
    "CanaryAudit",
    "ClientData",
    "ClientPopulation",
    "ClientResult",
    "ClientUpdate",
    "ClipUpdates",
    "CohortOutcome",
    "CohortSampling",
    "CohortTask",
    "CompressUpdates",
    "DPSGDClientUpdate",
    "DittoUpdate",
    "ENGINES",
    "Engine",
    "EngineBase",
    "EngineSetup",
    "FedDistillUpdate",
    "FedPerUpdate",
    "GaussianNoise",
    "Krum",
    "LocalSGD",
    "Median",
    "MultiCoreEngine",
    "NormBound",
    "Population",
    "PrivacyAccountant",
    "PrivacyBudgetExhausted",
    "QFFLClient",
    "RoundContext",
    "STRATEGIES",
    "ScaffoldClient",
    "SecureAggregation",
    "SequentialEngine",
    "ServerOptimizer",
    "ServerStrategy",
    "SimulationConfig",
    "SimulationResult",
    "StepContext",
    "StepUpdate",
    "SyntheticPopulation",
    "Strategy",
    "TrimmedMean",
    "UpdateStep",
    "ValidateUpdates",
    "VectorizedEngine",
    "WeightedMean",
    "batch_schedule",
    "client_accuracies",
    "dirichlet",
    "download_bytes",
    "dp_fedavg_steps",
    "dp_noise",
    "evaluate_params",
    "get_aggregator",
    "get_engine",
    "get_strategy",
    "iid",
    "known_aggregators",
    "known_strategies",
    "load_params",
    "model_params",
    "natural",
    "params_accuracy",
    "params_bytes",
    "partition",
    "partition_stats",
    "quantity_skew",
    "register_aggregator",
    "register_engine",
    "register_strategy",
    "run_client",
    "run_cohort_on",
    "shards",
    "simulate",
    "upload_bytes",
    "weighted_mean",
]
