"""Shakespeare loader on small texts written by the tests (both layouts, LEAF's split rule)."""

import gzip

import pytest
import torch

from interlearn.data.shakespeare import (
    CharVocab,
    char_windows,
    load_shakespeare,
    parse_complete_works,
    parse_tiny_shakespeare,
    split_by_role,
)
from interlearn.errors import DataError

SPEECH = "Now is the winter of our discontent made glorious summer by this sun of York"


def _complete_works() -> str:
    sonnets = "\n1609\n\nTHE SONNETS\n\nby William Shakespeare\n\n  FROM fairest. creatures we desire increase,\n"
    play_a = (
        "\n\n1594\n\nTHE TRAGEDY OF EXAMPLE\n\nby William Shakespeare\n\n\n"
        "ACT I. SCENE 1.\n\n"
        + "".join(
            f"  HAMLET. {SPEECH} {k}\n    and a second line {k}\n  Ophelia. Reply {k} {SPEECH}\n" for k in range(6)
        )
        + "  GHOST. Only one line.\n"
        "<<THIS ELECTRONIC VERSION IS COPYRIGHT>>\n"
    )
    play_b = "\n\n1593\n\nTHE COMEDY OF ERRORS\n\nby William Shakespeare\n\nACT I. SCENE 1\n\n" + "".join(
        f"AEGEON. {SPEECH} {k}\n  continued {k}\nDUKE. Answer {k} {SPEECH}\n" for k in range(5)
    )
    end = (
        "\n\nEnd of the Project Gutenberg EBook of The Complete Works of William\nShakespeare, by William Shakespeare\n"
    )
    return "\ufeffThe Project Gutenberg EBook\n" + sonnets + play_a + play_b + end


def _tiny() -> str:
    return "".join(
        f"First Citizen:\n{SPEECH} {k}\nsecond line {k}\n\nMENENIUS:\nWhy, masters {k}, {SPEECH}\n\n" for k in range(6)
    )


def test_complete_works_plays_roles_and_continuations():
    plays = parse_complete_works(_complete_works())
    titles = [t for t, _ in plays]
    assert titles == ["THE TRAGEDY OF EXAMPLE", "THE COMEDY OF ERRORS"]  # sonnets skipped
    roles = dict(plays)["THE TRAGEDY OF EXAMPLE"]
    assert set(roles) == {"HAMLET", "OPHELIA", "GHOST"}  # names upper-cased
    assert roles["HAMLET"][:2] == [f"{SPEECH} 0", "and a second line 0"]
    assert all("COPYRIGHT" not in line for lines in roles.values() for line in lines)
    coe = dict(plays)["THE COMEDY OF ERRORS"]
    assert set(coe) == {"AEGEON", "DUKE"}  # "ACT I" is not a role
    assert coe["AEGEON"][:2] == [f"{SPEECH} 0", "  continued 0"]


def test_split_by_role_follows_leaf_rule():
    plays = [("P", {"A": [str(i) for i in range(10)], "B": ["x", "y"], "C": ["1", "2", "3"]})]
    split = split_by_role(plays, 0.2)
    assert set(split) == {"P_A", "P_C"}  # B has only two lines
    assert split["P_A"] == ([str(i) for i in range(8)], ["8", "9"])
    assert split["P_C"] == (["1", "2"], ["3"])  # at least one test line
    with pytest.raises(DataError, match="test_fraction"):
        split_by_role(plays, 0.9)


def test_tiny_parser_groups_speeches_by_speaker():
    roles = dict(parse_tiny_shakespeare(_tiny()))["TINY"]
    assert set(roles) == {"FIRST CITIZEN", "MENENIUS"}
    assert roles["FIRST CITIZEN"][:2] == [f"{SPEECH} 0", "second line 0"]
    with pytest.raises(DataError, match="no speeches"):
        parse_tiny_shakespeare("no speaker lines here\n")


