"""Shakespeare next-word prediction with one user per speaking role (a word-level keyboard).

The setting of Hard et al. 2018 ("Federated Learning for Mobile Keyboard Prediction"): a fixed
vocabulary of the most frequent words, every other word mapped to one out-of-vocabulary token,
and a model that predicts the next word at every position of a short sequence. The users are
LEAF's Shakespeare users (one per play and speaking role; the last 20% of each role's lines are
test text, as for next-character prediction, :mod:`interlearn.data.shakespeare`).

Layout (as TFF's Stack Overflow next-word task, Reddi et al. 2021): every user's words form one
stream, cut into non-overlapping chunks of ``seq_len`` words. Each chunk starts with the
beginning-of-sequence token: ``x = [BOS, w_0 .. w_{L-2}]``, ``y = [w_0 .. w_{L-1}]``, so every
word is a target exactly once. The last chunk of a user is padded (``PAD`` in ``y`` is ignored
by :func:`masked_cross_entropy` and by the recall metrics).

Every user's own training words are split once more: the last ``val_fraction`` of them form a
**validation** split that federated training never sees and that personalization uses to
choose its hyper-parameters (steps, interpolation weight), so the test text is never looked at.

Words are lower-cased runs of letters with inner apostrophes (``o'er``, ``i'll``); punctuation
is dropped (a keyboard suggests words). The vocabulary is counted over the training splits of
all users; in a real deployment it would be fixed beforehand from public text or counted with
secure aggregation.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from interlearn.data.shakespeare import role_texts
from interlearn.data.tensors import TensorData
from interlearn.data.users import user_named
from interlearn.errors import DataError

__all__ = [
    "PAD",
    "OOV",
    "BOS",
    "WordVocab",
    "WordUser",
    "ShakespeareWords",
    "tokenize",
    "word_chunks",
    "load_shakespeare_words",
    "masked_cross_entropy",
]

PAD, OOV, BOS = 0, 1, 2
_SPECIALS = ("<pad>", "<oov>", "<bos>")
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters with inner apostrophes; punctuation dropped)."""
    return _WORD_RE.findall(text.lower())


@dataclass(frozen=True)
class WordVocab:
    """A fixed word vocabulary: ``<pad>`` (0), ``<oov>`` (1), ``<bos>`` (2), then the words.

    Attributes:
        words: the known words in index order (index ``3 + i`` for ``words[i]``).
    """

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.words)) != len(self.words):
            raise DataError("WordVocab.words has duplicates")
        clash = [w for w in self.words if w in _SPECIALS]
        if clash:
            raise DataError(f"WordVocab.words contains reserved tokens {clash}")

    @classmethod
    def from_counts(cls, counts: collections.Counter[str], size: int) -> WordVocab:
        """The ``size`` most frequent words (ties broken alphabetically, so it is deterministic)."""
        if size < 1:
            raise DataError(f"vocab_size={size}; use a positive number of words (Hard et al. use 10,000)")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
        return cls(tuple(w for w, _ in ranked))

    def __len__(self) -> int:
        return len(self.words) + len(_SPECIALS)

    @property
    def index(self) -> dict[str, int]:
        """Word -> index (built on first use, then cached on the instance)."""
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {w: i + len(_SPECIALS) for i, w in enumerate(self.words)}
            object.__setattr__(self, "_index", cached)
        return cached

    def encode(self, words: list[str]) -> torch.Tensor:
        """Indices (long) of ``words``; unknown words -> ``OOV``."""
        table = self.index
        return torch.tensor([table.get(w, OOV) for w in words], dtype=torch.long)

    def decode(self, indices: torch.Tensor | list[int]) -> list[str]:
        """Words of ``indices`` (specials as ``<pad>``, ``<oov>``, ``<bos>``)."""
        specials = len(_SPECIALS)
        return [
            _SPECIALS[i] if i < specials else self.words[i - specials]
            for i in torch.as_tensor(indices).flatten().tolist()
        ]

    def special_ids(self) -> tuple[int, ...]:
        """Indices never suggested to a user and never scored as a hit (pad, oov, bos)."""
        return (PAD, OOV, BOS)


