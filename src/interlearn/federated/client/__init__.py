"""Client updates: :class:`LocalSGD` (FedAvg / FedProx) and :class:`ScaffoldClient`."""

from interlearn.federated.client.local_sgd import LocalSGD, batch_schedule, cross_entropy
from interlearn.federated.client.scaffold import ScaffoldClient

__all__ = ["LocalSGD", "ScaffoldClient", "batch_schedule", "cross_entropy"]