def test_vocab_roundtrip_and_unknown():
    v = CharVocab.from_texts(["abc", "cd "])
    assert len(v) == 6 and v.chars == " abcd"
    assert v.decode(v.encode("a cab")) == "a cab"
    assert v.encode("z").tolist() == [0]


def test_windows_and_sequences():
    enc = torch.arange(1, 12, dtype=torch.uint8)  # 11 characters
    w = char_windows(enc, 4, "window")
    assert w.x.shape == (7, 4) and w.x[0].tolist() == [1, 2, 3, 4] and w.y[0] == 5 and w.y[-1] == 11
    s = char_windows(enc, 4, "sequence")
    assert s.x.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]] and s.y.tolist() == [[2, 3, 4, 5], [6, 7, 8, 9]]
    assert len(char_windows(enc[:4], 4)) == 0


@pytest.mark.parametrize("source,writer", [("complete", _complete_works), ("tiny", _tiny)])
def test_load_from_data_dir(tmp_path, source, writer):
    folder = tmp_path / "shakespeare"
    folder.mkdir()
    name = "complete_works_pg100.txt.gz" if source == "complete" else "tinyshakespeare_input.txt.gz"
    with gzip.open(folder / name, "wt") as fh:
        fh.write(writer())
    data = load_shakespeare(tmp_path, source=source, seq_len=20)
    assert data.users and data.users == sorted(data.users, key=lambda u: u.name)
    for u in data.users:
        assert u.train.x.shape[1] == 20 and len(u.train) > 0 and len(u.test) > 0
        # the label is the character that follows the window in the user's text
        text = data.vocab.decode(u.train.x[0]) + data.vocab.decode(u.train.y[:1])
        assert data.vocab.decode(u.train.x[1]) == text[1:21]
    if source == "complete":
        assert "THE_TRAGEDY_OF_EXAMPLE_HAMLET" in [u.name for u in data.users]
        assert "THE_TRAGEDY_OF_EXAMPLE_GHOST" not in [u.name for u in data.users]
    seq = load_shakespeare(tmp_path, source=source, seq_len=20, mode="sequence")
    assert seq.users[0].train.y.shape[1] == 20
    one = load_shakespeare(tmp_path, source=source, seq_len=20, max_users=1)
    assert len(one.users) == 1
    with pytest.raises(DataError, match="did you mean"):
        data.user("HAMLETT")


def test_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERLEARN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="Looked in") as err:
        load_shakespeare(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "shakespeare") in str(err.value)
    with pytest.raises(DataError, match="source"):
        load_shakespeare(tmp_path, source="sonnets")


def test_wrong_layout_is_a_clear_error(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text(_tiny())
    with pytest.raises(DataError, match="source='tiny'"):
        load_shakespeare(path=p, source="complete")


def test_download_verifies_checksum_into_cache(tmp_path, monkeypatch):
    """The download path with a local file:// mirror: fetched into the cache when the SHA-256
    matches, refused (and nothing cached) when it does not."""
    import hashlib

    from interlearn.data import shakespeare as sh

    src = tmp_path / "mirror.txt"
    src.write_text(_tiny())
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    names, content_sha, _, _ = sh.SHAKESPEARE_FILES["tiny"]
    monkeypatch.setenv("INTERLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sh.SHAKESPEARE_FILES, "tiny", (names, content_sha, [src.as_uri()], "0" * 64))
    with pytest.raises(DataError, match="checksum"):
        load_shakespeare(tmp_path / "empty", source="tiny", seq_len=20, download=True)
    assert not (tmp_path / "cache" / "shakespeare" / "tinyshakespeare_input.txt").exists()
    monkeypatch.setitem(sh.SHAKESPEARE_FILES, "tiny", (names, content_sha, [src.as_uri()], sha))
    data = load_shakespeare(tmp_path / "empty", source="tiny", seq_len=20, download=True)
    assert (tmp_path / "cache" / "shakespeare" / "tinyshakespeare_input.txt").is_file()
    assert len(data.users) == 2
