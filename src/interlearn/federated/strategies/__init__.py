"""Server strategies: an aggregator + a server optimizer (see ``base.py``), by name via
:func:`get_strategy`."""

from interlearn.federated.strategies.aggregate import WeightedMean, weighted_mean
from interlearn.federated.strategies.base import ServerStrategy, server_extras
from interlearn.federated.strategies.fedavg import ServerSGD, fedavg, fedavgm
from interlearn.federated.strategies.fedopt import ServerAdaptive, fedadagrad, fedadam, fedyogi
from interlearn.federated.strategies.qfedavg import QFedAvg, QFFLClient, qfedavg
from interlearn.federated.strategies.registry import (
    AGGREGATORS,
    STRATEGIES,
    get_aggregator,
    get_strategy,
    known_aggregators,
    known_strategies,
    register_aggregator,
    register_strategy,
)
from interlearn.federated.strategies.scaffold import Scaffold, scaffold

__all__ = [
    "AGGREGATORS",
    "STRATEGIES",
    "QFFLClient",
    "QFedAvg",
    "Scaffold",
    "ServerAdaptive",
    "ServerSGD",
    "ServerStrategy",
    "WeightedMean",
    "fedadagrad",
    "fedadam",
    "fedavg",
    "fedavgm",
    "fedyogi",
    "get_aggregator",
    "get_strategy",
    "known_aggregators",
    "known_strategies",
    "qfedavg",
    "register_aggregator",
    "register_strategy",
    "scaffold",
    "server_extras",
    "weighted_mean",
]
