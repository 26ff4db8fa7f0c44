"""The word keyboard end to end on a tiny synthetic text, and from its checkpoint."""

import json

import pytest
import torch

from interlearn.errors import CheckpointError, ConfigError
from interlearn.recipes.keyboard_words import Config, run


def _cfg(tmp_path, **kw):
    base = dict(
        data_dir=str(tmp_path),
        source="tiny",
        max_users=3,
        vocab_size=40,
        seq_len=6,
        embed_dim=16,
        hidden=64,
        rounds=2,
        clients_per_round=2,
        max_local_steps=2,
        batch_size=4,
        eval_every=1,
        test_users=3,
        personalize_users=2,
        min_personal_words=5,
        personalize_steps=(0, 2),
        ditto_lams=(1.0,),
        cache_lams=(0.2, 0.5),
        fedper_rounds=2,
        ondevice_encodings=("int8", "int4-g32"),
        prefix="to be or not to ",
    )
    base.update(kw)
    return Config(**base)


def test_runs_end_to_end_and_reloads(tiny_shakespeare_dir):
    tmp_path = tiny_shakespeare_dir
    out = tmp_path / "run"
    rows = run(_cfg(tmp_path), out, progress=False)
    assert set(rows) == {"global", "personalized", "ondevice", "memory"}
    assert rows["memory"]["bytes"] > 0 and 0 <= rows["memory"]["lam"] <= 1
    g = rows["global"]
    assert 0 <= g["top1_recall"] <= g["top3_recall"] <= 1 and g["rounds"] == 2 and [r for r, _ in g["curve"]] == [1, 2]
    assert (
        rows["ondevice"]["bytes"] <= rows["ondevice"]["global_bytes"] / 4 and rows["ondevice"]["encoding"] == "int4-g32"
    )
    text = (out / "suggestions.txt").read_text()
    assert "global model" in text and "after personalizing" in text and "on-device int4-g32" in text
    assert "with a local memory" in text and "never uploaded" in text
    pers = json.loads((out / "personalization.json").read_text())
    assert {"finetune", "interpolate", "ditto", "cache", "best", "fedper"} <= set(pers["summary"]) and len(
        pers["users"]
    ) == 2
    assert (out / "personalization.png").is_file() and (out / "ondevice_frontier.png").is_file()
    again = run(_cfg(tmp_path, checkpoint=str(out / "global"), personalize_users=0), tmp_path / "again", progress=False)
    assert again["global"]["top1_recall"] == g["top1_recall"]
    with pytest.raises(CheckpointError, match="model size"):
        run(_cfg(tmp_path, checkpoint=str(out / "global"), hidden=16), tmp_path / "again", progress=False)


def test_training_resumes_with_a_step_decay(tiny_shakespeare_dir):
    from interlearn.data.shakespeare_words import load_shakespeare_words
    from interlearn.models.word_cifg import word_cifg
    from interlearn.recipes.keyboard_words import test_set, train_global

    cfg = _cfg(tiny_shakespeare_dir, rounds=3, client_lr_schedule=((1, 1e-4),))
    data = load_shakespeare_words(tiny_shakespeare_dir, source="tiny", vocab_size=40, seq_len=6, max_users=3)
    test = test_set(data.users, 3)
    torch.manual_seed(0)
    one, curve = train_global(word_cifg(len(data.vocab), 16, 64), data, cfg, None, test, progress=False)
    torch.manual_seed(0)
    run_dir = tiny_shakespeare_dir / "fed"
    train_global(
        word_cifg(len(data.vocab), 16, 64),
        data,
        _cfg(tiny_shakespeare_dir, rounds=2, client_lr_schedule=((1, 1e-4),)),
        run_dir,
        test,
        progress=False,
    )
    torch.manual_seed(1)  # a different initial model: continuing must not use it
    two, curve2 = train_global(word_cifg(len(data.vocab), 16, 64), data, cfg, run_dir, test, progress=False)
    assert all(torch.equal(one[k], two[k]) for k in one) and curve == curve2 and [r for r, _ in curve] == [1, 2, 3]
    with pytest.raises(ConfigError, match="client_lr_schedule"):
        Config(rounds=3, client_lr_schedule=((5, 1e-3),))


def test_config_is_validated():
    with pytest.raises(ConfigError, match="rounds"):
        Config(rounds=0)
    with pytest.raises(ConfigError, match="ondevice_encodings"):
        Config(ondevice_encodings=("int3",))
    with pytest.raises(ConfigError, match="methods"):
        Config(personalize_methods=("magic",))
