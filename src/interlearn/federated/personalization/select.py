"""Personalization whose settings every user chooses on their own validation split.

How much a user should adapt the global model depends on how much text they have and how
different it is; a setting fixed for everybody helps some users and hurts others. Following
Wang et al. 2019 ("Federated Evaluation of On-device Personalization") and Mansour et al. 2020
("Three Approaches for Personalization with Applications to Federated Learning"), every user
splits their own training data into a fitting part and a **validation** part, tries a few
candidates, and keeps the one with the best validation score. The test split is only used to
report the result. Every method includes "keep the global model" as a candidate, so a user for
whom adaptation does not pay on validation keeps the global model.

Methods (each a grid of candidates, scored on validation):

* ``finetune`` — local SGD on all parameters (or the last layer), the number of steps chosen
  (Wang et al. 2019).
* ``interpolate`` — ``alpha * v + (1 - alpha) * w`` between the fine-tuned model ``v`` and the
  global ``w``, the weight ``alpha`` chosen: the parameter mixing of APFL (Deng, Kamani &
  Mahdavi 2020, "Adaptive Personalized Federated Learning") with the global model fixed, and
  the model interpolation of Mansour et al. 2020.
* ``ditto`` — Ditto's personal objective (Li et al. 2021, :mod:`interlearn.federated.personalization.ditto`),
  ``lambda`` and the number of steps chosen.
* ``best`` — the best candidate of all methods on the user's validation split.

:meth:`SelectionReport.validated_method` names the method whose choices score best on all
users' validation splits together (many more words than one user's split): the method to ship,
chosen without test text.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.trajectory import sgd_trajectory
from interlearn.plotting import pyplot, save_figure
from interlearn.surgery import select_names
from interlearn.tasks import cross_entropy
from interlearn.types import LossFn, Params

__all__ = [
    "SelectConfig",
    "UserChoice",
    "SelectionReport",
    "personalize_validated",
    "interpolate_params",
    "METHODS",
    "plot_gains",
]

METHODS = ("finetune", "interpolate", "ditto")
ScoreFn = Callable[[nn.Module, Any, TensorData], float]
CandidateFn = Callable[[int, TensorData], list[tuple[dict[str, Any], Any]]]


@dataclass(frozen=True)
class SelectConfig:
    """The candidates every user tries.

    Attributes:
        methods: any of ``"finetune"``, ``"interpolate"``, ``"ditto"``.
        steps: fine-tuning step counts tried (0 = the global model).
        alphas: interpolation weights tried (0 = the global model, 1 = the longest fine-tuning).
        lams: Ditto's ``lambda`` values tried (each with every count in ``steps``).
        lr: learning rate of the local training.
        batch_size: minibatch size.
        optimizer: ``"sgd"`` or ``"adam"`` (fresh state per user) for the local training.
        trainable: globs of the parameters trained (``("*",)``: all).
        seed: base seed; the ``i``-th user samples batches with ``seed + i``.
    """

    methods: tuple[str, ...] = METHODS
    steps: tuple[int, ...] = (0, 5, 10, 20, 40, 80)
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    lams: tuple[float, ...] = (0.1, 1.0)
    lr: float = 0.5
    batch_size: int = 10
    optimizer: str = "sgd"
    trainable: tuple[str, ...] = ("*",)
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ConfigError(f"SelectConfig.methods={self.methods}: {bad or 'empty'}; choose from {list(METHODS)}")
        if not self.steps or min(self.steps) < 0:
            raise ConfigError(
                f"SelectConfig.steps={self.steps}: give step counts >= 0 (include 0 to allow the global model)"
            )
        if any(not 0 <= a <= 1 for a in self.alphas) or not self.alphas:
            raise ConfigError(f"SelectConfig.alphas={self.alphas}: weights in [0, 1]")
        if any(v < 0 for v in self.lams) or not self.lams:
            raise ConfigError(f"SelectConfig.lams={self.lams}: Ditto lambdas >= 0")
        if self.lr <= 0 or self.batch_size < 1 or self.optimizer not in ("sgd", "adam"):
            raise ConfigError(
                f"SelectConfig: lr={self.lr} (> 0), batch_size={self.batch_size} (>= 1), optimizer={self.optimizer!r} ('sgd' or 'adam')"
            )


@dataclass(frozen=True)
class UserChoice:
    """One user's result: the global model's test score and, per method, the chosen setting
    with its validation and test scores."""

    user: str
    global_val: float
    global_test: float
    chosen: dict[str, dict[str, Any]]
    n_val: int
    n_test: int


@dataclass(frozen=True)
class SelectionReport:
    """Per-user choices and per-method summaries."""

    users: list[UserChoice] = field(default_factory=list)
    config: SelectConfig = field(default_factory=SelectConfig)

    def methods(self) -> list[str]:
        return list(self.users[0].chosen) if self.users else []

    def gains(self, method: str) -> list[float]:
        """Per-user test gain (personalized minus global) of ``method``."""
        return [u.chosen[method]["test"] - u.global_test for u in self.users]

    def summary(self, method: str) -> dict[str, Any]:
        """Medians, gain median, the fraction of users improved (strictly) and those made worse."""
        if not self.users:
            return {}
        g = self.gains(method)
        personal = [u.chosen[method]["test"] for u in self.users]
        return {
            "users": len(self.users),
            "global_median": statistics.median(u.global_test for u in self.users),
            "personal_median": statistics.median(personal),
            "median_gain": statistics.median(g),
            "mean_gain": statistics.fmean(g),
            "improved_fraction": sum(x > 0 for x in g) / len(g),
            "unchanged_fraction": sum(x == 0 for x in g) / len(g),
            "worse": [
                {"user": u.user, "gain": x, "setting": u.chosen[method]["setting"], "n_test": u.n_test}
                for u, x in zip(self.users, g)
                if x < 0
            ],
            "val_metric_mean": statistics.fmean(
                u.chosen[method].get("val_metric", u.chosen[method]["val"]) for u in self.users
            ),
        }

    def validated_method(self) -> str | None:
        """The method whose per-user choices score best on the users' *validation* splits
        (mean over users of the reported metric): a population-level choice that never looks
        at test text. ``None`` without users."""
        if not self.users:
            return None
        return max(
            self.methods(),
            key=lambda m: statistics.fmean(u.chosen[m].get("val_metric", u.chosen[m]["val"]) for u in self.users),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "validated_method": self.validated_method(),
            "summary": {m: self.summary(m) for m in self.methods()},
            "users": [
                {
                    "user": u.user,
                    "global_val": u.global_val,
                    "global_test": u.global_test,
                    "n_val": u.n_val,
                    "n_test": u.n_test,
                    "chosen": u.chosen,
                }
                for u in self.users
            ],
        }


def interpolate_params(global_params: Params, local: Params, alpha: float) -> Params:
    """``alpha * local + (1 - alpha) * global`` for floating-point entries (others from global)."""
    return {k: (torch.lerp(g, local[k], alpha) if g.is_floating_point() else g) for k, g in global_params.items()}


def _names(params: Params, globs: Sequence[str]) -> list[str]:
    floating = [k for k, v in params.items() if v.is_floating_point()]
    try:
        return select_names(floating, globs, "parameter")
    except ConfigError as exc:
        raise ConfigError(f"SelectConfig.trainable={list(globs)}: {exc}") from None


def personalize_validated(
    model: nn.Module,
    global_params: Params,
    users: Sequence[tuple[str, TensorData, TensorData, TensorData]],
    score: ScoreFn,
    config: SelectConfig = SelectConfig(),
    loss_fn: LossFn = cross_entropy,
    keep: Sequence[str] = (),
    select: ScoreFn | None = None,
    extra_methods: Mapping[str, CandidateFn] | None = None,
) -> tuple[SelectionReport, dict[str, dict[str, Any]]]:
    """Every user tries the configured candidates on their own data and keeps, per method, the
    one with the best validation score (ties: the earliest candidate, i.e. less adaptation).

    Args:
        model: the architecture.
        global_params: the trained global model.
        users: ``(name, train, val, test)`` per user; ``train`` fits, ``val`` chooses, ``test``
            only reports.
        score: ``score(model, params, data) -> float`` (higher is better), e.g. top-1 recall.
        config: the candidate grids.
        loss_fn: the training loss.
        keep: users whose chosen parameters are returned (e.g. the one the keyboard shows).
        select: what the validation split ranks candidates by (higher is better; default
            ``score``). A smooth criterion such as minus the validation loss ties less often
            than a count of hits on a small split.
        extra_methods: more methods, ``{name: fn(user_index, train) -> [(setting, personal)]}``;
            ``personal`` is whatever ``score``/``select`` accept (e.g. a model plus a user's
            cache). The global model is added as every extra method's first candidate.

    Returns:
        The report (with a ``best`` method: the best candidate over all methods on validation)
        and ``{user: {method: params}}`` for the users in ``keep``.

    Raises:
        DataError: a user with an empty validation or test split.
    """
    names = _names(global_params, config.trainable)
    rank = select or score
    results, kept = [], {}
    for i, (name, train, val, test) in enumerate(users):
        if len(val) == 0 or len(test) == 0:
            raise DataError(f"user {name}: empty validation or test split; personalize only users that have both")
        g_val = rank(model, global_params, val)
        ctx = _UserRun(model, global_params, train, val, rank, config, loss_fn, names, config.seed + i)
        cands = _candidates(ctx, g_val)
        for mname, fn in (extra_methods or {}).items():
            cands[mname] = [({}, global_params, g_val)] + [(st, p, rank(model, p, val)) for st, p in fn(i, train)]
        g_test = score(model, global_params, test)
        # the reported metric on validation (ranks methods over users)
        g_metric = g_val if select is None else score(model, global_params, val)
        chosen, params_of = _choose(cands, model, global_params, score, (val, g_metric), (test, g_test))
        results.append(UserChoice(name, g_val, g_test, chosen, _count(val), _count(test)))
        if name in keep:
            kept[name] = params_of
    return SelectionReport(results, config), kept


Candidate = tuple[dict[str, Any], Any, float]  # (setting, personal parameters, validation score)


@dataclass(frozen=True)
class _UserRun:
    """What one user's local training starts from (see :func:`personalize_validated`)."""

    model: nn.Module
    global_params: Params
    train: TensorData
    val: TensorData
    rank: ScoreFn
    config: SelectConfig
    loss_fn: LossFn
    names: list[str]
    seed: int

    def ranked(self, personal: Any) -> float:
        """What validation ranks ``personal`` by."""
        return self.rank(self.model, personal, self.val)

    def trajectory(self, steps: Sequence[int], **anchor: Any) -> dict[int, Params]:
        """:func:`sgd_trajectory` from the global model with a fresh generator seeded per user."""
        cfg = self.config
        gen = torch.Generator().manual_seed(self.seed)
        return sgd_trajectory(
            self.model,
            self.global_params,
            self.train,
            steps,
            cfg.lr,
            cfg.batch_size,
            gen,
            self.loss_fn,
            trainable=self.names,
            optimizer=cfg.optimizer,
            **anchor,
        )


