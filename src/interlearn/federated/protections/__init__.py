"""Protections: update steps and aggregators that defend the run or its clients.

Differential privacy (:mod:`.privacy`: clipping, Gaussian noise and its accountant, DP-SGD, an
empirical audit), secure aggregation (:mod:`.secagg`, needs ``interlearn[privacy]``), robust
aggregators (:class:`Median`, :class:`TrimmedMean`, :class:`Krum`, :class:`NormBound`,
:class:`Bulyan`), update validation, compression, and simulated attacks to test them with.
"""

from typing import TYPE_CHECKING, Any

from interlearn.federated.protections.attacks import AttackStep
from interlearn.federated.protections.bulyan import Bulyan
from interlearn.federated.protections.compression import CompressUpdates
from interlearn.federated.protections.privacy import (
    CanaryAudit,
    ClipUpdates,
    DPSGDClientUpdate,
    GaussianNoise,
    PrivacyAccountant,
    PrivacyBudgetExhausted,
    dp_fedavg_steps,
    dp_noise,
)
from interlearn.federated.protections.robust import Krum, Median, NormBound, TrimmedMean
from interlearn.federated.protections.validation import ValidateUpdates

if TYPE_CHECKING:
    from interlearn.federated.protections.secagg import SecureAggregation


def __getattr__(name: str) -> Any:
    # Secure aggregation needs the optional `cryptography` package (interlearn[privacy]), so it
    # is imported when first asked for, and `import interlearn.federated` works without it.
    if name == "SecureAggregation":
        from interlearn.federated.protections.secagg import SecureAggregation

        return SecureAggregation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AttackStep",
    "Bulyan",
    "CanaryAudit",
    "ClipUpdates",
    "CompressUpdates",
    "DPSGDClientUpdate",
    "GaussianNoise",
    "Krum",
    "Median",
    "NormBound",
    "PrivacyAccountant",
    "PrivacyBudgetExhausted",
    "SecureAggregation",
    "TrimmedMean",
    "ValidateUpdates",
    "dp_fedavg_steps",
    "dp_noise",
]
