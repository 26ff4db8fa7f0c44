"""Personalization after (or during) federated training.

Two ways for each user to get a model of their own:

* **Local fine-tuning** (Wang et al. 2019, "Federated Evaluation of On-device Personalization";
  Yu et al. 2020, "Salvaging Federated Learning by Local Adaptation"): after global training,
  every user takes a few SGD steps on their own training data, either on the last layer only
  (``scope="head"``) or on all parameters (``scope="all"``), and is evaluated on their own test
  data. :func:`personalize` reports global vs personalized accuracy per user.
* **FedPer** (Arivazhagan et al. 2019, "Federated Learning with Personalization Layers"): a
  shared trunk is trained federatedly while each user keeps a personal head that never leaves
  the device. :class:`FedPerUpdate` is a ``ClientUpdate`` whose private client state is the
  head; the server receives trunk updates only (the head's entries are zero).

Both train through the federated client's own step (:class:`LocalSGD`; the fine-tuning steps
are :func:`~interlearn.federated.trajectory.sgd_trajectory`), as pure functions of parameter
dictionaries (``torch.func.functional_call``), so any engine can run them. Scoring uses
:func:`~interlearn.federated.server.evaluate.params_accuracy`, which loads the scored parameters into
the model.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from interlearn.checkpoint import has_checkpoint, load_checkpoint
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.client import LocalSGD, StepContext
from interlearn.federated.server.evaluate import params_accuracy
from interlearn.federated.trajectory import sgd_trajectory
from interlearn.plotting import pyplot, save_figure
from interlearn.surgery import select_names
from interlearn.tasks import cross_entropy
from interlearn.types import LossFn, Params

if TYPE_CHECKING:
    from interlearn.federated.server.simulation import SimulationResult

__all__ = [
    "PersonalizeConfig",
    "UserResult",
    "PersonalizationReport",
    "finetune_params",
    "personalize",
    "plot_personalization",
    "FedPerUpdate",
    "personal_heads",
]


@dataclass(frozen=True)
class PersonalizeConfig:
    """Local fine-tuning on each user's own data.

    Attributes:
        scope: ``"head"`` (only parameters matching ``head_patterns``) or ``"all"``.
        steps: SGD steps per user (a few: the point is a cheap on-device adaptation).
        lr: learning rate of plain SGD.
        batch_size: examples per step (epochs of shuffled batches of the user's training data).
        head_patterns: globs naming the last layer (``"head.*"`` for the models in interlearn).
        max_eval: cap on the test examples scored per user (``None``: all).
        seed: base seed; user ``i`` samples batches with ``seed + i``.
    """

    scope: str = "head"
    steps: int = 20
    lr: float = 0.5
    batch_size: int = 32
    head_patterns: tuple[str, ...] = ("head.*",)
    max_eval: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scope not in ("head", "all"):
            raise ConfigError(f"PersonalizeConfig.scope={self.scope!r}; use 'head' (last layer) or 'all'")
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(
                f"PersonalizeConfig: steps={self.steps} (>= 0), batch_size={self.batch_size} (>= 1), lr={self.lr} (> 0)"
            )
        if self.max_eval is not None and self.max_eval < 1:
            raise ConfigError(f"PersonalizeConfig.max_eval={self.max_eval}; use None or a positive count")


def finetune_params(
    model: nn.Module,
    params: Params,
    data: TensorData,
    trainable: Sequence[str],
    steps: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: LossFn = cross_entropy,
) -> Params:
    """Plain local SGD on the ``trainable`` entries of ``params`` (the rest stay fixed); pure.

    The steps are the federated client's (:func:`~interlearn.federated.trajectory.sgd_trajectory`).

    Args:
        model: the architecture (its own tensors are not used or changed).
        params: starting parameters (and buffers), e.g. the global model's.
        data: the user's training data.
        trainable: names of the entries to train.
        steps: local SGD steps (the optimisation budget).
        lr: the learning rate.
        batch_size: examples per step.
        generator: seeds the minibatch order.
        loss_fn: ``loss_fn(model_output, y)``.

    Returns:
        New parameters: trained copies of ``trainable``, the other entries shared with ``params``.

    Raises:
        DataError: the user has no training data while ``steps > 0``.
    """
    return sgd_trajectory(model, params, data, [steps], lr, batch_size, generator, loss_fn, trainable=trainable)[steps]


@dataclass(frozen=True)
class UserResult:
    """One user's accuracy on their own test data before and after personalization."""

    user: str
    global_acc: float
    personal_acc: float
    n_test: int


@dataclass(frozen=True)
class PersonalizationReport:
    """Per-user results and their summary."""

    users: list[UserResult] = field(default_factory=list)
    config: PersonalizeConfig = field(default_factory=PersonalizeConfig)

    def _values(self, attr: str) -> list[float]:
        return [getattr(u, attr) for u in self.users]

    def summary(self) -> dict[str, float]:
        """Medians, example-weighted means and the fraction of users who gained."""
        if not self.users:
            return {}
        n = sum(u.n_test for u in self.users)
        return {
            "users": float(len(self.users)),
            "global_median": statistics.median(self._values("global_acc")),
            "personal_median": statistics.median(self._values("personal_acc")),
            "global_weighted": sum(u.global_acc * u.n_test for u in self.users) / n,
            "personal_weighted": sum(u.personal_acc * u.n_test for u in self.users) / n,
            "improved_fraction": sum(u.personal_acc > u.global_acc for u in self.users) / len(self.users),
        }


def personalize(
    model: nn.Module,
    global_params: Params,
    users: Sequence[tuple[str, TensorData, TensorData]],
    config: PersonalizeConfig = PersonalizeConfig(),
    loss_fn: LossFn = cross_entropy,
) -> tuple[PersonalizationReport, dict[str, Params]]:
    """Fine-tune the global model on each user's own training data; score both on their test data.

    Args:
        model: the architecture.
        global_params: the trained global parameters (e.g. ``dict(model.state_dict())``).
        users: ``(name, train, test)`` per user.
        config: scope, steps, learning rate, batch size.
        loss_fn: ``loss_fn(output, y)``.

    Returns:
        The report and each user's personalized parameters (only what differs is new memory).

    Raises:
        ConfigError: ``head_patterns`` match no parameter.
        DataError: a user with no test data.
    """
    names = list(global_params)
    trainable = names if config.scope == "all" else select_names(names, config.head_patterns, "parameter")
    trainable = [k for k in trainable if global_params[k].is_floating_point()]
    results, personal = [], {}
    for i, (name, train, test) in enumerate(users):
        g = torch.Generator().manual_seed(config.seed + i)
        p = finetune_params(
            model, global_params, train, trainable, config.steps, config.lr, config.batch_size, g, loss_fn
        )
        n_test = len(test) if config.max_eval is None else min(len(test), config.max_eval)
        global_acc = params_accuracy(model, global_params, test, config.max_eval)
        results.append(UserResult(name, global_acc, params_accuracy(model, p, test, config.max_eval), n_test))
        personal[name] = p
    return PersonalizationReport(results, config), personal


def plot_personalization(report: PersonalizationReport, path: str | Path, title: str = "Personalization") -> Path:
    """Distribution plot: per-user accuracy histograms (global vs personalized) and a scatter
    of personalized against global accuracy (points above the diagonal gained). PNG."""
    plt = pyplot()
    g, p = report._values("global_acc"), report._values("personal_acc")
    s = report.summary()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    bins = [i / 40 for i in range(41)]
    a.hist(g, bins=bins, alpha=0.6, label=f"global (median {s.get('global_median', 0):.3f})")
    a.hist(p, bins=bins, alpha=0.6, label=f"personalized (median {s.get('personal_median', 0):.3f})")
    a.set_xlabel("test accuracy per user")
    a.set_ylabel("users")
    a.legend()
    b.scatter(g, p, s=8, alpha=0.6)
    lo, hi = min(g + p + [0.0]), max(g + p + [1.0])
    b.plot([lo, hi], [lo, hi], "k--", lw=1)
    b.set_xlabel("global model accuracy")
    b.set_ylabel("personalized accuracy")
    fig.suptitle(f"{title}: {len(g)} users, scope={report.config.scope}, {report.config.steps} steps")
    return save_figure(fig, path, dpi=100)


@dataclass(frozen=True)
class FedPerUpdate(LocalSGD):
    """FedPer's client update (Arivazhagan et al. 2019): :class:`LocalSGD` on trunk + personal
    head; only the trunk is shared.

    The client's private state is its head (initialised from the global head on first
    participation). The uploaded update holds the trunk's change and zeros for the head, so any
    strategy keeps the global head fixed (it only seeds newcomers' heads). The local steps are
    LocalSGD's own (every engine runs them, batched included).

    Attributes:
        head_patterns: globs naming the personal layers.
        (and every :class:`LocalSGD` field: epochs, batch_size, lr, optimizer, ...)
    """

    head_patterns: tuple[str, ...] = ("head.*",)

    def _heads(self, params: Params) -> list[str]:
        return select_names(list(params), self.head_patterns, "parameter")

    def begin(self, params: Params, client_state: Params | None, ctx: StepContext) -> Params:
        """The global trunk with the client's own head (the global head on its first round)."""
        start = super().begin(params, client_state, ctx)
        if client_state:
            for k in self._heads(params):
                start[k] = client_state[k].detach().clone()
        return start

    def finish(
        self, params: Params, state: Params, client_state: Params | None, ctx: StepContext, steps: int
    ) -> tuple[Params, Params, Params | None]:
        """Upload the trunk's change (zeros for the head); keep the trained head."""
        heads = set(self._heads(ctx.global_params))
        update = {k: torch.zeros_like(v) if k in heads else params[k] - v for k, v in ctx.global_params.items()}
        return update, {}, {k: params[k].detach().clone() for k in sorted(heads)}


def personal_heads(result: SimulationResult | None = None, run_dir: str | Path | None = None) -> dict[int, Params]:
    """Every client's private FedPer head after a :func:`~interlearn.federated.server.simulation.simulate`
    run: from ``result.client_states`` when the result carries them, else from the run folder's
    checkpoint (``client/<id>/<name>`` entries; run with ``checkpoint_every``).

    Raises:
        DataError: neither source holds client states.
    """
    states = result.client_states if result is not None else {}
    if states:
        return {int(c): dict(s) for c, s in states.items() if s}
    if run_dir is not None:
        ckpt = Path(run_dir) / "checkpoint"
        if has_checkpoint(ckpt):
            tensors, _ = load_checkpoint(ckpt)
            heads: dict[int, Params] = {}
            for name, t in tensors.items():
                if name.startswith("client/"):
                    _, cid, key = name.split("/", 2)
                    heads.setdefault(int(cid), {})[key] = t
            if heads:
                return heads
    raise DataError(
        "no client states found: pass the simulate() result, or a run_dir simulated with checkpoint_every > 0"
    )