def _candidates(ctx: _UserRun, g_val: float) -> dict[str, list[Candidate]]:
    """Every configured method's candidates for one user; the global model is every method's first."""
    config, global_params, rank = ctx.config, ctx.global_params, ctx.ranked
    cands: dict[str, list[Candidate]] = {}
    if {"finetune", "interpolate"} & set(config.methods):
        traj = ctx.trajectory(config.steps)
        traj[0] = global_params
    if "finetune" in config.methods:
        cands["finetune"] = [({"steps": s}, p, g_val if s == 0 else rank(p)) for s, p in sorted(traj.items())]
    if "interpolate" in config.methods:
        end = traj[max(traj)]
        cands["interpolate"] = [({"alpha": 0.0}, global_params, g_val)]
        for a in sorted(x for x in config.alphas if x > 0):
            p = interpolate_params(global_params, end, a)
            cands["interpolate"].append(({"alpha": a, "steps": max(traj)}, p, rank(p)))
    if "ditto" in config.methods:
        cands["ditto"] = [({"steps": 0}, global_params, g_val)]
        for lam in config.lams:
            traj_l = ctx.trajectory([s for s in config.steps if s > 0] or [0], anchor=global_params, lam=lam)
            cands["ditto"] += [({"lam": lam, "steps": s}, p, rank(p)) for s, p in sorted(traj_l.items()) if s > 0]
    return cands


