"""Shakespeare next-character prediction with one user per speaking role (LEAF).

The federated benchmark of McMahan et al. 2017 ("Communication-Efficient Learning of Deep
Networks from Decentralized Data") as packaged by LEAF (Caldas et al. 2018, "LEAF: A Benchmark
for Federated Settings"): the complete works are split into plays, each play into its speaking
roles, and every (play, role) pair is one user. Each role's lines are split chronologically,
the last 20% of lines (at least one) being that user's test data; roles with two lines or
fewer are dropped. A user's lines are joined with spaces (runs of spaces collapsed) and cut
into every 80-character window, whose label is the character that follows it.

Two sources are read:

* ``complete``: the Project Gutenberg complete works (eBook #100) in the layout LEAF parses:
  plays open with a ``by William Shakespeare`` line whose title sits a few lines above;
  speaker lines look like ``␣␣NAME. text``, continuation lines are indented four spaces
  (The Comedy of Errors is unindented, as LEAF handles too). The sonnets come first and are
  skipped; the Gutenberg footer ends the plays.
* ``tiny``: Karpathy's Tiny Shakespeare (``Name:`` then the speech, speeches separated by a
  blank line). It has no play boundaries, so a user is a role name.

Files are looked up under ``<data_dir>/shakespeare/`` (or ``<data_dir>/``), then in the cache
directory; ``download=True`` fetches them from a public mirror and checks their SHA-256.
"""

from __future__ import annotations

import collections
import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from interlearn.data.download import download as _download
from interlearn.data.paths import cache_dir, data_root, not_found
from interlearn.data.tensors import TensorData
from interlearn.data.users import user_named
from interlearn.errors import DataError

__all__ = [
    "CharVocab",
    "ShakespeareUser",
    "ShakespeareData",
    "parse_complete_works",
    "parse_tiny_shakespeare",
    "split_by_role",
    "char_windows",
    "load_shakespeare",
    "locate_text",
    "read_text",
    "role_texts",
    "SHAKESPEARE_FILES",
]

Source = Literal["complete", "tiny"]
Mode = Literal["window", "sequence"]