def word_chunks(ids: torch.Tensor, seq_len: int = 20) -> TensorData:
    """Cut one user's word indices into ``(x, y)`` chunks (see the module docstring).

    Args:
        ids: (n,) word indices.
        seq_len: words per chunk (20 in TFF's Stack Overflow task).

    Returns:
        ``x`` and ``y`` of shape (chunks, seq_len), long; an empty (0, seq_len) pair for no words.
    """
    if seq_len < 1:
        raise DataError(f"seq_len={seq_len}; use a positive number of words per chunk")
    n = int(ids.numel())
    chunks = -(-n // seq_len)
    y = F.pad(ids.long(), (0, chunks * seq_len - n), value=PAD).reshape(chunks, seq_len)
    x = torch.cat([torch.full((chunks, 1), BOS, dtype=torch.long), y[:, :-1]], dim=1)
    x[y == PAD] = PAD  # padded positions carry no input either
    return TensorData(x, y)


def masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the real (non-``PAD``) positions; (B, V, T) logits, (B, T) targets.

    ``OOV`` stays a target (the model learns that a rare word comes), as in Hard et al. 2018.
    """
    return F.cross_entropy(logits, y.long(), ignore_index=PAD)


@dataclass(frozen=True)
class WordUser:
    """One user (a speaking role): training, validation and test chunks (long indices)."""

    name: str
    train: TensorData
    val: TensorData
    test: TensorData


@dataclass(frozen=True)
class ShakespeareWords:
    """The federated next-word dataset: users (sorted by name), vocabulary, provenance."""

    users: list[WordUser]
    vocab: WordVocab
    seq_len: int
    source: str
    meta: dict[str, float] = field(default_factory=dict)

    def user(self, name: str) -> WordUser:
        """The user called ``name``.

        Raises:
            DataError: unknown name (the message suggests close ones).
        """
        return user_named(self.users, name)


def load_shakespeare_words(
    data_dir: str | Path | None = None,
    source: Literal["complete", "tiny"] = "complete",
    vocab_size: int = 5000,
    seq_len: int = 20,
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    min_words: int = 2,
    max_users: int | None = None,
    path: str | Path | None = None,
) -> ShakespeareWords:
    """Load Shakespeare as federated next-word data, one user per (play, role).

    Args:
        data_dir: folder holding ``shakespeare/`` (default ``$INTERLEARN_DATA``).
        source: ``"complete"`` (LEAF's plays and roles) or ``"tiny"`` (Tiny Shakespeare roles).
        vocab_size: words in the vocabulary besides the three special tokens.
        seq_len: words per chunk.
        test_fraction: last fraction of each role's lines held out as test text (LEAF: 0.2).
        val_fraction: last fraction of each user's *training words* kept as their validation
            split (never used for training the global model).
        min_words: drop users with fewer training words than this, or without test words.
        max_users: keep the ``max_users`` users with the most training words (``None``: all).
        path: an explicit text file instead of the lookup.

    Returns:
        :class:`ShakespeareWords`; ``meta`` holds word counts and the test text's
        out-of-vocabulary rate.

    Raises:
        DataError: bad fractions, a missing file, or no user left after filtering.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(
            f"val_fraction={val_fraction}; use a value in [0, 1) (0.2 keeps a fifth of each user's training words)"
        )
    texts = role_texts(data_dir, source, test_fraction, path=path)
    words = {u: (tokenize(tr), tokenize(te)) for u, (tr, te) in texts.items()}
    splits = {}
    for name, (tr, te) in words.items():
        n_val = int(len(tr) * val_fraction)
        splits[name] = (tr[: len(tr) - n_val], tr[len(tr) - n_val :], te)
    counts = collections.Counter(w for tr, _, _ in splits.values() for w in tr)
    vocab = WordVocab.from_counts(counts, vocab_size)
    users = []
    for name in sorted(splits):
        tr, va, te = splits[name]
        if len(tr) < max(min_words, 1) or not te:
            continue
        users.append(WordUser(name, *(word_chunks(vocab.encode(w), seq_len) for w in (tr, va, te))))
    if max_users is not None:
        keep = {u.name for u in sorted(users, key=lambda u: (-int((u.train.y != PAD).sum()), u.name))[:max_users]}
        users = [u for u in users if u.name in keep]
    if not users:
        raise DataError(f"no user has >= {min_words} training words and test words; lower min_words")
    return ShakespeareWords(users, vocab, seq_len, source, _meta(users))


def _meta(users: list[WordUser]) -> dict[str, float]:
    """Word counts (padding excluded) and the test text's out-of-vocabulary rate."""
    test_y = torch.cat([u.test.y.reshape(-1) for u in users])
    real = test_y[test_y != PAD]
    return {
        "users": float(len(users)),
        "train_words": float(sum(int((u.train.y != PAD).sum()) for u in users)),
        "val_words": float(sum(int((u.val.y != PAD).sum()) for u in users)),
        "test_words": float(real.numel()),
        "test_oov_rate": float((real == OOV).float().mean()) if real.numel() else 0.0,
    }
