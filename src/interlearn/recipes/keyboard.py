"""The keyboard: federated next-character prediction, an on-device model, personalization.

A phone keyboard's model is trained across users without their keystrokes leaving the phone
(FedAvg / FedAdam over Shakespeare's speaking roles, McMahan et al. 2017; Reddi et al. 2021),
distilled into a smaller int8 model for the device (Hinton et al. 2015, federated: every phone
distils the global model on its own text), and personalized on each phone with a few local
steps (Wang et al. 2019). ``kind: keyboard`` recipes run :func:`run`; ``benchmarks/shakespeare.py``
calls the same functions (LEAF's next-character benchmark; the next-word keyboard of
``examples/keyboard.py`` is :mod:`interlearn.recipes.keyboard_words`).

Training uses the TFF layout (non-overlapping 80-character chunks, a label at every position;
Reddi et al. 2021) because it visits each character once per epoch; accuracy is the fraction of
next characters predicted right over every position of the test chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from interlearn.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from interlearn.config import MAX_LR
from interlearn.data.shakespeare import CharVocab, ShakespeareData, ShakespeareUser, load_shakespeare
from interlearn.errors import CheckpointError, ConfigError
from interlearn.federated.client import LocalSGD
from interlearn.federated.client.distill_update import FedDistillUpdate
from interlearn.federated.params import load_params, model_params
from interlearn.federated.personalization.local import (
    PersonalizationReport,
    PersonalizeConfig,
    personalize,
    plot_personalization,
)
from interlearn.federated.server.evaluate import evaluate_params
from interlearn.federated.server.simulation import SimulationConfig, SimulationResult, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.models.char_lstm import CharLSTM, char_lstm, ondevice_char_lstm
from interlearn.ondevice.quantize import dequantize_weights, model_bytes, quantize_weights
from interlearn.recipes.keyboard_common import check_at_least, check_federated, population_of, spread
from interlearn.recipes.names import EngineName, StrategyName
from interlearn.types import Params

__all__ = [
    "Config",
    "run",
    "population_of",
    "held_out_set",
    "train_global",
    "distill_ondevice",
    "int8_copy",
    "suggest",
    "personalize_users",
]


@dataclass(frozen=True)
class Config:
    """A keyboard run (defaults: a small, quick run on Tiny Shakespeare).

    Attributes:
        data_dir: folder holding ``shakespeare/`` (``None``: ``$INTERLEARN_DATA``).
        source: ``"tiny"`` (Tiny Shakespeare roles) or ``"complete"`` (LEAF's play + role users).
        max_users: keep the users with the most text (``None``: all).
        strategy: a registered strategy that takes ``lr`` (``"fedavg"``, ``"fedadam"``, ...).
        server_lr: server learning rate (1.0 for FedAvg; Reddi et al. use 1e-2 for FedAdam).
        rounds: federated rounds for the global model.
        clients_per_round: cohort size (10 in the literature).
        local_epochs: local epochs per round (1 in the literature).
        max_local_steps: exactly this many local steps per round instead of ``local_epochs``
            (``None``: full epochs, as in the literature; a number keeps CPU rounds short).
        batch_size: local batch size (80-character chunks).
        client_lr: local SGD learning rate.
        hidden: LSTM units of the global model (256 in the literature).
        ondevice_hidden: LSTM units of the on-device student.
        distill_rounds: federated distillation rounds for the student (0: no on-device model).
        personalize_users: users fine-tuned and scored (largest first; 0: skip).
        personalize_steps: local fine-tuning steps per user.
        personalize_scope: ``"head"`` (last layer) or ``"all"``.
        personalize_lr: fine-tuning learning rate.
        test_users: users whose test text forms the global test set.
        test_chunks_per_user: cap on test chunks per user.
        user: the user whose suggestions are shown (``None``: the one with the most text).
        prefix: the typed text the suggestions continue.
        engine: the engine of the global model's training (``"auto"``: the fastest, logged).
        checkpoint: load the global model from this checkpoint folder instead of training
            (it is written to ``<run>/global`` after training).
        seed: the run's seed.
    """

    data_dir: str | None = None
    source: Literal["tiny", "complete"] = "tiny"
    max_users: int | None = 40
    strategy: StrategyName = "fedavg"
    server_lr: float = 1.0
    rounds: int = 3
    clients_per_round: int = 10
    local_epochs: int = 1
    max_local_steps: int | None = 4
    batch_size: int = 10
    client_lr: float = 1.0
    hidden: int = 64
    ondevice_hidden: int = 32
    distill_rounds: int = 2
    personalize_users: int = 5
    personalize_steps: int = 10
    personalize_scope: Literal["head", "all"] = "all"
    personalize_lr: float = 0.5
    test_users: int = 20
    test_chunks_per_user: int = 8
    user: str | None = None
    prefix: str = "What say you, my lord? I pray you, tell me th"
    engine: EngineName = "auto"
    checkpoint: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        positive = (
            "rounds",
            "clients_per_round",
            "local_epochs",
            "batch_size",
            "hidden",
            "ondevice_hidden",
            "test_users",
            "test_chunks_per_user",
        )
        check_at_least(self, "keyboard", positive, 1)
        check_at_least(self, "keyboard", ("distill_rounds", "personalize_users", "personalize_steps"), 0)
        check_federated(self, "keyboard")
        for name in ("client_lr", "server_lr", "personalize_lr"):
            if not 0 < getattr(self, name) <= MAX_LR:
                raise ConfigError(
                    f"keyboard.{name}={getattr(self, name):g}: must be in (0, {MAX_LR:g}] (1.0 is usual for the LSTM's SGD)"
                )
        if not self.prefix:
            raise ConfigError("keyboard.prefix is empty: type a few characters for the suggestions")


def held_out_set(users: list[ShakespeareUser], max_users: int, per_user: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_user`` test chunks of every ``len(users) // max_users``-th user (a fixed,
    spread-out sample, so the test cost does not grow with the population)."""
    chosen = spread(users, max_users)
    return torch.cat([u.test.x[:per_user] for u in chosen]), torch.cat([u.test.y[:per_user] for u in chosen])


def train_global(
    model: CharLSTM,
    data: ShakespeareData,
    cfg: Config,
    run_dir: Path | None,
    progress: bool = True,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    eval_every: int = 1,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> SimulationResult:
    """Federated training of the global model (the configured strategy, engine and budget); with
    ``checkpoint_every`` and ``resume`` a killed run continues from ``run_dir``'s checkpoint."""
    strategy = get_strategy(cfg.strategy, lr=cfg.server_lr)
    update = LocalSGD(epochs=cfg.local_epochs, steps=cfg.max_local_steps, batch_size=cfg.batch_size, lr=cfg.client_lr)
    sim = SimulationConfig(
        rounds=cfg.rounds,
        clients_per_round=cfg.clients_per_round,
        eval_every=eval_every,
        client_eval_max=1,
        checkpoint_every=checkpoint_every,
        seed=cfg.seed,
        progress=progress,
    )
    return simulate(
        model,
        population_of(data.users),
        update,
        strategy,
        sim,
        engine=cfg.engine,
        test=test,
        run_dir=run_dir,
        resume=resume,
    )


def distill_ondevice(teacher: CharLSTM, data: ShakespeareData, cfg: Config, progress: bool = True) -> CharLSTM:
    """Federated distillation of the small on-device model from the trained global model."""
    student = ondevice_char_lstm(len(data.vocab), hidden=cfg.ondevice_hidden, output="all")
    update = FedDistillUpdate(
        teacher=teacher, epochs=1, batch_size=cfg.batch_size, lr=cfg.client_lr, max_steps=cfg.max_local_steps
    )
    sim = SimulationConfig(
        rounds=cfg.distill_rounds,
        clients_per_round=cfg.clients_per_round,
        eval_every=0,
        client_eval_max=1,
        seed=cfg.seed + 1,
        progress=progress,
    )
    res = simulate(student, population_of(data.users), update, get_strategy("fedavg"), sim, engine="auto")
    load_params(student, res.params)
    return student


def int8_copy(model: CharLSTM) -> CharLSTM:
    """The model as it runs on the device: weights rounded through the int8 format."""
    twin = CharLSTM(model.config)
    twin.load_state_dict(dequantize_weights(quantize_weights(dict(model.state_dict()), 8)))
    return twin.eval()


@torch.no_grad()
def suggest(
    model: CharLSTM, vocab: CharVocab, prefix: str, k: int = 3, params: Params | None = None
) -> list[tuple[str, float]]:
    """The ``k`` most likely next characters after ``prefix`` and their probabilities."""
    if params is not None:
        load_params(model, params)
    model.eval()
    probs = model.next_char_probs(vocab.encode(prefix).unsqueeze(0))[0]
    probs[0] = 0.0  # the unknown-character slot is not a suggestion
    top = probs.topk(k)
    return [(vocab.decode([int(i)]), float(p)) for p, i in zip(top.values, top.indices)]


def personalize_users(
    model: CharLSTM,
    params: Params,
    users: list[ShakespeareUser],
    cfg: Config,
    scope: str | None = None,
    max_eval: int | None = None,
) -> tuple[PersonalizationReport, dict[str, Params]]:
    """Fine-tune ``params`` on each of the given users' own training text; score on their test text."""
    pc = PersonalizeConfig(
        scope=scope or cfg.personalize_scope,
        steps=cfg.personalize_steps,
        lr=cfg.personalize_lr,
        batch_size=cfg.batch_size,
        max_eval=max_eval,
        seed=cfg.seed,
    )
    return personalize(model, params, [(u.name, u.train, u.test) for u in users], pc)


def run(config: Config, run_dir: Path, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train (or load) the global model, distil the on-device model, personalize, suggest.

    Returns:
        Summary rows (global / on-device / personalized) for the run's report.
    """
    cfg = config
    torch.manual_seed(cfg.seed)
    data = load_shakespeare(cfg.data_dir, source=cfg.source, mode="sequence", max_users=cfg.max_users)
    model = char_lstm(len(data.vocab), hidden=cfg.hidden, output="all")
    test = held_out_set(data.users, cfg.test_users, cfg.test_chunks_per_user)
    rounds_run = _global_model(model, data, cfg, run_dir, progress)
    gparams = model_params(model)
    rows: dict[str, dict[str, Any]] = {}
    g = evaluate_params(model, gparams, *test)
    rows["global"] = {
        "accuracy": g["accuracy"],
        "rounds": rounds_run,
        "params": sum(v.numel() for v in gparams.values()),
        "bytes": model_bytes(model),
    }
    ondevice = None
    if cfg.distill_rounds:
        ondevice = int8_copy(distill_ondevice(model, data, cfg, progress))
        o = evaluate_params(ondevice, model_params(ondevice), *test)
        rows["ondevice_int8"] = {
            "accuracy": o["accuracy"],
            "params": sum(p.numel() for p in ondevice.parameters()),
            "bytes": model_bytes(ondevice, int8=True),
        }
    chosen = data.user(cfg.user) if cfg.user else max(data.users, key=lambda u: len(u.train))
    personal: dict[str, Params] = {}
    if cfg.personalize_users and cfg.personalize_steps:
        rows["personalized"], personal = _personalize(model, gparams, data, chosen, cfg, run_dir)
    lines = [f"user {chosen.name}: typed {cfg.prefix!r}"]
    lines.append("  global model       : " + _fmt(suggest(model, data.vocab, cfg.prefix, params=gparams)))
    if chosen.name in personal:
        lines.append(
            "  after personalizing: " + _fmt(suggest(model, data.vocab, cfg.prefix, params=personal[chosen.name]))
        )
    if ondevice is not None:
        lines.append(
            f"  on-device int8     : {_fmt(suggest(ondevice, data.vocab, cfg.prefix))}  "
            f"({rows['ondevice_int8']['bytes'] / 1024:.0f} KiB on disk vs {rows['global']['bytes'] / 1024:.0f} KiB)"
        )
    (run_dir / "suggestions.txt").write_text("\n".join(lines) + "\n")
    if progress:
        print("\n".join(lines), flush=True)
    return rows


def _global_model(model: CharLSTM, data: ShakespeareData, cfg: Config, run_dir: Path, progress: bool) -> int:
    """Load ``cfg.checkpoint`` into ``model``, or train it federated and save it; returns the rounds it had."""
    if cfg.checkpoint:
        tensors, meta = load_checkpoint(cfg.checkpoint)
        if meta.get("vocab") != data.vocab.chars or meta.get("hidden") != cfg.hidden:
            raise CheckpointError(
                f"checkpoint {cfg.checkpoint} was trained with another vocabulary or hidden size ({meta.get('hidden')}); "
                "use the same source/max_users/hidden or train anew"
            )
        load_params(model, tensors)
        return int(meta.get("rounds", 0))
    result = train_global(model, data, cfg, run_dir / "federated", progress, test=None)
    load_params(model, result.params)
    rounds_run = len(result.history)
    save_checkpoint(
        run_dir / "global",
        model_params(model),
        {"vocab": data.vocab.chars, "hidden": cfg.hidden, "rounds": rounds_run},
    )
    return rounds_run


def _personalize(
    model: CharLSTM, gparams: Params, data: ShakespeareData, chosen: ShakespeareUser, cfg: Config, run_dir: Path
) -> tuple[dict[str, Any], dict[str, Params]]:
    """Personalize ``chosen`` and the users with the most text; the summary row and their parameters."""
    others = [u for u in sorted(data.users, key=lambda u: -len(u.train)) if u.name != chosen.name]
    people = [chosen] + others[: max(cfg.personalize_users - 1, 0)]
    report, personal = personalize_users(model, gparams, people, cfg)
    s = report.summary()
    row = {
        "accuracy": s["personal_median"],
        "global_median": s["global_median"],
        "users": len(report.users),
    }
    plot_personalization(report, run_dir / "personalization.png", title="Keyboard personalization")
    (run_dir / "personalization.json").write_text(json.dumps([u.__dict__ for u in report.users], indent=1))
    return row, personal


def _fmt(s: list[tuple[str, float]]) -> str:
    return "  ".join(f"{c!r} {p:.2f}" for c, p in s)


def load_global(checkpoint: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a keyboard checkpoint written by :func:`run` (tensors and metadata)."""
    if not has_checkpoint(checkpoint):
        raise CheckpointError(f"no keyboard checkpoint in {checkpoint}; run without checkpoint to train one")
    return load_checkpoint(checkpoint)
