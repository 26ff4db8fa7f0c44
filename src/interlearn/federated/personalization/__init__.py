"""Personalization: each user gets a model of their own.

Local fine-tuning and FedPer (:mod:`.local`), Ditto (:mod:`.ditto`), choosing per user between
the global, fine-tuned and interpolated models on validation data (:mod:`.select`), and a local
kNN memory over the model's features (:mod:`.memory`, kNN-Per).
"""

from interlearn.federated.personalization.ditto import DittoUpdate, ditto_trajectory
from interlearn.federated.personalization.local import (
    FedPerUpdate,
    PersonalizationReport,
    PersonalizeConfig,
    UserResult,
    finetune_params,
    personal_heads,
    personalize,
    plot_personalization,
)
from interlearn.federated.personalization.memory import Memory, MemoryConfig, MemoryUpdate, personalize_memory
from interlearn.federated.personalization.select import SelectConfig, SelectionReport, personalize_validated

__all__ = [
    "DittoUpdate",
    "FedPerUpdate",
    "Memory",
    "MemoryConfig",
    "MemoryUpdate",
    "PersonalizationReport",
    "PersonalizeConfig",
    "SelectConfig",
    "SelectionReport",
    "UserResult",
    "ditto_trajectory",
    "finetune_params",
    "personal_heads",
    "personalize",
    "personalize_memory",
    "personalize_validated",
    "plot_personalization",
]
