"""The keyboard recipe end to end on a tiny synthetic Tiny-Shakespeare text, and from a checkpoint."""

import gzip

import pytest

from interlearn.data.shakespeare import CharVocab
from interlearn.errors import CheckpointError, ConfigError
from interlearn.models.char_lstm import char_lstm
from interlearn.recipes.keyboard import Config, run, suggest


def _write_text(root):
    folder = root / "shakespeare"
    folder.mkdir()
    speeches = []
    for k in range(14):
        for who, line in (
            ("ALPHA", "to be or not to be that is the question"),
            ("BETA", "the quality of mercy is not strained"),
            ("GAMMA", "all the world is a stage and all the men and women merely players"),
        ):
            speeches.append(f"{who}:\n{line} {k}\n{line}\n\n")
    with gzip.open(folder / "tinyshakespeare_input.txt.gz", "wt") as fh:
        fh.write("".join(speeches))


def _cfg(tmp_path, **kw):
    base = dict(
        data_dir=str(tmp_path),
        source="tiny",
        max_users=3,
        rounds=2,
        clients_per_round=2,
        max_local_steps=2,
        batch_size=4,
        hidden=8,
        ondevice_hidden=4,
        distill_rounds=1,
        personalize_users=2,
        personalize_steps=2,
        test_users=3,
        test_chunks_per_user=2,
        engine="vectorized",
    )
    base.update(kw)
    return Config(**base)


def test_keyboard_runs_end_to_end_and_reloads(tmp_path):
    _write_text(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    rows = run(_cfg(tmp_path), out, progress=False)
    assert set(rows) == {"global", "ondevice_int8", "personalized"}
    assert 0 <= rows["global"]["accuracy"] <= 1 and rows["global"]["rounds"] == 2
    assert rows["ondevice_int8"]["bytes"] < rows["global"]["bytes"]
    text = (out / "suggestions.txt").read_text()
    assert "global model" in text and "after personalizing" in text and "on-device int8" in text
    assert (out / "personalization.png").is_file() and (out / "global" / "state.json").is_file()
    # loading the checkpoint skips training and gives the same global accuracy
    again = tmp_path / "again"
    again.mkdir()
    rows2 = run(
        _cfg(tmp_path, checkpoint=str(out / "global"), distill_rounds=0, personalize_users=0), again, progress=False
    )
    assert rows2["global"]["accuracy"] == rows["global"]["accuracy"]
    with pytest.raises(CheckpointError, match="hidden"):
        run(_cfg(tmp_path, checkpoint=str(out / "global"), hidden=16), again, progress=False)


def test_suggest_returns_three_known_characters():
    vocab = CharVocab("abc ")
    s = suggest(char_lstm(len(vocab), hidden=4, output="all"), vocab, "ab c")
    assert len(s) == 3 and all(c in "abc " for c, _ in s)
    assert s[0][1] >= s[1][1] >= s[2][1]


def test_config_is_validated():
    with pytest.raises(ConfigError, match="rounds"):
        Config(rounds=0)
    with pytest.raises(ConfigError, match="prefix"):
        Config(prefix="")
    with pytest.raises(ConfigError, match="max_users"):
        Config(max_users=3, clients_per_round=10)