def _choose(
    cands: dict[str, list[Candidate]],
    model: nn.Module,
    global_params: Params,
    score: ScoreFn,
    val: tuple[TensorData, float],
    test: tuple[TensorData, float],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per method, and over all methods (``"best"``), the candidate with the best validation score.

    ``max`` keeps the first of equal scores: the earliest candidate, i.e. less adaptation.
    ``val`` and ``test`` are the splits with the global model's ``score`` on them.
    Returns the choices (setting and scores) and the chosen parameters, by method.
    """
    (val_data, g_metric), (test_data, g_test) = val, test
    valued: dict[int, float] = {id(global_params): g_metric}
    tested: dict[int, float] = {id(global_params): g_test}

    def val_metric(p: Any) -> float:
        return _memo(valued, score, model, p, val_data)

    def tested_on(p: Any) -> float:
        return _memo(tested, score, model, p, test_data)

    chosen: dict[str, dict[str, Any]] = {}
    params_of: dict[str, Any] = {}
    pool: list[tuple[str, dict[str, Any], Any, float]] = []
    for method, options in cands.items():
        setting, p, v = max(options, key=lambda o: o[2])  # max keeps the first of equal scores
        chosen[method] = {"setting": setting, "val": v, "val_metric": val_metric(p), "test": tested_on(p)}
        params_of[method] = p
        pool += [(method, st, q, w) for st, q, w in options]
    m, setting, p, v = max(pool, key=lambda o: o[3])
    chosen["best"] = {"setting": {"method": m, **setting}, "val": v, "val_metric": val_metric(p), "test": tested_on(p)}
    params_of["best"] = p
    return chosen, params_of


def _memo(cache: dict[int, float], score: ScoreFn, model: nn.Module, personal: Any, data: TensorData) -> float:
    """``score(model, personal, data)``, computed once per candidate object."""
    if id(personal) not in cache:
        cache[id(personal)] = score(model, personal, data)
    return cache[id(personal)]


def _count(data: TensorData) -> int:
    return int(data.y.numel())


def plot_gains(
    report: SelectionReport,
    path: str | Path,
    title: str = "Personalization",
    extra: dict[str, list[float]] | None = None,
) -> Path:
    """Distribution of per-user test gains (personalized minus global, in points) per method:
    sorted gains (each user a point) and a zero line; users below it got worse. PNG.

    Args:
        report: the selection report.
        path: output file.
        title: the figure's title.
        extra: more ``{method: gains}`` to draw (e.g. FedPer, trained separately), as fractions.
    """
    plt = pyplot()

    series = {m: report.gains(m) for m in report.methods()}
    series.update(extra or {})
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for m, g in series.items():
        pts = sorted(100 * x for x in g)
        improved = sum(x > 0 for x in g) / max(len(g), 1)
        a.plot(
            [i / max(len(pts) - 1, 1) for i in range(len(pts))],
            pts,
            marker=".",
            ms=3,
            label=f"{m}: median {statistics.median(pts) if pts else 0:+.2f}, {improved:.0%} improved",
        )
    a.axhline(0, color="k", lw=1)
    a.set_xlabel("users (sorted by gain)")
    a.set_ylabel("test gain over the global model (points)")
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    data = [[100 * x for x in g] for g in series.values()]
    b.boxplot(data, showfliers=True)
    b.set_xticks(range(1, len(series) + 1), list(series), rotation=20)
    b.axhline(0, color="k", lw=1)
    b.set_ylabel("gain (points)")
    fig.suptitle(f"{title}: {len(report.users)} users, settings chosen on each user's validation split")
    return save_figure(fig, path, dpi=100)
