"""The update steps of a ``federated`` recipe: clipping, differential privacy, validation,
compression and secure aggregation, written as a list.

Each entry names one step and its options; clients run them in list order, the server undoes
them in reverse (see :class:`interlearn.federated.UpdateStep`)::

    steps:
      - clip: {max_norm: 1.0}                  # ClipUpdates (adaptive: true for Andrew et al. 2021)
      - dp: {noise_multiplier: 1.0, delta: 1.0e-05, target_epsilon: 8.0}   # GaussianNoise + accountant
      - validate: {max_norm: 10.0}             # ValidateUpdates: reject malformed / oversized updates
      - compress: {method: q8}                 # CompressUpdates: q8 | q4 | topk
      - secagg: {neighbours: log}              # SecureAggregation (SecAgg+; all: every pair)
      - step: {name: my_step, options: {...}}  # any step registered with register_step

Robust aggregation is the strategy's part (``strategy: {aggregator: median}``), not a step.
Every option is validated when the recipe loads, with the step's own checks; an error names the
entry (``federated.steps[1].dp.noise_multiplier``) and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from interlearn.errors import ConfigError
from interlearn.federated.api import UpdateStep
from interlearn.federated.protections.compression import CompressUpdates
from interlearn.federated.protections.privacy import ClipUpdates, GaussianNoise, dp_noise
from interlearn.federated.protections.validation import ValidateUpdates
from interlearn.federated.update_steps import UPDATE_STEPS
from interlearn.recipes.names import StepName
from interlearn.registry import check_names

__all__ = [
    "ClipStep",
    "DPStep",
    "ValidateStep",
    "CompressStep",
    "SecAggStep",
    "RegisteredStep",
    "StepSpec",
    "build_steps",
    "noise_step",
]


@dataclass(frozen=True)
class ClipStep:
    """``clip``: L2 clipping of each client update (:class:`~interlearn.federated.protections.privacy.ClipUpdates`).

    Attributes:
        max_norm: the clip norm (the initial one when ``adaptive``).
        adaptive: track a quantile of the update norms (Andrew et al. 2021).
        target_quantile, learning_rate, count_noise_std: the adaptive rule's settings.
    """

    max_norm: float = 1.0
    adaptive: bool = False
    target_quantile: float = 0.5
    learning_rate: float = 0.2
    count_noise_std: float = 0.0

    def __post_init__(self) -> None:
        self.build()

    def build(self) -> ClipUpdates:
        return ClipUpdates(
            self.max_norm,
            adaptive=self.adaptive,
            target_quantile=self.target_quantile,
            learning_rate=self.learning_rate,
            count_noise_std=self.count_noise_std,
        )


@dataclass(frozen=True)
class DPStep:
    """``dp``: Gaussian noise calibrated to the ``clip`` step before it, with its accountant
    (DP-FedAvg, McMahan et al. 2018; :func:`~interlearn.federated.protections.privacy.dp_noise`).

    Attributes:
        noise_multiplier: ``z`` > 0 (noise std over the sensitivity).
        mode: ``central`` (the server noises the sum) or ``local`` (every client noises).
        delta: delta of the reported (epsilon, delta).
        target_epsilon: stop before a round would exceed it (``null``: never).
        sampling: ``poisson`` (add/remove adjacency) or ``fixed`` (replace-one; needs the
            ``dp_rdp`` accountant, its default).
        accountant: ``rdp``, ``prv``, ``gdp`` (Opacus) or ``dp_rdp``, ``dp_pld`` (dp-accounting);
            ``null``: ``rdp`` for poisson, ``dp_rdp`` for fixed.
    """

    noise_multiplier: float = 1.0
    mode: Literal["central", "local"] = "central"
    delta: float = 1e-5
    target_epsilon: float | None = None
    sampling: Literal["poisson", "fixed"] = "poisson"
    accountant: Literal["rdp", "prv", "gdp", "dp_rdp", "dp_pld"] | None = None

    def build(self, clip: ClipUpdates, population: int, clients_per_round: int) -> GaussianNoise:
        return dp_noise(
            clip,
            noise_multiplier=self.noise_multiplier,
            population=population,
            clients_per_round=clients_per_round,
            sampling=self.sampling,
            delta=self.delta,
            target_epsilon=self.target_epsilon,
            mode=self.mode,
            accountant=self.accountant,
        )


@dataclass(frozen=True)
class ValidateStep:
    """``validate``: server-side checks of every update (:class:`~interlearn.federated.protections.validation.ValidateUpdates`).

    Attributes:
        max_norm: reject updates with a larger L2 norm (``null``: no bound).
        min_valid: fewest valid updates a round needs, else it is skipped.
        check_dtype: require each tensor's dtype to match the model's.
    """

    max_norm: float | None = None
    min_valid: int = 1
    check_dtype: bool = True

    def __post_init__(self) -> None:
        self.build()

    def build(self) -> ValidateUpdates:
        return ValidateUpdates(max_norm=self.max_norm, min_valid=self.min_valid, check_dtype=self.check_dtype)


@dataclass(frozen=True)
class CompressStep:
    """``compress``: client-side compression of the updates (:class:`~interlearn.federated.protections.compression.CompressUpdates`).

    Attributes:
        method: ``q8``, ``q4`` (stochastic quantization) or ``topk``.
        ratio: fraction of values ``topk`` keeps.
        error_feedback: carry each client's compression error to its next update (``null``:
            on for ``topk``, off for the unbiased quantizers).
    """

    method: Literal["q8", "q4", "topk"] = "q8"
    ratio: float = 0.01
    error_feedback: bool | None = None

    def __post_init__(self) -> None:
        self.build()

    def build(self) -> CompressUpdates:
        return CompressUpdates(self.method, ratio=self.ratio, error_feedback=self.error_feedback)


@dataclass(frozen=True)
class SecAggStep:
    """``secagg``: pairwise-masked secure aggregation (Bonawitz et al. 2017; SecAgg+, Bell et al.
    2020; :class:`~interlearn.federated.protections.secagg.SecureAggregation`).

    Attributes:
        neighbours: ``all`` (every pair), ``log`` (SecAgg+) or an even degree.
        threshold: fewest clients that must survive (an int, or a fraction of the group;
            ``null``: a strict majority).
        bits, frac_bits: the ring and the fixed-point precision.
        weighted: sum ``weight * update`` (FedAvg's weighted mean); ``false`` for the unweighted
            mean.
        dropout: fraction of the cohort dropped after key sharing (to exercise recovery).
    """

    neighbours: int | str = "all"
    threshold: int | float | None = None
    bits: int = 48
    frac_bits: int = 20
    weighted: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.build()

    def build(self) -> UpdateStep:
        try:  # secure aggregation needs the optional `cryptography` package
            from interlearn.federated.protections.secagg import SecureAggregation
        except ImportError as exc:
            raise ConfigError(
                f"secagg needs the cryptography package ({exc}): pip install 'interlearn[privacy]'"
            ) from None

        return SecureAggregation(
            threshold=self.threshold,
            bits=self.bits,
            frac_bits=self.frac_bits,
            weighted=self.weighted,
            dropout=self.dropout,
            neighbours=self.neighbours,
        )


@dataclass(frozen=True)
class RegisteredStep:
    """``step``: an update step registered by name (:func:`~interlearn.federated.register_step`),
    e.g. one written in user code.

    Attributes:
        name: the registered name.
        options: the keyword arguments of its factory.
    """

    name: StepName
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_names(self)
        self.build()

    def build(self) -> UpdateStep:
        step: UpdateStep = UPDATE_STEPS.build(self.name, **self.options)
        return step


@dataclass(frozen=True)
class StepSpec:
    """One entry of ``steps``: exactly one of the fields, named by its key
    (``- clip: {max_norm: 1.0}``)."""

    clip: ClipStep | None = None
    dp: DPStep | None = None
    validate: ValidateStep | None = None
    compress: CompressStep | None = None
    secagg: SecAggStep | None = None
    step: RegisteredStep | None = None

    omit_none: ClassVar[bool] = True  # written back as ``- clip: {...}`` (see interlearn.schema.to_dict)

    def __post_init__(self) -> None:
        given = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        if len(given) != 1:
            known = [f.name for f in fields(self)]
            raise ConfigError(
                f"a step names exactly one of {known}, got {given or 'none'}; write one step per list entry, "
                "e.g. - clip: {max_norm: 1.0}"
            )

    @property
    def kind(self) -> str:
        """The step's name (``clip``, ``dp``, ..., or the registered name of a ``step`` entry)."""
        if self.step is not None:
            return self.step.name
        return next(f.name for f in fields(self) if getattr(self, f.name) is not None)

    @property
    def options(self) -> Any:
        """The step's options (a :class:`ClipStep`, :class:`DPStep`, ..., :class:`RegisteredStep`)."""
        return next(getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None)


def check_steps(steps: Sequence[StepSpec]) -> None:
    """Refuse step lists that cannot work: a repeated step, or ``dp`` without a ``clip`` before it.

    Raises:
        ConfigError: naming the entry and the fix.
    """
    seen: dict[str, int] = {}
    for i, s in enumerate(steps):
        if s.kind in seen:
            raise ConfigError(
                f"steps[{i}].{s.kind}: the step already appears as steps[{seen[s.kind]}]; give each step once"
            )
        if s.kind == "dp" and "clip" not in seen:
            raise ConfigError(
                f"steps[{i}].dp: the noise is calibrated to the clip norm, so a clip step must come first: "
                "steps: [{clip: {max_norm: 1.0}}, {dp: {noise_multiplier: 1.0}}]"
            )
        seen[s.kind] = i


def build_steps(steps: Sequence[StepSpec], population: int, clients_per_round: int) -> list[UpdateStep]:
    """The :class:`~interlearn.federated.UpdateStep` objects, in the recipe's order.

    Args:
        steps: the recipe's entries (checked by :func:`check_steps`).
        population: clients in the population (central DP's sampling rate is
            ``clients_per_round / population``).
        clients_per_round: the expected cohort.

    Raises:
        ConfigError: see :func:`check_steps`, or a DP setting no accountant supports.
    """
    check_steps(steps)
    out: list[UpdateStep] = []
    clip: ClipUpdates | None = None
    for s in steps:
        opts = s.options
        if isinstance(opts, DPStep):
            if clip is None:  # check_steps put a clip step first
                raise ConfigError("steps: a dp step needs a clip step before it")
            out.append(opts.build(clip, population, clients_per_round))
            continue
        step = opts.build()
        if isinstance(step, ClipUpdates):
            clip = step
        out.append(step)
    return out


def noise_step(steps: Sequence[UpdateStep]) -> GaussianNoise | None:
    """The :class:`~interlearn.federated.protections.privacy.GaussianNoise` step of a built list, if any."""
    return next((s for s in steps if isinstance(s, GaussianNoise)), None)
