"""``interlearn advise``: on *your* labelled data and *your* pretrained model, should you train from
scratch, transfer, fine-tune or use LoRA, and how much does each buy?

Only the labelled data you give is used, never a test set: every method is scored by stratified
k-fold cross-validation (:func:`interlearn.autocut.stratified_folds`), repeated over several
seeds, each fold's model trained with the same fixed budget of optimizer steps
(:func:`interlearn.config.step_config`). Per fold:

- ``scratch``: the base's architecture re-initialized and trained on the fold;
- ``transfer``: :func:`interlearn.transfer.transfer` with ``cut="auto"``: the cut is chosen by an
  *inner* cross-validation on the fold's training part only (nested cross-validation, so the
  held-out fold never chooses the cut that is scored on it);
- ``finetune``: discriminative fine-tuning at that cut (:func:`interlearn.budgets.finetune_at`);
- ``lora``: LoRA adapters on the kept layers at that cut (:func:`interlearn.budgets.lora_at`).

With ``labels_per_class`` the comparison repeats on class-balanced subsets of that many labels
(drawn per seed), which shows how the answer changes as you label more. The recommendation is
the method with the best mean held-out score at the largest budget, with its margin over the
runner-up and the standard error of that paired difference (over seeds x folds); when every
method that starts from the base scores below training from scratch, the verdict is *negative
transfer* (Rosenstein et al. 2005, "To transfer or not to transfer"): the base most likely comes
from an unrelated domain, and the advice says to train from scratch.

**Time budget.** With ``minutes`` set, the first fold is timed and the number of seeds
(repetitions of the cross-validation) is chosen so the whole comparison fits: an estimate is
printed after that fold, then a progress line with the time left after every fold; the run
stops before a fold that would overrun the budget. Seeds run one after another (each covers
every label budget), so a run stopped early still holds complete seeds. Given a folder
(``out``), the table is rewritten after every fold: an interrupted run still leaves its
results. ``summary.md`` says what the budget allowed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from interlearn.autocut import stratified_folds
from interlearn.budgets import BudgetConfig, BudgetReport, finetune_at, lora_at, sample_per_class
from interlearn.config import step_config
from interlearn.cuts import SCRATCH, cut_module
from interlearn.data.tensors import TensorData, load_csv, load_npz
from interlearn.errors import ConfigError, DataError, ShapeError
from interlearn.pretrained import load_pretrained
from interlearn.split import fresh_tail
from interlearn.tasks import Task, classification
from interlearn.training import evaluate, fit
from interlearn.transfer import transfer

__all__ = ["AdviseConfig", "Advice", "advise", "load_base", "load_labelled", "ADVISE_METHODS"]

ADVISE_METHODS = ("scratch", "transfer", "finetune", "lora")
_FROM_BASE = ("transfer", "finetune", "lora")


@dataclass(frozen=True)
class AdviseConfig:
    """How ``advise`` compares the methods.

    Attributes:
        labels_per_class: label budgets to compare (class-balanced subsets); empty: all labels.
        seeds: repetitions (label subsets, folds and initializations change with the seed).
        folds: cross-validation folds (fewer when a class has fewer labels).
        inner_folds: folds of the inner cross-validation that chooses the transfer cut.
        steps: optimizer steps every method gets in every fold (the fixed budget).
        batch_size: examples per step (capped at the fold's size).
        lr: peak learning rate of newly initialized layers (AdamW, warmup + cosine).
        weight_decay: AdamW weight decay.
        finetune_lr_scale: pretrained layers' learning rate relative to ``lr`` when fine-tuning.
        lora_r: LoRA rank.
        methods: any of ``scratch``, ``transfer``, ``finetune``, ``lora``.
        minutes: the time budget (0: none). The first fold is timed, and as many of ``seeds`` run as
            fit; the run stops before a fold that would overrun it.
    """

    labels_per_class: tuple[int, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    folds: int = 5
    inner_folds: int = 3
    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    finetune_lr_scale: float = 0.1
    lora_r: int = 4
    methods: tuple[str, ...] = ADVISE_METHODS
    minutes: float = 0.0

    def __post_init__(self) -> None:
        if not self.minutes >= 0:
            raise ConfigError(f"minutes={self.minutes}: give a time budget >= 0 (0: no limit), e.g. 5")
        if self.labels_per_class and min(self.labels_per_class) < 2:
            raise ConfigError(
                f"labels_per_class={list(self.labels_per_class)}: cross-validation needs at least 2 labels per class"
            )
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        if self.folds < 2 or self.inner_folds < 2:
            raise ConfigError(f"folds={self.folds}, inner_folds={self.inner_folds}: need at least 2")
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0 or self.lora_r < 1:
            raise ConfigError(
                f"steps={self.steps}, batch_size={self.batch_size}, lr={self.lr}, lora_r={self.lora_r}: need steps, batch_size, lora_r >= 1 and lr > 0"
            )
        bad = [m for m in self.methods if m not in ADVISE_METHODS]
        if bad or "scratch" not in self.methods or len(self.methods) < 2:
            raise ConfigError(
                f"methods={list(self.methods)}: use scratch and at least one of {list(_FROM_BASE)} (unknown: {bad})"
            )


# ---------------------------------------------------------------- inputs
def load_base(spec: str) -> nn.Module:
    """The pretrained base: ``hf:FOLDER`` (a Hugging Face encoder, mean-pooled) or a ``.pt``/``.pth``
    file holding a whole ``nn.Module`` (``torch.save(model, path)``; only load files you trust).

    Raises:
        ConfigError: a missing file, a state dict without architecture, or an unloadable model.
    """
    if spec.startswith("hf:"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return load_pretrained(spec).get_submodule("backbone")  # cut inside the encoder (named cuts), not around it
    path = Path(spec)
    if path.suffix not in (".pt", ".pth"):
        raise ConfigError(f"--base {spec}: give a .pt/.pth file saved with torch.save(model, path), or hf:FOLDER")
    base = load_pretrained(path)
    return base.get_submodule("backbone") if len(base) == 1 and hasattr(base, "backbone") else base


def _tokenize(folder: str, texts: list[str]) -> torch.Tensor:
    from transformers import AutoTokenizer  # optional dependency (interlearn[text])

    tok = AutoTokenizer.from_pretrained(folder)
    return tok(texts, padding="longest", truncation=True, max_length=64, return_tensors="pt")["input_ids"]


def _image_folder(path: Path) -> TensorData:
    classes = sorted(d for d in path.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise DataError(
            f"{path}: a data folder needs one sub-folder per class (at least 2), found {[d.name for d in classes]}"
        )
    xs, ys = [], []
    for label, d in enumerate(classes):
        for f in sorted(d.iterdir()):
            if f.suffix == ".npy":
                arr = np.load(f)
            elif f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
                from PIL import Image  # Pillow comes with matplotlib; only image folders need it

                arr = np.asarray(Image.open(f), dtype=np.float32) / 255.0
                arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
            else:
                continue
            xs.append(torch.as_tensor(arr, dtype=torch.float32))
            ys.append(label)
    shapes = sorted({tuple(x.shape) for x in xs})
    if len(shapes) != 1:
        raise DataError(f"{path}: examples have different shapes {shapes[:4]}; resize them to one shape")
    return TensorData(torch.stack(xs), torch.tensor(ys))


def load_labelled(path: str | Path, base_spec: str = "") -> TensorData:
    """The user's labelled examples: ``.npz`` (``x``, ``y``), ``.csv`` (a ``label`` column, else the
    last; a ``text`` column is tokenized for an ``hf:`` base) or a folder with one sub-folder per
    class of images / ``.npy`` arrays.

    Raises:
        DataError: a missing file, mismatched lengths, non-integer labels.
    """
    p = Path(path)
    if p.is_dir():
        data = _image_folder(p)
    elif p.suffix == ".npz":
        data = load_npz(p)
    elif p.suffix == ".csv":
        with p.open(newline="") as fh:
            header = next(csv.reader(fh), [])
        if "text" in header and base_spec.startswith("hf:"):
            with p.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            if "label" not in header:
                raise DataError(f"{p}: a text CSV needs a 'label' column next to 'text' (header: {header})")
            try:
                labels = torch.tensor([int(r["label"]) for r in rows])
            except ValueError as exc:
                raise DataError(f"{p}: labels must be integers: {exc}") from None
            data = TensorData(_tokenize(base_spec[3:], [r["text"] for r in rows]), labels)
        else:
            data = load_csv(p, label_column="label" if "label" in header else -1)
    elif not p.exists():
        raise DataError(f"--data {p}: no such file or folder")
    else:
        raise DataError(f"--data {p}: use a .npz (x, y), a .csv or a folder with one sub-folder per class")
    if data.y.dim() != 1 or data.y.is_floating_point():
        raise DataError(
            f"{p}: labels must be one integer class per example, got shape {tuple(data.y.shape)} ({data.y.dtype})"
        )
    return data


def _check(base: nn.Module, data: TensorData, task: Task, cfg: AdviseConfig) -> None:
    counts = torch.bincount(data.y, minlength=task.num_outputs)
    few = [(c, int(n)) for c, n in enumerate(counts.tolist()) if n < 2]
    if few:
        raise DataError(
            f"too few labels for cross-validation: class {few[0][0]} has {few[0][1]} example(s); "
            "label at least 2 per class (5 or more give a usable estimate)"
        )
    if cfg.labels_per_class and max(cfg.labels_per_class) > int(counts.min()):
        raise DataError(
            f"labels_per_class up to {max(cfg.labels_per_class)}, but class {int(counts.argmin())} has only "
            f"{int(counts.min())} labelled examples; use budgets <= {int(counts.min())}"
        )
    was = base.training
    try:
        with torch.no_grad():
            out = base.eval()(data.x[:2])
    except Exception as exc:  # noqa: BLE001  (any failure of the base on the data: say which shapes met)
        raise ShapeError(
            f"the base cannot take your examples of shape {tuple(data.x.shape[1:])}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        base.train(was)
    if not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[0] != 2:
        raise ShapeError(
            f"the base's output {type(out).__name__}{tuple(out.shape) if isinstance(out, torch.Tensor) else ''} is not one "
            "feature vector per example; give a base that returns a (batch, features) tensor"
        )


# ---------------------------------------------------------------- the comparison
def _scratch(base: nn.Module, task: Task, data: TensorData, seed: int) -> nn.Module:
    if isinstance(base, nn.Sequential):
        return fresh_tail(base, 0, task.num_outputs, seed=seed)
    return cut_module(base, SCRATCH, task.num_outputs, data.x[:2], seed=seed).new


def _one_fold(
    base: nn.Module,
    data: TensorData,
    held: torch.Tensor,
    task: Task,
    cfg: AdviseConfig,
    seed: int,
    say: Callable[[str], None],
) -> tuple[dict[str, float], Any]:
    """Every method trained on ``data`` without the ``held`` examples, scored on them."""
    mask = torch.ones(len(data), dtype=torch.bool)
    mask[held] = False
    train, val = data.subset(mask.nonzero().flatten()), data.subset(held)
    fc = step_config(len(train), cfg.steps, cfg.batch_size, cfg.lr, cfg.weight_decay, seed)
    scores: dict[str, float] = {}
    model = _scratch(base, task, train, seed)
    fit(model, train, task, fc)
    scores["scratch"] = evaluate(model, val, task)[task.main_metric]
    inner = min(cfg.inner_folds, int(torch.bincount(train.y).min()))
    res = transfer(base, train, task, cut="auto", config=fc, folds=max(inner, 2), seed=seed)
    scores["transfer"], cut = evaluate(res.model, val, task)[task.main_metric], res.cut
    if "finetune" in cfg.methods:
        scores["finetune"] = evaluate(
            finetune_at(base, cut, train, task, fc, cfg.finetune_lr_scale, seed=seed), val, task
        )[task.main_metric]
    if "lora" in cfg.methods:
        try:
            scores["lora"] = evaluate(lora_at(base, cut, train, task, fc, cfg.lora_r, seed=seed), val, task)[
                task.main_metric
            ]
        except ConfigError as exc:  # no adaptable layer before the chosen cut
            say(f"  lora skipped: {exc}")
    return {m: v for m, v in scores.items() if m in cfg.methods}, cut


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"


def _bar(done: int, total: int, elapsed: float, left: float, width: int = 24) -> str:
    filled = round(width * done / max(total, 1))
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} folds, {_clock(elapsed)} elapsed, about {_clock(left)} left"


@dataclass
class Advice:
    """The comparison and the recommendation.

    Attributes:
        runs: one row per (labels per class, seed, fold, method): held-out ``accuracy`` and ``cut``.
        budgets: the label budgets compared (labels per class; the last is the one advised on).
        recommendation: the advised method.
        margin: its mean advantage over the runner-up (held-out accuracy).
        margin_se: standard error of that paired difference.
        negative_transfer: every method starting from the base scored below scratch.
        text: the advice in words.
        methods: the methods compared.
        stats: per method, the mean, std and standard error of its held-out scores.
        budget_note: what the time budget allowed (seeds, folds, time), in words.
        complete: every planned fold ran (``False`` for partial results of a run in progress or stopped).
    """

    runs: list[dict[str, Any]]
    budgets: tuple[int, ...]
    recommendation: str = ""
    margin: float = 0.0
    margin_se: float = 0.0
    negative_transfer: bool = False
    text: str = ""
    methods: tuple[str, ...] = ADVISE_METHODS
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    budget_note: str = ""
    complete: bool = True

    def report(self) -> BudgetReport:
        """The runs as a :class:`interlearn.budgets.BudgetReport` (its table and plot)."""
        bc = BudgetConfig(
            labels_per_class=self.budgets, seeds=(0,), methods=tuple(m for m in ADVISE_METHODS if m in self.methods)
        )
        return BudgetReport(runs=list(self.runs), config=bc)

    def write(self, out: str | Path, plot: bool = True) -> Path:
        """``summary.md``, ``summary.json`` and (with ``plot``) ``advise.png`` in ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        rep = self.report()
        if plot:
            rep.plot(
                out / "advise.png",
                title="your data: cross-validated accuracy",
                ylabel="held-out accuracy, cross-validated (%)",
            )
        md = ["# interlearn advise", ""]
        if not self.complete:
            md += [
                "**Partial results**: the run was stopped or is still running; the table holds the folds done so far.",
                "",
            ]
        md += [
            self.text,
            "",
            "Cross-validated accuracy (mean ± std over seeds x folds):",
            "",
            rep.table(),
            "",
        ]
        if self.budget_note:
            md += [f"**Time budget.** {self.budget_note}", ""]
        (out / "summary.md").write_text("\n".join(md))
        keys = (
            "recommendation",
            "margin",
            "margin_se",
            "negative_transfer",
            "text",
            "stats",
            "budgets",
            "budget_note",
            "complete",
        )
        (out / "summary.json").write_text(
            json.dumps({**{k: getattr(self, k) for k in keys}, "runs": self.runs}, indent=2, default=str)
        )
        return out