# source -> (file names tried, content sha256, download URLs, sha256 of the downloaded bytes)
SHAKESPEARE_FILES: dict[str, tuple[tuple[str, ...], str, list[str], str]] = {
    "complete": (
        ("complete_works_pg100.txt.gz", "complete_works_pg100.txt", "pg100.txt", "100.txt"),
        "5886dc8d8d2d1726fc93a1b014ff7db691707d5a2ccb8b8888d87037dccc8982",
        [
            "https://raw.githubusercontent.com/riccardomurri/pyspark-intro-course/"
            "55d0c06af8887d9477d58681c593315faec7304b/data/shakespeare.txt.gz"
        ],
        "9e2c1aea328d1819029086808cb3c56af7a0645f37adb3c957d0a0248ad3b7e6",
    ),
    "tiny": (
        ("tinyshakespeare_input.txt.gz", "tinyshakespeare_input.txt", "input.txt"),
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        [
            "https://raw.githubusercontent.com/karpathy/char-rnn/"
            "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt"
        ],
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
}
_DOWNLOAD_NAME = {"complete": "complete_works_pg100.txt.gz", "tiny": "tinyshakespeare_input.txt"}

# LEAF's regular expressions (speaker line, continuation line; unindented for Comedy of Errors).
_CHARACTER_RE = re.compile(r"^  ([a-zA-Z][a-zA-Z ]*)\. (.*)")
_CONT_RE = re.compile(r"^    (.*)")
_COE_CHARACTER_RE = re.compile(r"^([a-zA-Z][a-zA-Z ]*)\. (.*)")
_COE_CONT_RE = re.compile(r"^(.*)")
_END_MARKERS = ("End of the Project Gutenberg", "End of this Project Gutenberg", "*** END OF")

Play = tuple[str, dict[str, list[str]]]


def parse_complete_works(text: str) -> list[Play]:
    """Split the complete works into plays and each play into its roles' lines (LEAF's parser).

    Args:
        text: the whole Gutenberg text.

    Returns:
        ``[(title, {ROLE: [line, ...]})]`` in order of appearance; role names are upper-cased;
        "plays" with fewer than two roles are dropped, as in LEAF.

    Raises:
        DataError: no ``by William Shakespeare`` play headers were found (not this layout).
    """
    lines = text.lstrip("\ufeff").splitlines()
    headers = [i for i, line in enumerate(lines) if "by William Shakespeare" in line]
    if len(headers) < 2:
        raise DataError(
            "no plays found: the complete-works layout opens each work with a 'by William Shakespeare' "
            "line; pass source='tiny' for Tiny Shakespeare text"
        )
    plays: list[Play] = []
    roles: dict[str, list[str]] | None = None
    current: str | None = None
    coe = False
    # The first work is the sonnets, which LEAF skips: start at the second header.
    for i in range(headers[1], len(lines)):
        line = lines[i]
        if any(line.startswith(m) for m in _END_MARKERS):
            break
        if "by William Shakespeare" in line:
            title = next((lines[j].strip() for j in range(i - 2, max(i - 8, -1), -1) if lines[j].strip()), "")
            if not title:
                raise DataError(f"line {i + 1}: play header without a title in the 7 lines above it")
            roles, current, coe = collections.defaultdict(list), None, title == "THE COMEDY OF ERRORS"
            plays.append((title, roles))
            continue
        if roles is None:
            continue
        m = (_COE_CHARACTER_RE if coe else _CHARACTER_RE).match(line)
        if m:
            name = m.group(1).upper()
            if coe and name.startswith("ACT "):
                current = None
            else:
                roles[name].append(m.group(2))
                current = name
            continue
        if current is not None:
            c = (_COE_CONT_RE if coe else _CONT_RE).match(line)
            if c and not (coe and (c.group(1).startswith("<") or not c.group(1).strip())):
                roles[current].append(c.group(1))
            elif coe:
                current = None
    return [(t, dict(r)) for t, r in plays if len(r) > 1]


def parse_tiny_shakespeare(text: str) -> list[Play]:
    """Parse Tiny Shakespeare (``Name:`` line, speech lines, blank line) into one pseudo-play.

    Returns:
        ``[("TINY", {ROLE: [line, ...]})]``; role names upper-cased.

    Raises:
        DataError: no ``Name:`` speaker lines were found.
    """
    roles: dict[str, list[str]] = collections.defaultdict(list)
    current: str | None = None
    for line in text.splitlines():
        if not line.strip():
            current = None
        elif current is None and line.endswith(":") and re.fullmatch(r"[A-Za-z][A-Za-z ',.-]*:", line):
            current = line[:-1].strip().upper()
        elif current is not None:
            roles[current].append(line.strip())
    if not roles:
        raise DataError("no speeches found: Tiny Shakespeare has 'Name:' lines followed by the speech")
    return [("TINY", dict(roles))]


def _user_name(play: str, role: str) -> str:
    return re.sub(r"\W+", "_", f"{play}_{role}".replace(" ", "_"))


def split_by_role(plays: list[Play], test_fraction: float = 0.2) -> dict[str, tuple[list[str], list[str]]]:
    """LEAF's per-user split: the last ``test_fraction`` of each role's lines (at least one)
    are test data; roles with two lines or fewer are skipped.

    Returns:
        ``{user: (train_lines, test_lines)}`` with ``user`` = ``PLAY_ROLE`` (non-word runs -> ``_``).

    Raises:
        DataError: ``test_fraction`` outside [0, 0.5].
    """
    if not 0.0 <= test_fraction <= 0.5:
        raise DataError(f"test_fraction={test_fraction}; use a value in [0, 0.5] (LEAF uses 0.2)")
    out: dict[str, tuple[list[str], list[str]]] = {}
    for title, roles in plays:
        for role, bites in roles.items():
            if len(bites) <= 2:
                continue
            n_test = max(int(len(bites) * test_fraction), 1) if test_fraction > 0 else 0
            out[_user_name(title, role)] = (bites[: len(bites) - n_test], bites[len(bites) - n_test :])
    return out


def _join(lines: list[str]) -> str:
    # LEAF: lines joined by newlines, newlines -> spaces, runs of 2+ spaces -> one space.
    return re.sub(r"  +", " ", "\n".join(lines).replace("\n", " "))


@dataclass(frozen=True)
class CharVocab:
    """Character vocabulary; index 0 is the unknown character (never predicted in practice).

    Attributes:
        chars: the known characters, in index order starting at 1.
    """

    chars: str

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise DataError("CharVocab.chars has duplicate characters")
        if len(self.chars) >= 255:
            raise DataError(f"CharVocab has {len(self.chars)} characters; at most 254 fit the uint8 encoding")

    @classmethod
    def from_texts(cls, texts: list[str]) -> CharVocab:
        """The sorted set of characters occurring in ``texts``."""
        return cls("".join(sorted(set().union(*[set(t) for t in texts]))))

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> torch.Tensor:
        """Indices (uint8, unknown characters -> 0) of ``text``."""
        table = {c: i + 1 for i, c in enumerate(self.chars)}
        return torch.tensor([table.get(c, 0) for c in text], dtype=torch.uint8)

    def decode(self, indices: torch.Tensor | list[int]) -> str:
        """Characters of ``indices`` (0 -> ``"?"``)."""
        return "".join(self.chars[i - 1] if i > 0 else "?" for i in torch.as_tensor(indices).flatten().tolist())


def char_windows(encoded: torch.Tensor, seq_len: int = 80, mode: Mode = "window") -> TensorData:
    """Cut encoded text into training examples.

    ``mode="window"`` (LEAF): every window of ``seq_len`` characters (stride 1), labelled with
    the character that follows it: ``x`` (N, seq_len) uint8 is a strided view (no copy),
    ``y`` (N,) long. ``mode="sequence"`` (TFF / Reddi et al. 2021): non-overlapping chunks of
    ``seq_len`` characters, labelled at every position with the next character: ``x`` and
    ``y`` both (N, seq_len). Each character is then seen once per epoch instead of ``seq_len``
    times, which makes an epoch ``seq_len`` times cheaper for a recurrent model.
    """
    if mode not in ("window", "sequence"):
        raise DataError(f"mode={mode!r}; use 'window' (LEAF) or 'sequence' (TFF)")
    step = 1 if mode == "window" else seq_len
    n = max((int(encoded.numel()) - seq_len - 1) // step + 1, 0)
    if n == 0:
        y_shape = (0,) if mode == "window" else (0, seq_len)
        return TensorData(torch.zeros(0, seq_len, dtype=torch.uint8), torch.zeros(y_shape, dtype=torch.long))
    x = encoded[:-1].unfold(0, seq_len, step)[:n]
    if mode == "window":
        return TensorData(x, encoded[seq_len:].long())
    return TensorData(x, encoded[1:].unfold(0, seq_len, step)[:n].long())


@dataclass(frozen=True)
class ShakespeareUser:
    """One user (a speaking role): its train and test windows. ``x`` is uint8 indices."""

    name: str
    train: TensorData
    test: TensorData


@dataclass(frozen=True)
class ShakespeareData:
    """The federated dataset: users (sorted by name), vocabulary and where it came from."""

    users: list[ShakespeareUser]
    vocab: CharVocab
    source: str
    seq_len: int
    path: str = ""
    meta: dict[str, int] = field(default_factory=dict)
    mode: str = "window"

    def user(self, name: str) -> ShakespeareUser:
        """The user called ``name``.

        Raises:
            DataError: unknown name (the message suggests close ones).
        """
        return user_named(self.users, name)


def locate_text(source: Source, data_dir: str | Path | None, download: bool) -> Path:
    """The Shakespeare text file of ``source`` under ``data_dir`` (or the cache), downloaded when
    allowed.

    Raises:
        DataError: not found (the message lists where it looked and how to fix it).
    """
    names, content_sha, urls, file_sha = SHAKESPEARE_FILES[source]
    root = data_root(data_dir)
    folders = ([root / "shakespeare", root] if root is not None else []) + [cache_dir() / "shakespeare"]
    candidates = [f / n for f in folders for n in names]
    for c in candidates:
        if c.is_file():
            return c
    if download:
        dest = cache_dir() / "shakespeare" / _DOWNLOAD_NAME[source]
        return _download(urls, dest, sha256=file_sha)
    raise not_found(
        f"Shakespeare ({source}) text",
        candidates,
        f"shakespeare/{names[0]}",
        f" (sha256 of the text {content_sha[:12]}...)",
    )


def read_text(path: Path) -> str:
    """The text of a (possibly gzipped) file, decoded as UTF-8."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    else:
        raw = path.read_bytes()
    return raw.decode("utf-8-sig", errors="replace")


def _role_texts(
    data_dir: str | Path | None, source: Source, test_fraction: float, download: bool, path: str | Path | None
) -> tuple[dict[str, tuple[str, str]], Path, list[Play]]:
    """``{user: (train_text, test_text)}`` (LEAF's split and joining), the file read, the plays."""
    if source not in SHAKESPEARE_FILES:
        raise DataError(f"source={source!r}; use one of {sorted(SHAKESPEARE_FILES)}")
    p = Path(path) if path is not None else locate_text(source, data_dir, download)
    if not p.is_file():
        raise DataError(f"Shakespeare text not found at {p}")
    text = read_text(p)
    plays = parse_complete_works(text) if source == "complete" else parse_tiny_shakespeare(text)
    split = split_by_role(plays, test_fraction)
    return {u: (_join(tr), _join(te)) for u, (tr, te) in split.items()}, p, plays


def role_texts(
    data_dir: str | Path | None = None,
    source: Source = "complete",
    test_fraction: float = 0.2,
    download: bool = False,
    path: str | Path | None = None,
) -> dict[str, tuple[str, str]]:
    """Every user's (play + role) training and test text as strings, split as LEAF does
    (the last ``test_fraction`` of the role's lines is test text); the input of
    :func:`load_shakespeare` and of the word-level loader
    (:mod:`interlearn.data.shakespeare_words`).

    Raises:
        DataError: unknown source, missing file or bad layout (see :func:`load_shakespeare`).
    """
    return _role_texts(data_dir, source, test_fraction, download, path)[0]


def load_shakespeare(
    data_dir: str | Path | None = None,
    source: Source = "complete",
    seq_len: int = 80,
    test_fraction: float = 0.2,
    min_samples: int = 1,
    max_users: int | None = None,
    download: bool = False,
    path: str | Path | None = None,
    mode: Mode = "window",
) -> ShakespeareData:
    """Load Shakespeare as federated next-character data, one user per (play, role).

    Args:
        data_dir: folder holding ``shakespeare/`` (default ``$INTERLEARN_DATA``).
        source: ``"complete"`` (LEAF's plays and roles) or ``"tiny"`` (Tiny Shakespeare roles).
        seq_len: window length (80 in the literature).
        test_fraction: last fraction of each role's lines held out (LEAF: 0.2).
        min_samples: drop users with fewer train windows than this (and users without test ones).
        max_users: keep the ``max_users`` users with the most training windows (None: all).
        download: fetch a missing file into the cache (needs internet).
        path: an explicit text file (``.txt`` or ``.txt.gz``) instead of the lookup.
        mode: ``"window"`` (LEAF: stride-1 windows, label = the next character) or
            ``"sequence"`` (TFF: non-overlapping chunks, a label at every position); see
            :func:`char_windows`.

    Returns:
        ``ShakespeareData`` with users sorted by name and a vocabulary built from training text.

    Raises:
        DataError: unknown source, missing file (the message lists where it looked), bad layout,
            or no user left after filtering.
    """
    if source not in SHAKESPEARE_FILES:
        raise DataError(f"source={source!r}; use one of {sorted(SHAKESPEARE_FILES)}")
    if seq_len < 1:
        raise DataError(f"seq_len={seq_len}; use a positive window length (80 in the literature)")
    joined, p, plays = _role_texts(data_dir, source, test_fraction, download, path)
    vocab = CharVocab.from_texts([tr for tr, _ in joined.values()])
    users = []
    for name in sorted(joined):
        tr, te = joined[name]
        train, test = char_windows(vocab.encode(tr), seq_len, mode), char_windows(vocab.encode(te), seq_len, mode)
        if len(train) >= max(min_samples, 1) and len(test) > 0:
            users.append(ShakespeareUser(name, train, test))
    if max_users is not None:
        keep = {u.name for u in sorted(users, key=lambda u: (-len(u.train), u.name))[:max_users]}
        users = [u for u in users if u.name in keep]
    if not users:
        raise DataError(
            f"no user has >= {min_samples} training windows of {seq_len} characters and a test window; lower min_samples or seq_len"
        )
    meta = {"plays": len(plays), "roles": len(joined), "users": len(users)}
    return ShakespeareData(users, vocab, source, seq_len, str(p), meta, mode)
