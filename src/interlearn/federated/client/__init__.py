"""Client updates: :class:`LocalSGD` (FedAvg / FedProx) and :class:`ScaffoldClient`, written as one
step (:class:`StepUpdate`) that every engine runs; on-device distillation
(:class:`FedDistillUpdate`); and the client side of the update steps (:mod:`.hooks`)."""

from interlearn.federated.client.distill_update import FedDistillUpdate
from interlearn.federated.client.local_sgd import LocalSGD, cross_entropy
from interlearn.federated.client.scaffold import ScaffoldClient
from interlearn.federated.client.step import StepContext, StepUpdate, batch_schedule, run_client

__all__ = [
    "FedDistillUpdate",
    "LocalSGD",
    "ScaffoldClient",
    "StepContext",
    "StepUpdate",
    "batch_schedule",
    "cross_entropy",
    "run_client",
]