def _paired(a: list[float], b: list[float]) -> tuple[float, float]:
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / max(len(d) - 1, 1))
    return mean, sd / math.sqrt(len(d))


def _decide(adv: Advice) -> None:
    budget = max((r["labels_per_class"] for r in adv.runs), default=adv.budgets[-1])
    rows = [r for r in adv.runs if r["labels_per_class"] == budget]
    keys = sorted({(r["seed"], r["fold"]) for r in rows})
    by = {m: {(r["seed"], r["fold"]): r["accuracy"] for r in rows if r["method"] == m} for m in adv.methods}
    by = {m: v for m, v in by.items() if len(v) == len(keys)}  # a method skipped in some fold is not compared
    scores = {m: [v[k] for k in keys] for m, v in by.items()}
    for m, s in scores.items():
        mean = sum(s) / len(s)
        sd = math.sqrt(sum((x - mean) ** 2 for x in s) / max(len(s) - 1, 1))
        adv.stats[m] = {"mean": mean, "std": sd, "se": sd / math.sqrt(len(s))}
    ranked = sorted(scores, key=lambda m: -adv.stats[m]["mean"])
    best, second = ranked[0], ranked[1]
    adv.recommendation = best
    adv.margin, adv.margin_se = _paired(scores[best], scores[second])
    from_base = [m for m in ranked if m in _FROM_BASE]
    top = from_base[0]
    gap, gap_se = _paired(scores["scratch"], scores[top])
    adv.negative_transfer = gap > 0
    n = len(keys)
    clear = adv.margin > 2 * adv.margin_se

    def line(m: str) -> str:
        return f"{m} {100 * adv.stats[m]['mean']:.1f}% ± {100 * adv.stats[m]['se']:.1f}"

    head = (
        f"Recommendation at {budget} labels per class: **{best}** ({line(best)}, standard error over {n} seed x fold runs), "
        f"ahead of {line(second)} by {100 * adv.margin:.1f} ± {100 * adv.margin_se:.1f} points "
        f"({'a clear margin' if clear else 'within the noise: the two are not reliably different'})."
    )
    if adv.negative_transfer:
        verdict = (
            f"NEGATIVE TRANSFER: every method that starts from your base scores below training from scratch; the best of them, "
            f"{top}, is {100 * gap:.1f} ± {100 * gap_se:.1f} points behind. The base most likely comes from an unrelated "
            "domain: train from scratch"
            + (" (or find a base pretrained on data like yours)." if best == "scratch" else ".")
        )
        if best == "scratch":
            head = (
                f"Recommendation at {budget} labels per class: **train from scratch** ({line('scratch')}); the pretrained base does not "
                f"help on your data. Scratch leads {line(second)} by {100 * adv.margin:.1f} ± {100 * adv.margin_se:.1f} points "
                f"({'a clear margin' if clear else 'within the noise'})."
            )
    else:
        verdict = (
            f"No negative transfer: {top} beats training from scratch by {100 * -gap:.1f} ± {100 * gap_se:.1f} points"
            + ("." if -gap > 2 * gap_se else " (within the noise).")
        )
    cuts = sorted({str(r["cut"]) for r in rows if r["method"] == "transfer"})
    adv.text = "\n\n".join(
        [
            head,
            verdict,
            f"Cuts chosen by the inner cross-validation: {', '.join(cuts)}. Only your labelled data was used "
            f"({n} held-out folds x seeds; {', '.join(adv.methods)} trained with the same fixed budget in every fold).",
        ]
    )


