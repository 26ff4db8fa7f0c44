"""``interlearn advise`` on small data the tests make: a base from an unrelated domain gets the
advice to train from scratch (negative transfer, in words); bad input gets one clear error."""

import importlib
import re

import numpy as np
import pytest
import torch
from torch import nn

from interlearn.advise import AdviseConfig, advise
from interlearn.budgets import sample_per_class
from interlearn.cli import main
from interlearn.config import FitConfig
from interlearn.data import TensorData, load_digits
from interlearn.tasks import classification
from interlearn.training import fit


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10))


@pytest.fixture(scope="module")
def target():
    """12 labelled examples of each of the digits 0, 1, 2: the user's small labelled set."""
    digits, _ = load_digits()
    return sample_per_class(TensorData(digits.x[digits.y < 3], digits.y[digits.y < 3]), 12, seed=0)


@pytest.fixture(scope="module")
def unrelated():
    """A base pretrained where only the four corner pixels vary (always blank in digits): with
    weight decay its first layer forgets every pixel a digit uses."""
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(1024, 64)
    signal = torch.randn(1024, 4, generator=g)
    x[:, [0, 7, 56, 63]] = signal
    y = (signal[:, 0] > 0).long() * 2 + (signal[:, 1] > 0).long()
    base = _mlp()
    fit(base, TensorData(x, y), classification(10), FitConfig(epochs=150, lr=3e-3, batch_size=64, weight_decay=0.5))
    return base


def test_unrelated_base_gets_scratch_in_words(tmp_path, target, unrelated, capsys):
    np.savez(tmp_path / "mine.npz", x=target.x.numpy(), y=target.y.numpy())
    torch.save(unrelated, tmp_path / "base.pt")
    code = main(
        [
            "advise",
            "--data",
            str(tmp_path / "mine.npz"),
            "--base",
            str(tmp_path / "base.pt"),
            "--seeds",
            "0,1",
            "--folds",
            "3",
            "--steps",
            "100",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "**train from scratch**" in text and "NEGATIVE TRANSFER" in text and "unrelated domain" in text
    assert (tmp_path / "out" / "advise.png").stat().st_size > 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| labels/class | scratch | transfer | finetune | lora |" in summary


def test_label_budgets_are_compared(target, unrelated):
    adv = advise(
        unrelated,
        target,
        AdviseConfig(labels_per_class=(3, 6), seeds=(0,), folds=3, steps=20, methods=("scratch", "transfer")),
    )
    assert adv.budgets == (3, 6) and {r["labels_per_class"] for r in adv.runs} == {3, 6}
    assert "at 6 labels per class" in adv.text


def _advise(tmp_path, x, y, base, capsys):
    np.savez(tmp_path / "d.npz", x=x, y=y)
    torch.save(base, tmp_path / "b.pt")
    code = main(
        [
            "advise",
            "--data",
            str(tmp_path / "d.npz"),
            "--base",
            str(tmp_path / "b.pt"),
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "case, message",
    [
        ("lengths", r"d.npz.x has 12 rows but d.npz.y has 11"),
        ("base", r"the base cannot take your examples of shape \(64,\)"),
        ("few", r"too few labels for cross-validation: class 2 has 1 example\(s\)"),
        ("float labels", r"labels must be one integer class per example|integer class labels"),
    ],
)
def test_bad_input_gets_one_clear_error(tmp_path, capsys, case, message):
    x = np.random.default_rng(0).normal(size=(12, 64)).astype("float32")
    y = np.array([0, 1] * 6)
    base: nn.Module = _mlp()
    if case == "lengths":
        y = y[:11]
    elif case == "base":
        base = nn.Sequential(nn.Linear(10, 4))
    elif case == "few":
        y = np.array([0, 1] * 5 + [0, 2])
    else:
        y = y.astype("float32") + 0.5
    code, err = _advise(tmp_path, x, y, base, capsys)
    assert code == 2 and len(err) == 1
    assert re.search(message, err[0]), err[0]


class _FakeClock:
    """Time that moves only when a fold trains: ``per_fold`` seconds each."""

    def __init__(self, per_fold: float) -> None:
        self.now, self.per_fold = 0.0, per_fold

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timed_folds(monkeypatch):
    """Every fold takes ``clock.per_fold`` seconds of fake time (the training itself is real and tiny)."""
    advise_module = importlib.import_module("interlearn.advise")  # the package exports a function of that name

    clock = _FakeClock(60.0)
    real = advise_module._one_fold

    def fold(*args, **kwargs):
        out = real(*args, **kwargs)
        clock.now += clock.per_fold
        return out

    monkeypatch.setattr(advise_module, "_one_fold", fold)
    return clock


_TINY = dict(folds=3, steps=5, methods=("scratch", "transfer"))


def test_the_budget_chooses_how_many_seeds_run(target, unrelated, timed_folds):
    lines: list[str] = []
    # a fold takes 60 s, a seed 3 folds: 7 minutes hold two seeds of the five offered
    cfg = AdviseConfig(seeds=(0, 1, 2, 3, 4), minutes=7, **_TINY)
    adv = advise(unrelated, target, cfg, progress=lines.append, clock=timed_folds)
    assert {r["seed"] for r in adv.runs} == {0, 1} and adv.complete
    assert any(line.startswith("estimate: 1:00 per fold, 3:00 per seed; 2 seeds x 3 folds fit") for line in lines)
    bars = [line for line in lines if line.startswith("[")]
    assert len(bars) == 6 and "6/6 folds" in bars[-1] and "left" in bars[0]
    assert "2 seeds x 3 folds x 1 label budget (6 of 6 planned folds)" in adv.budget_note


def test_a_run_stops_before_overrunning_the_budget(target, unrelated, timed_folds):
    # one seed (3 folds, 3 minutes) does not fit in 2 minutes: the third fold is not started
    adv = advise(unrelated, target, AdviseConfig(seeds=(0, 1), minutes=2, **_TINY), clock=timed_folds)
    assert not adv.complete and len({(r["seed"], r["fold"]) for r in adv.runs}) == 2
    assert "stopped before the next fold would overrun the budget" in adv.budget_note
    assert adv.recommendation in ("scratch", "transfer")  # advice from the folds that ran


def test_an_interrupted_run_leaves_its_table(tmp_path, target, unrelated, monkeypatch):
    advise_module = importlib.import_module("interlearn.advise")  # the package exports a function of that name

    real, calls = advise_module._one_fold, []

    def fold(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(advise_module, "_one_fold", fold)
    with pytest.raises(KeyboardInterrupt):
        advise(unrelated, target, AdviseConfig(seeds=(0,), **_TINY), out=tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert "Partial results" in md and "| labels/class | scratch | transfer |" in md
    assert "2 of 3 planned folds" in md
