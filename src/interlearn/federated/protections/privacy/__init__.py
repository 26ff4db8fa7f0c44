"""Differential privacy for federated learning: clipping, Gaussian noise, accounting, DP-SGD.

Compose the steps around any strategy (clip -> noise -> aggregate)::

    clip = ClipUpdates(max_norm=1.0)
    noise = GaussianNoise(clip, noise_multiplier=1.0, sample_rate=0.1,
                          accountant=PrivacyAccountant(delta=1e-5, target_epsilon=8.0))
    steps = [clip, noise]           # clients clip; the server releases a noised mean

:func:`dp_fedavg_steps` builds that pair in one call; :func:`dp_noise` the noise step for a
given clip step (what the federated recipe's ``steps: [{clip: ...}, {dp: ...}]`` builds).
"""

from __future__ import annotations

from interlearn.errors import ConfigError
from interlearn.federated.protections.privacy.accounting import (
    ACCOUNTANTS,
    PrivacyAccountant,
    PrivacyBudgetExhausted,
    RoundEvent,
)
from interlearn.federated.protections.privacy.audit import AuditResult, CanaryAudit
from interlearn.federated.protections.privacy.clipping import ClipUpdates, adaptive_clip_norm, clip_update, global_norm
from interlearn.federated.protections.privacy.cohort import AGGREGATE_ID, is_aggregate, mean_result, num_clients
from interlearn.federated.protections.privacy.dpsgd import DPSGDClientUpdate
from interlearn.federated.protections.privacy.noise import (
    GaussianNoise,
    add_gaussian_noise,
    noisy_sum_mean,
    update_noise_multiplier,
)
from interlearn.federated.server.sampling import CohortSampling

__all__ = [
    "ACCOUNTANTS",
    "AGGREGATE_ID",
    "AuditResult",
    "CanaryAudit",
    "ClipUpdates",
    "CohortSampling",
    "DPSGDClientUpdate",
    "GaussianNoise",
    "PrivacyAccountant",
    "PrivacyBudgetExhausted",
    "RoundEvent",
    "adaptive_clip_norm",
    "add_gaussian_noise",
    "clip_update",
    "dp_fedavg_steps",
    "dp_noise",
    "global_norm",
    "is_aggregate",
    "mean_result",
    "noisy_sum_mean",
    "num_clients",
    "update_noise_multiplier",
]


def dp_fedavg_steps(
    *,
    clip_norm: float,
    noise_multiplier: float,
    population: int | None = None,
    clients_per_round: int | None = None,
    sample_rate: float | None = None,
    sampling: str = "poisson",
    delta: float = 1e-5,
    target_epsilon: float | None = None,
    mode: str = "central",
    adaptive: bool = False,
    target_quantile: float = 0.5,
    clip_learning_rate: float = 0.2,
    count_noise_std: float = 0.0,
    accountant: str | None = None,
) -> list[ClipUpdates | GaussianNoise]:
    """The DP-FedAvg pair ``[ClipUpdates, GaussianNoise]`` with its accountant.

    The default is the mechanism McMahan et al. 2018 analyse: Poisson client sampling at rate
    ``q = clients_per_round / population`` (add/remove adjacency), noise on the sum of clipped
    updates, the fixed denominator ``q * population``, Opacus' RDP accountant. The round loop
    samples the way these steps account (``SimulationConfig(sampling=None)`` follows them).

    Long because: a keyword-only facade over :class:`ClipUpdates` and :func:`dp_noise`; its
    length is the signature and the documented arguments, its body two calls.

    Args:
        clip_norm: clip norm (initial one when ``adaptive``).
        noise_multiplier: ``z`` of the Gaussian mechanism (std over the sensitivity).
        population: ``N``, the number of clients (central mode).
        clients_per_round: the expected cohort ``q N`` (or give ``sample_rate``).
        sample_rate: ``q`` instead of ``clients_per_round``.
        sampling: ``"poisson"`` (default) or ``"fixed"`` (sampling without replacement,
            replace-one adjacency, noise calibrated to ``2 * clip_norm``; needs
            ``accountant="dp_rdp"``, the default for it).
        delta: delta of the reported (epsilon, delta).
        target_epsilon: stop training before a round would exceed it (``None``: never).
        mode: ``"central"`` or ``"local"`` (no sampling arguments needed).
        adaptive: adapt the clip norm to a quantile of the update norms (Andrew et al. 2021);
            see :class:`ClipUpdates`.
        target_quantile: the quantile of the update norms the adaptive clip norm tracks.
        clip_learning_rate: the step size of the adaptive clip norm's geometric update.
        count_noise_std: the noise on the count of clipped updates that adapts the norm.
        accountant: ``"rdp"``, ``"prv"``, ``"gdp"`` (Opacus) or ``"dp_rdp"``, ``"dp_pld"``
            (dp-accounting); default ``"rdp"`` for Poisson and local, ``"dp_rdp"`` for fixed.

    Returns:
        The two steps, in the order they go into the round loop's step list.

    Raises:
        ConfigError: central mode without ``population`` and a rate, or a combination with no
            matching accountant (the message names the fix).

    Example:
        >>> steps = dp_fedavg_steps(clip_norm=1.0, noise_multiplier=1.0, population=100, clients_per_round=10)
    """
    clip = ClipUpdates(
        clip_norm,
        adaptive=adaptive,
        target_quantile=target_quantile,
        learning_rate=clip_learning_rate,
        count_noise_std=count_noise_std,
    )
    noise = dp_noise(
        clip,
        noise_multiplier=noise_multiplier,
        population=population,
        clients_per_round=clients_per_round,
        sample_rate=sample_rate,
        sampling=sampling,
        delta=delta,
        target_epsilon=target_epsilon,
        mode=mode,
        accountant=accountant,
    )
    return [clip, noise]


def dp_noise(
    clip: ClipUpdates,
    *,
    noise_multiplier: float,
    population: int | None = None,
    clients_per_round: int | None = None,
    sample_rate: float | None = None,
    sampling: str = "poisson",
    delta: float = 1e-5,
    target_epsilon: float | None = None,
    mode: str = "central",
    accountant: str | None = None,
) -> GaussianNoise:
    """The :class:`GaussianNoise` step calibrated to ``clip`` (the :class:`ClipUpdates` step
    before it), with the run's sampling and its accountant. Arguments as in
    :func:`dp_fedavg_steps`.

    Raises:
        ConfigError: central mode without ``population`` and a rate, or a combination with no
            matching accountant (the message names the fix).
    """
    plan: CohortSampling | None = None
    if mode == "central":
        if population is None:
            raise ConfigError(
                "central DP divides the noised sum by the expected cohort q * N (McMahan et al. 2018's fixed "
                "denominator): pass population=N (the number of clients) and clients_per_round=m or sample_rate=q"
            )
        plan = CohortSampling.build(sampling, population, clients_per_round=clients_per_round, rate=sample_rate)
    kind = accountant if accountant is not None else ("dp_rdp" if sampling == "fixed" and mode == "central" else "rdp")
    acc = PrivacyAccountant(delta=delta, kind=kind, target_epsilon=target_epsilon)
    return GaussianNoise(clip, noise_multiplier, mode=mode, sampling=plan, accountant=acc)