@dataclass
class _Schedule:
    """The folds :func:`advise` runs, and where it stands against its time budget.

    Every read of ``clock`` is where the single-function loop read it, so a fake clock sees
    the same calls.
    """

    cfg: AdviseConfig
    budgets: tuple[int, ...]
    seeds: list[int]  # trimmed after the first fold to what fits the time budget
    folds_of: dict[tuple[int, int], tuple[TensorData, list[torch.Tensor]]]  # (seed, budget) -> labelled, folds
    clock: Callable[[], float]
    say: Callable[[str], None]
    start: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    per_fold: float | None = None
    done: int = 0
    stopped: bool = False

    def __post_init__(self) -> None:
        self.planned = sum(len(f) for _, f in self.folds_of.values())
        self.k_used = max(len(f) for _, f in self.folds_of.values())
        self.limit = self.cfg.minutes * 60.0

    def out_of_time(self) -> bool:
        """Whether the next fold would overrun the time budget (then the run stops)."""
        elapsed = self.clock() - self.start
        if self.limit and self.per_fold is not None and elapsed + self.per_fold > self.limit:
            self.stopped = True
        return self.stopped

    def record(self, seed: int, budget: int, fold: int, n_folds: int, scores: dict[str, float], cut: Any) -> None:
        """Keep one fold's scores, say them, and update the time estimate and the progress bar."""
        self.runs += [
            {"seed": seed, "fold": fold, "method": m, "accuracy": v, "cut": cut, "labels_per_class": budget}
            for m, v in scores.items()
        ]
        self.done += 1
        self.say(
            f"  seed {seed} fold {fold + 1}/{n_folds}: "
            + "  ".join(f"{m} {v:.3f}" for m, v in scores.items())
            + f"  (cut {cut})"
        )
        if self.per_fold is None:
            per_fold = self._first_estimate(seed)
        else:
            per_fold = self.per_fold = (self.clock() - self.start) / self.done
        elapsed = self.clock() - self.start
        self.say(_bar(self.done, self.planned, elapsed, max(0.0, per_fold * (self.planned - self.done))))

    def _first_estimate(self, seed: int) -> float:
        """After the first fold: the time per fold, and the seeds that fit the time budget."""
        per_fold = self.per_fold = self.clock() - self.start
        per_seed = per_fold * sum(len(self.folds_of[(seed, bb)][1]) for bb in self.budgets)
        if not self.limit:
            self.say(f"estimate: {_clock(per_fold)} per fold, about {_clock(per_fold * self.planned)} in all")
            return per_fold
        fit_seeds = max(1, min(len(self.seeds), int(self.limit // max(per_seed, 1e-9))))
        dropped = self.seeds[fit_seeds:]
        self.seeds[fit_seeds:] = []
        self.planned -= sum(len(self.folds_of[(s, bb)][1]) for s in dropped for bb in self.budgets)
        self.say(
            f"estimate: {_clock(per_fold)} per fold, {_clock(per_seed)} per seed; "
            f"{fit_seeds} seed{'s' if fit_seeds != 1 else ''} x {self.k_used} folds fit in "
            f"{self.cfg.minutes:g} min (about {_clock(per_seed * fit_seeds)})"
        )
        return per_fold

    def snapshot(self, complete: bool) -> Advice:
        """The advice from the folds run so far."""
        cfg, budgets = self.cfg, self.budgets
        adv = Advice(list(self.runs), tuple(budgets), methods=cfg.methods, complete=complete)
        if self.runs:
            _decide(adv)
        n_seeds = len({r["seed"] for r in self.runs})
        used = self.clock() - self.start
        adv.budget_note = (
            f"{n_seeds} seed{'s' if n_seeds != 1 else ''} x {self.k_used} folds x {len(budgets)} label budget"
            f"{'s' if len(budgets) != 1 else ''} ({self.done} of {self.planned} planned folds) in {_clock(used)}"
            + (
                f", within the {cfg.minutes:g}-minute budget (about {_clock(self.per_fold or 0.0)} per fold)"
                if cfg.minutes
                else ", no time budget"
            )
            + ("; stopped before the next fold would overrun the budget." if self.stopped else ".")
        )
        return adv


def _folds(data: TensorData, cfg: AdviseConfig, budgets: tuple[int, ...]) -> dict[tuple[int, int], Any]:
    """Per (seed, budget): the labelled subset and its stratified folds."""
    folds_of = {}
    for seed in cfg.seeds:
        for b in budgets:
            labelled = sample_per_class(data, b, seed=seed * 7919 + b) if cfg.labels_per_class else data
            k = min(cfg.folds, int(torch.bincount(labelled.y).min()))
            folds_of[(seed, b)] = (labelled, stratified_folds(labelled.y, k, seed))
    return folds_of


def advise(
    base: nn.Module,
    data: TensorData,
    config: AdviseConfig | None = None,
    progress: Callable[[str], None] | None = None,
    out: str | Path | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Advice:
    """Compare scratch / transfer / fine-tuning / LoRA on ``data`` with ``base`` (see the module docstring).

    Args:
        base: the pretrained model (any module; not modified).
        data: the labelled examples (integer class labels).
        config: budgets, seeds, folds, the fixed training budget and the time budget.
        progress: called with a line of text after every fold (with ``minutes``: the estimate
            after the first fold, then a progress bar with the time left).
        out: a folder to rewrite ``summary.json``/``summary.md`` in after every fold (the plot
            is drawn by :meth:`Advice.write` at the end), so a stopped run leaves its table.
        clock: seconds, monotonic (tests pass a fake one).

    Returns:
        An :class:`Advice` (``complete=False`` when the time budget stopped it early).

    Raises:
        DataError: too few labels for cross-validation, budgets above the labels available.
        ShapeError: the base does not take the examples, or returns no feature vector.
    """
    cfg = config or AdviseConfig()
    say = progress or (lambda _s: None)
    task = classification(int(data.y.max()) + 1)
    _check(base, data, task, cfg)
    budgets = tuple(cfg.labels_per_class or (round(len(data) / task.num_outputs),))
    start = clock()
    plan = _Schedule(cfg, budgets, list(cfg.seeds), _folds(data, cfg, budgets), clock, say, start)
    for si, seed in enumerate(plan.seeds):
        for b in budgets:
            labelled, folds = plan.folds_of[(seed, b)]
            say(f"labels per class {b}, seed {seed}: {len(labelled)} examples")
            for f, held in enumerate(folds):
                if plan.out_of_time():
                    break
                scores, cut = _one_fold(base, labelled, held, task, cfg, seed, say)
                plan.record(seed, b, f, len(folds), scores, cut)
                if out is not None:
                    plan.snapshot(complete=False).write(out, plot=False)
            if plan.stopped:
                break
        if plan.stopped or si + 1 >= len(plan.seeds):
            break
    return plan.snapshot(complete=not plan.stopped)
