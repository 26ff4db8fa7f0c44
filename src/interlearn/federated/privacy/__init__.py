"""Differential privacy for federated learning: clipping, Gaussian noise, accounting, DP-SGD.

Compose the steps around any strategy (clip -> noise -> aggregate)::

    clip = ClipUpdates(max_norm=1.0)
    noise = GaussianNoise(clip, noise_multiplier=1.0, sample_rate=0.1,
                          accountant=PrivacyAccountant(delta=1e-5, target_epsilon=8.0))
    steps = [clip, noise]           # clients clip; the server releases a noised mean

:func:`dp_fedavg_steps` builds that pair in one call.
"""

from __future__ import annotations

from interlearn.federated.privacy.accounting import ACCOUNTANTS, PrivacyAccountant, PrivacyBudgetExhausted
from interlearn.federated.privacy.clipping import ClipUpdates, adaptive_clip_norm, clip_update, global_norm
from interlearn.federated.privacy.cohort import AGGREGATE_ID, is_aggregate, mean_result, num_clients
from interlearn.federated.privacy.dpsgd import DPSGDClientUpdate
from interlearn.federated.privacy.noise import GaussianNoise, add_gaussian_noise, update_noise_multiplier

__all__ = [
    "ACCOUNTANTS",
    "AGGREGATE_ID",
    "ClipUpdates",
    "DPSGDClientUpdate",
    "GaussianNoise",
    "PrivacyAccountant",
    "PrivacyBudgetExhausted",
    "adaptive_clip_norm",
    "add_gaussian_noise",
    "clip_update",
    "dp_fedavg_steps",
    "global_norm",
    "is_aggregate",
    "mean_result",
    "num_clients",
    "update_noise_multiplier",
]


def dp_fedavg_steps(
    *,
    clip_norm: float,
    noise_multiplier: float,
    sample_rate: float,
    delta: float = 1e-5,
    target_epsilon: float | None = None,
    mode: str = "central",
    adaptive: bool = False,
    target_quantile: float = 0.5,
    clip_learning_rate: float = 0.2,
    count_noise_std: float = 0.0,
    accountant: str = "rdp",
) -> list[ClipUpdates | GaussianNoise]:
    """The DP-FedAvg pair ``[ClipUpdates, GaussianNoise]`` with an Opacus accountant.

    Args:
        clip_norm: clip norm (initial one when ``adaptive``).
        noise_multiplier: ``z`` of the Gaussian mechanism.
        sample_rate: ``clients_per_round / population``.
        delta: delta of the reported (epsilon, delta).
        target_epsilon: stop training before a round would exceed it (``None``: never).
        mode: ``"central"`` or ``"local"``.
        adaptive, target_quantile, clip_learning_rate, count_noise_std: adaptive clipping
            (Andrew et al. 2021); see :class:`ClipUpdates`.
        accountant: ``"rdp"``, ``"prv"`` or ``"gdp"``.

    Returns:
        The two steps, in the order they go into the round loop's step list.
    """
    clip = ClipUpdates(
        clip_norm,
        adaptive=adaptive,
        target_quantile=target_quantile,
        learning_rate=clip_learning_rate,
        count_noise_std=count_noise_std,
    )
    acc = PrivacyAccountant(delta=delta, kind=accountant, target_epsilon=target_epsilon)
    return [clip, GaussianNoise(clip, noise_multiplier, mode=mode, sample_rate=sample_rate, accountant=acc)]
