"""The word keyboard: federated next-word prediction, personalization, an on-device model.

In the spirit of Hard et al. 2018 ("Federated Learning for Mobile Keyboard Prediction"): a CIFG
LSTM with tied input/output embeddings over a fixed vocabulary with an out-of-vocabulary token
(:mod:`interlearn.models.word_cifg`) is trained with FedAvg (McMahan et al. 2017) across
Shakespeare's speaking roles (one role = one phone, :mod:`interlearn.data.shakespeare_words`)
and scored as Hard et al. score it: top-1 and top-3 recall over in-vocabulary words
(:mod:`interlearn.keyboard.recall`). Then

* every personalized user chooses, on their own validation split, how far to adapt the global
  model: fine-tuning steps, an interpolation weight, or Ditto's ``lambda``
  (:mod:`interlearn.federated.personalization.select`); optionally FedPer (Arivazhagan et al. 2019)
  trains personal output layers with the users (``fedper_rounds``);
* the on-device model is the most accurate variant within a quarter of the float32 global
  model's bytes among int8/int4 weight-only quantization, low-rank factors and magnitude
  pruning (:mod:`interlearn.ondevice`), with its latency per suggestion;
* the keyboard shows the next three words for a typed prefix, before and after
  personalization, and from the on-device model.

``kind: keyboard_words`` recipes, ``examples/keyboard.py`` and ``benchmarks/keyboard_words.py``
call the functions here.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from interlearn.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from interlearn.data.shakespeare_words import (
    BOS,
    OOV,
    PAD,
    ShakespeareWords,
    WordUser,
    load_shakespeare_words,
    masked_cross_entropy,
)
from interlearn.data.tensors import TensorData
from interlearn.errors import CheckpointError, ConfigError, DataError
from interlearn.federated.client import LocalSGD
from interlearn.federated.params import load_params, model_params
from interlearn.federated.personalization.local import FedPerUpdate, personal_heads
from interlearn.federated.personalization.memory import Memory, MemoryConfig, MemoryModel, encode, personalize_memory
from interlearn.federated.personalization.select import (
    METHODS,
    SelectConfig,
    SelectionReport,
    personalize_validated,
    plot_gains,
)
from interlearn.federated.schedule import Schedule, piecewise
from interlearn.federated.server.callbacks import Callback
from interlearn.federated.server.loop import RunState, Server
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.keyboard.cache import CachedModel, cache_candidates, evaluate_cached
from interlearn.keyboard.recall import evaluate_recall
from interlearn.keyboard.suggest import encode_prefix, suggest_words
from interlearn.models.word_cifg import WordCIFG, word_cifg
from interlearn.ondevice.frontier import ENCODINGS, Variant, choose, latency_ms, measure_variants, plot_frontier
from interlearn.recipes.keyboard_common import check_at_least, check_federated, population_of, spread
from interlearn.types import Params

__all__ = [
    "Config",
    "run",
    "population_of",
    "test_set",
    "train_global",
    "personalization_users",
    "personalize_users",
    "fedper_users",
    "ondevice_frontier",
    "user_memory",
    "MEMORY",
    "HEAD",
    "ONDEVICE_ENCODINGS",
]

HEAD = ("proj.*", "out_bias")
"""FedPer's personal layers of the word model: the projection to the (tied) output embedding
and the output bias (the embedding itself is shared with the input, so it stays global)."""

ONDEVICE_ENCODINGS = (
    "float32",
    "float16",
    "int8",
    "int4",
    "int4-g64",
    "int4-g32",
    "lowrank0.5+int8",
    "lowrank0.25+int8",
    "prune50+int8",
)


@dataclass(frozen=True)
class Config:
    """A word-keyboard run (defaults: a small, quick run on Tiny Shakespeare).

    Attributes:
        data_dir: folder holding ``shakespeare/`` (``None``: ``$INTERLEARN_DATA``).
        source: ``"tiny"`` (Tiny Shakespeare roles) or ``"complete"`` (LEAF's play + role users).
        max_users: keep the users with the most words (``None``: all).
        vocab_size: words in the vocabulary (Hard et al.: 10,000; 5,000 covers 93% of the
            complete works' test words and halves the output layer's compute).
        seq_len: words per training chunk.
        embed_dim: tied embedding size (96 in Hard et al.).
        hidden: CIFG units (670 in Hard et al.).
        strategy: ``"fedavg"`` or ``"fedadam"`` (server side).
        server_lr: server learning rate.
        rounds: federated rounds.
        clients_per_round: cohort size.
        local_epochs: local epochs per round.
        max_local_steps: exactly this many local steps per round instead (``None``: epochs).
        batch_size: local batch size (chunks).
        client_optimizer: ``"sgd"`` or ``"adam"`` (a fresh optimizer every round).
        client_lr: local learning rate.
        client_lr_schedule: step decay, ``((after_round, lr), ...)``: from round ``after_round + 1``
            on, clients use ``lr`` (empty: ``client_lr`` throughout). Local Adam restarts every
            round, so late in training a smaller step keeps clients from drifting apart.
        eval_every: test recall every N rounds for the accuracy-vs-rounds curve (0: only at the end).
        test_users: users whose test text forms the global test sample (spread over all sizes).
        personalize_users: users personalized (those with enough validation and test words).
        min_personal_words: validation and test words a personalized user needs at least.
        personalize_methods: from ``finetune``, ``interpolate``, ``ditto`` and ``cache`` (the
            user's own word statistics interpolated with the global model,
            :mod:`interlearn.keyboard.cache`).
        personalize_steps: fine-tuning step counts tried per user.
        personalize_optimizer: ``"adam"`` (the global model is trained with Adam on the clients,
            so its parameters' gradient scales differ widely) or ``"sgd"``.
        personalize_lr: learning rate of personalization.
        ditto_lams: Ditto ``lambda`` values tried.
        cache_lams: interpolation weights of the personal cache tried.
        select_by: what each user's validation split ranks candidates by: ``"loss"``
            (cross-entropy, smooth) or ``"top1"`` (recall; ties on small splits).
        fedper_rounds: FedPer rounds among the personalized users, warm-started from the global
            model (0: no FedPer).
        fedper_lr: FedPer's local SGD learning rate.
        ondevice_encodings: on-device variants measured (names of ``interlearn.ondevice.ENCODINGS``).
        ondevice_budget: byte budget of the on-device model as a fraction of the float32 global model.
        user: the user whose suggestions are shown (``None``: the first personalized user).
        prefix: the typed text the suggestions continue.
        engine: federated engine (``"sequential"``; the word model's client update is plain LocalSGD).
        checkpoint: load the global model from this folder instead of training.
        seed: the run's seed.
    """

    data_dir: str | None = None
    source: Literal["tiny", "complete"] = "tiny"
    max_users: int | None = 40
    vocab_size: int = 2000
    seq_len: int = 20
    embed_dim: int = 96
    hidden: int = 256
    strategy: str = "fedavg"
    server_lr: float = 1.0
    rounds: int = 3
    clients_per_round: int = 10
    local_epochs: int = 1
    max_local_steps: int | None = 4
    batch_size: int = 10
    client_optimizer: Literal["sgd", "adam"] = "adam"
    client_lr: float = 3e-3
    client_lr_schedule: tuple[tuple[int, float], ...] = ()
    eval_every: int = 0
    test_users: int = 100
    personalize_users: int = 5
    min_personal_words: int = 20
    personalize_methods: tuple[str, ...] = (*METHODS, "cache")
    personalize_steps: tuple[int, ...] = (0, 10, 20, 40)
    personalize_optimizer: Literal["sgd", "adam"] = "adam"
    personalize_lr: float = 1e-3
    ditto_lams: tuple[float, ...] = (0.1, 1.0)
    cache_lams: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
    select_by: Literal["loss", "top1"] = "loss"
    fedper_rounds: int = 0
    fedper_lr: float = 0.5
    ondevice_encodings: tuple[str, ...] = ONDEVICE_ENCODINGS
    ondevice_budget: float = 0.25
    user: str | None = None
    prefix: str = "I pray you, my good lord, let me "
    engine: str = "sequential"
    checkpoint: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        positive = (
            "vocab_size",
            "seq_len",
            "embed_dim",
            "hidden",
            "rounds",
            "clients_per_round",
            "local_epochs",
            "batch_size",
            "test_users",
        )
        check_at_least(self, "keyboard_words", positive, 1)
        check_at_least(
            self, "keyboard_words", ("eval_every", "personalize_users", "min_personal_words", "fedper_rounds"), 0
        )
        check_federated(self, "keyboard_words")
        for name in ("client_lr", "server_lr", "personalize_lr", "fedper_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"keyboard_words.{name}={getattr(self, name)}: must be > 0")
        rounds_at = [int(r) for r, _ in self.client_lr_schedule]
        if (
            rounds_at != sorted(set(rounds_at))
            or any(r < 1 or r >= self.rounds for r in rounds_at)
            or any(not lr > 0 for _, lr in self.client_lr_schedule)
        ):
            raise ConfigError(
                f"keyboard_words.client_lr_schedule={self.client_lr_schedule} with rounds={self.rounds}: the schedule "
                "needs increasing rounds in [1, rounds) with positive learning rates, e.g. ((500, 0.001),); for a "
                "shorter run, move its rounds below rounds or drop it (client_lr_schedule: [], or "
                "--client-lr-schedule '' in benchmarks/keyboard_words.py)"
            )
        if not 0 < self.ondevice_budget <= 1:
            raise ConfigError(
                f"keyboard_words.ondevice_budget={self.ondevice_budget}: a fraction in (0, 1] of the global model's bytes"
            )
        bad = [m for m in self.personalize_methods if m not in (*METHODS, "cache")]
        if bad or not self.personalize_methods:
            raise ConfigError(
                f"keyboard_words.personalize_methods: {bad or 'empty'}; choose from {[*METHODS, 'cache']}"
            )
        if any(not 0 < v <= 1 for v in self.cache_lams) or not self.cache_lams:
            raise ConfigError(f"keyboard_words.cache_lams={self.cache_lams}: interpolation weights in (0, 1]")
        SelectConfig(
            steps=self.personalize_steps, lams=self.ditto_lams, optimizer=self.personalize_optimizer
        )  # validates the grids

        bad = [e for e in self.ondevice_encodings if e not in ENCODINGS]
        if bad:
            raise ConfigError(f"keyboard_words.ondevice_encodings: {bad} unknown; choose from {list(ENCODINGS)}")


def test_set(users: list[WordUser], max_users: int) -> TensorData:
    """The test chunks of every ``len(users) // max_users``-th user (users sorted by name, so
    the sample spans small and large users)."""
    chosen = spread(users, max_users)
    return TensorData(torch.cat([u.test.x for u in chosen]), torch.cat([u.test.y for u in chosen]))


def _words(d: TensorData) -> int:
    return int((d.y != PAD).sum())


def train_global(
    model: WordCIFG,
    data: ShakespeareWords,
    cfg: Config,
    run_dir: Path | None,
    test: TensorData | None = None,
    progress: bool = True,
) -> tuple[Params, list[tuple[int, float]]]:
    """FedAvg (or FedAdam) of the word model over all users' training chunks: one
    :func:`~interlearn.federated.simulate` call.

    The client learning rate follows ``cfg.client_lr_schedule`` (a schedule of the round,
    :func:`client_lr`). With ``cfg.eval_every`` and a ``test`` sample, a callback
    (:class:`RecallCurve`) measures the top-1 recall every ``eval_every`` rounds and after the
    last one: the accuracy-vs-rounds curve, kept in ``run_dir/curve.json``. A run folder that
    already holds a checkpoint continues from it: rounds done before are not repeated, their
    curve points are read back.

    Returns:
        The global params and ``[(round, top1_recall)]``.

    Raises:
        CheckpointError: the run folder's checkpoint is past ``cfg.rounds``.
    """
    if run_dir is None:  # resuming and the curve need a folder
        with tempfile.TemporaryDirectory(prefix="interlearn-keyboard-") as tmp:
            return train_global(model, data, cfg, Path(tmp), test, progress)
    done = _checkpoint_round(Path(run_dir), cfg.rounds)
    every = cfg.eval_every if (cfg.eval_every and test is not None) else cfg.rounds
    curve = RecallCurve(model, test, every, Path(run_dir), progress, done)
    update = LocalSGD(
        epochs=cfg.local_epochs,
        steps=cfg.max_local_steps,
        batch_size=cfg.batch_size,
        lr=client_lr(cfg),
        optimizer=cfg.client_optimizer,
        loss=masked_cross_entropy,
    )
    sim = SimulationConfig(
        rounds=cfg.rounds,
        clients_per_round=cfg.clients_per_round,
        eval_every=0,
        client_eval=False,
        checkpoint_every=every,
        seed=cfg.seed,
        progress=progress,
    )
    strategy = get_strategy(cfg.strategy, lr=cfg.server_lr)
    pop = population_of(data.users)
    res = simulate(
        model, pop, update, strategy, sim, engine=cfg.engine, run_dir=run_dir, resume=True, callbacks=[curve]
    )
    return res.params, curve.points


def client_lr(cfg: Config) -> Schedule:
    """``cfg.client_lr`` until the first ``(after_round, lr)`` of ``cfg.client_lr_schedule``,
    then ``lr`` from round ``after_round + 1`` on (step decay)."""
    values = {1: cfg.client_lr}
    for after, lr in sorted(cfg.client_lr_schedule):
        values[int(after) + 1] = lr
    return piecewise(values)


def _checkpoint_round(run_dir: Path, rounds: int) -> int:
    """The round the run folder's checkpoint is after (0 without one).

    Raises:
        CheckpointError: it is past ``rounds``.
    """
    if not has_checkpoint(run_dir / "checkpoint"):
        return 0
    done = int(load_checkpoint(run_dir / "checkpoint")[1].get("round", 0))
    if done > rounds:
        raise CheckpointError(
            f"{run_dir} holds a checkpoint after round {done}, past rounds={rounds}; ask for >= {done} rounds "
            "or use another run folder"
        )
    return done


class RecallCurve(Callback):
    """The accuracy-vs-rounds curve: top-1 recall on ``test`` every ``every`` rounds and after
    the last, kept in ``run_dir/curve.json`` (points up to ``done`` are read back from there)."""

    def __init__(
        self, model: WordCIFG, test: TensorData | None, every: int, run_dir: Path, progress: bool, done: int
    ) -> None:
        self.model, self.test, self.every, self.path, self.progress = (
            model,
            test,
            every,
            run_dir / "curve.json",
            progress,
        )
        stored = json.loads(self.path.read_text()) if done and self.path.is_file() else []
        self.points: list[tuple[int, float]] = [(int(r), float(v)) for r, v in stored if int(r) <= done]

    def on_round(self, server: Server, state: RunState, record: dict[str, Any]) -> None:
        r = state.round
        if r % self.every == 0 or server.done(state):
            self._measure(r, state.params)

    def on_end(self, server: Server, state: RunState, failed: bool) -> None:
        if not failed and state.round == server.config.rounds:  # a resumed, finished run: its last point
            self._measure(state.round, state.params)

    def _measure(self, r: int, params: Params) -> None:
        if self.test is None or r in dict(self.points):
            return
        self.points.append((r, evaluate_recall(self.model, params, self.test)["top1_recall"]))
        if self.progress:
            print(f"[keyboard] round {r}: test top-1 recall {self.points[-1][1]:.4f}", flush=True)
        self.path.write_text(json.dumps(self.points))


def personalization_users(data: ShakespeareWords, n: int, min_words: int) -> list[WordUser]:
    """``n`` users spread over sizes (every k-th by training words) among those with at least
    ``min_words`` validation and test words."""
    ok = sorted(
        (u for u in data.users if _words(u.val) >= min_words and _words(u.test) >= min_words),
        key=lambda u: (-_words(u.train), u.name),
    )
    if n == 0 or not ok:
        return []
    return spread(ok, n)


def _score(model: torch.nn.Module, personal: Any, data: TensorData) -> float:
    return _evaluate(model, personal, data)["top1_recall"]


def _minus_loss(model: torch.nn.Module, personal: Any, data: TensorData) -> float:
    return -_evaluate(model, personal, data)["loss"]


def _evaluate(model: torch.nn.Module, personal: Any, data: TensorData) -> dict[str, float]:
    if isinstance(personal, CachedModel):
        return evaluate_cached(model, personal, data)
    return evaluate_recall(model, personal, data)


def personalize_users(
    model: WordCIFG, params: Params, users: list[WordUser], cfg: Config, keep: tuple[str, ...] = ()
) -> tuple[SelectionReport, dict[str, dict[str, Any]]]:
    """Validation-selected personalization of every user in ``users``: each method's setting is
    chosen on the user's validation split (by ``cfg.select_by``); test top-1 recall reports."""
    param_methods = tuple(m for m in cfg.personalize_methods if m in METHODS)
    sel = SelectConfig(
        methods=param_methods or ("finetune",),
        steps=cfg.personalize_steps if param_methods else (0,),
        lams=cfg.ditto_lams,
        lr=cfg.personalize_lr,
        batch_size=cfg.batch_size,
        optimizer=cfg.personalize_optimizer,
        seed=cfg.seed,
    )
    extra = (
        {"cache": cache_candidates(params, model.config.vocab_size, cfg.cache_lams)}
        if "cache" in cfg.personalize_methods
        else {}
    )
    return personalize_validated(
        model,
        params,
        [(u.name, u.train, u.val, u.test) for u in users],
        _score,
        sel,
        loss_fn=masked_cross_entropy,
        keep=keep,
        select=_minus_loss if cfg.select_by == "loss" else None,
        extra_methods=extra,
    )


def fedper_users(
    model: WordCIFG, params: Params, users: list[WordUser], cfg: Config, run_dir: Path, progress: bool = False
) -> dict[str, dict[str, float]]:
    """FedPer (Arivazhagan et al. 2019) among ``users``, warm-started from the global model:
    ``cfg.fedper_rounds`` rounds in which the shared layers are averaged and every client keeps
    its own :data:`HEAD` (client state, read back from ``run_dir``'s checkpoint). Returns each
    user's test top-1 recall with the final shared layers and their personal head; users who
    never took part use the shared model's head."""
    pop = population_of(users)
    update = FedPerUpdate(
        epochs=1, batch_size=cfg.batch_size, lr=cfg.fedper_lr, head_patterns=HEAD, loss=masked_cross_entropy
    )
    sim = SimulationConfig(
        rounds=cfg.fedper_rounds,
        clients_per_round=min(cfg.clients_per_round, len(users)),
        eval_every=0,
        client_eval=False,
        checkpoint_every=cfg.fedper_rounds,
        seed=cfg.seed + 7,
        progress=progress,
    )
    res = simulate(
        model, pop, update, get_strategy("fedavg"), sim, engine="sequential", initial_params=params, run_dir=run_dir
    )
    try:
        heads = personal_heads(res, run_dir=run_dir)
    except DataError:
        heads = {}
    out = {}
    for cid, u in enumerate(users):
        personal = {**res.params, **heads.get(cid, {})}
        out[u.name] = {"test": _score(model, personal, u.test), "participated": float(cid in heads)}
    return out


def ondevice_frontier(
    model: WordCIFG, params: Params, test: TensorData, cfg: Config, run_dir: Path | None
) -> tuple[list[Variant], Variant, Variant | None, Params | None]:
    """Measure every on-device encoding of the global model on the test sample.

    Returns:
        ``(variants, float32 reference, chosen variant or None, its decoded params)``.
    """
    metric = lambda m, p: evaluate_recall(m, p, test)
    variants, decoded = measure_variants(
        {"global": (model, params)},
        ("float32", *[e for e in cfg.ondevice_encodings if e != "float32"]),
        metric,
        "top1_recall",
    )
    ref = next(v for v in variants if v.encoding == "float32")
    budget = int(ref.bytes * cfg.ondevice_budget)
    best = choose([v for v in variants if v is not ref], budget)
    if run_dir is not None:
        plot_frontier(
            variants,
            run_dir / "ondevice_frontier.png",
            ref,
            budget,
            ylabel="top-1 recall",
            title=f"Keyboard on-device variants (budget {cfg.ondevice_budget:g} x float32)",
        )
    return variants, ref, best, decoded[best.name] if best else None


def run(config: Config, run_dir: Path, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train (or load) the global model, personalize, pick the on-device model, suggest words.

    Writes ``suggestions.txt``, ``personalization.json``/``.png``, ``ondevice.json``,
    ``ondevice_frontier.png`` and the global checkpoint (``global/``) into ``run_dir``.

    Returns:
        Summary rows ``global``, ``personalized`` and ``ondevice``.
    """
    cfg = config
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    data = load_shakespeare_words(
        cfg.data_dir, source=cfg.source, vocab_size=cfg.vocab_size, seq_len=cfg.seq_len, max_users=cfg.max_users
    )
    model = word_cifg(len(data.vocab), cfg.embed_dim, cfg.hidden)
    test = test_set(data.users, cfg.test_users)
    gparams, rows = global_model(model, data, cfg, run_dir, test, progress)
    people = personalization_users(data, cfg.personalize_users, cfg.min_personal_words)
    shown = data.user(cfg.user) if cfg.user else (people[0] if people else data.users[0])
    if shown not in people and people:
        people = [shown] + people[:-1]
    personal: dict[str, Params] = {}
    if people:
        rows["personalized"], personal = personalized_row(model, gparams, people, shown, cfg, run_dir)
    variants, ref, best, best_params = ondevice_frontier(model, gparams, test, cfg, run_dir)
    rows["ondevice"] = ondevice_row(model, data, variants, ref, best, cfg, run_dir)
    lines = [
        f"user {shown.name}: typed {cfg.prefix!r}",
        "  global model        : " + _fmt(suggest_words(model, data.vocab, cfg.prefix, params=gparams)),
    ]
    if personal and "personalized" in rows:
        method = rows["personalized"]["method"]
        lines.append(
            f"  after personalizing : {_fmt(suggest_words(model, data.vocab, cfg.prefix, params=personal[method]))}  ({method})"
        )
    lines += memory_lines(model, data, gparams, shown, cfg, rows)
    if best_params is not None and best is not None:
        lines.append(
            f"  on-device {best.encoding:<10}: {_fmt(suggest_words(model, data.vocab, cfg.prefix, params=best_params))}  "
            f"({best.bytes / 1024:.0f} KiB stored vs {ref.bytes / 1024:.0f} KiB float32)"
        )
    load_params(model, gparams)
    (run_dir / "suggestions.txt").write_text("\n".join(lines) + "\n")
    if progress:
        print("\n".join(lines), flush=True)
    return rows


def global_model(
    model: WordCIFG, data: ShakespeareWords, cfg: Config, run_dir: Path, test: TensorData, progress: bool
) -> tuple[Params, dict[str, dict[str, Any]]]:
    """The global params (trained, or loaded from ``cfg.checkpoint``) and the ``global`` row.

    Raises:
        CheckpointError: the checkpoint was trained with another vocabulary or model size.
    """
    if cfg.checkpoint:
        tensors, meta = load_checkpoint(cfg.checkpoint)
        if meta.get("vocab") != list(data.vocab.words) or meta.get("model") != model.config.to_dict():
            raise CheckpointError(
                f"checkpoint {cfg.checkpoint} was trained with another vocabulary or model size ({meta.get('model')}); "
                "use the same source/max_users/vocab_size/embed_dim/hidden or train anew"
            )
        load_params(model, tensors)
        curve: list[tuple[int, float]] = []
        gparams, rounds = model_params(model), int(meta.get("rounds", 0))
    else:
        gparams, curve = train_global(model, data, cfg, run_dir / "federated", test, progress)
        rounds = cfg.rounds
        save_checkpoint(
            run_dir / "global",
            gparams,
            {"vocab": list(data.vocab.words), "model": model.config.to_dict(), "rounds": rounds},
        )
    g = evaluate_recall(model, gparams, test)
    row: dict[str, Any] = {
        "top1_recall": g["top1_recall"],
        "top3_recall": g["top3_recall"],
        "rounds": rounds,
        "params": sum(v.numel() for v in gparams.values()),
        "test_words": int(g["words"]),
    }
    if curve:
        row["curve"] = curve
    return gparams, {"global": row}


def personalized_row(
    model: WordCIFG, gparams: Params, people: list[WordUser], shown: WordUser, cfg: Config, run_dir: Path
) -> tuple[dict[str, Any], dict[str, Params]]:
    """Personalize ``people`` (and FedPer when asked): the ``personalized`` row, and the shown
    user's personal params by method; writes ``personalization.json``/``.png``."""
    report, kept = personalize_users(model, gparams, people, cfg, keep=(shown.name,))
    extra = {}
    if cfg.fedper_rounds:
        fp = fedper_users(model, gparams, people, cfg, run_dir / "fedper", progress=False)
        extra["fedper"] = [fp[u.user]["test"] - u.global_test for u in report.users]
    shipped = report.validated_method() or "best"
    s = report.summary(shipped)
    row = {
        "top1_recall": s["personal_median"],
        "global_median": s["global_median"],
        "median_gain": s["median_gain"],
        "improved_fraction": s["improved_fraction"],
        "users": s["users"],
        "method": shipped,
    }
    payload = report.to_dict()
    if extra:
        gains = extra["fedper"]
        payload["summary"]["fedper"] = {
            "median_gain": statistics.median(gains),
            "improved_fraction": sum(x > 0 for x in gains) / len(gains),
            "rounds": cfg.fedper_rounds,
        }
    (run_dir / "personalization.json").write_text(json.dumps(payload, indent=1))
    plot_gains(report, run_dir / "personalization.png", title="Keyboard personalization (top-1 recall)", extra=extra)
    return row, kept.get(shown.name, {})


def ondevice_row(
    model: WordCIFG,
    data: ShakespeareWords,
    variants: list[Variant],
    ref: Variant,
    best: Variant | None,
    cfg: Config,
    run_dir: Path,
) -> dict[str, Any]:
    """The ``ondevice`` row (and ``ondevice.json``): the chosen variant and the latency."""
    x, _ = encode_prefix(data.vocab, cfg.prefix, cfg.seq_len)
    lat = latency_ms(lambda: model.next_word_logits(x).topk(3), repeats=30)
    (run_dir / "ondevice.json").write_text(
        json.dumps(
            {
                "variants": [v.__dict__ for v in variants],
                "chosen": best.__dict__ if best else None,
                "budget_bytes": int(ref.bytes * cfg.ondevice_budget),
                "latency": lat,
            },
            indent=1,
        )
    )
    return {
        "top1_recall": best.accuracy if best else None,
        "bytes": best.bytes if best else None,
        "encoding": best.encoding if best else None,
        "global_bytes": ref.bytes,
        "latency_ms": lat["median_ms"],
    }


def memory_lines(
    model: WordCIFG, data: ShakespeareWords, gparams: Params, shown: WordUser, cfg: Config, rows: dict[str, Any]
) -> list[str]:
    """The shown user's suggestions with a local memory (and the ``memory`` row), if it has one."""
    try:
        memory, mem_model = user_memory(model, gparams, shown)
    except DataError:  # no in-vocabulary training or validation words: no memory to show
        return []
    rows["memory"] = {
        "entries": len(memory.store),
        "bytes": memory.store.nbytes,
        "lam": memory.setting.lam,
        "k": memory.setting.k,
    }
    return [
        f"  with a local memory : {_fmt(suggest_words(model, data.vocab, cfg.prefix, params=mem_model))}  "
        + (
            f"(memory: {len(memory.store):,} words, {memory.store.nbytes / 1024:.0f} KiB on the phone, never uploaded; "
            f"lam={memory.setting.lam:g}, k={memory.setting.k} chosen on validation)"
            if memory.setting.lam > 0
            else f"(the memory of {len(memory.store):,} words did not help on this user's validation words: "
            "lam=0, the global model; never uploaded)"
        )
    ]


MEMORY = MemoryConfig(layer="proj", side="output", ignore_labels=(PAD, OOV, BOS), mask_classes=(PAD, OOV, BOS))
"""The word keyboard's local memory: the projection the tied output layer reads, per position;
special tokens are neither remembered nor suggested."""


def user_memory(model: WordCIFG, params: Params, user: WordUser) -> tuple[Memory, MemoryModel]:
    """One user's local memory (kNN-Per, :mod:`interlearn.federated.personalization.memory`) over the global
    model: built from their training words, its mixture weight chosen on their validation words
    (0 when it does not help there), then their validation words added."""
    train, val = (encode(model, params, d, MEMORY) for d in (user.train, user.val))
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"user {user.name}: no in-vocabulary training or validation words for a memory")
    memory, _ = personalize_memory(train, val, model.config.vocab_size, MEMORY)
    return memory, MemoryModel(params, memory, MEMORY)


def _fmt(s: list[tuple[str, float]]) -> str:
    return "  ".join(f"{w!r} {p:.2f}" for w, p in s)
