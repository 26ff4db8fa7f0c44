"""A user's own word statistics interpolated with the global model: a personal cache model.

Kuhn & De Mori 1990 ("A Cache-Based Natural Language Model for Speech Recognition") and
Jelinek-Mercer interpolation: the next-word distribution becomes

    p(w | h) = (1 - lam) * p_global(w | h) + lam * p_user(w | previous word)

where ``p_user`` is the user's bigram distribution over their own training words, backed off
to their unigram distribution with Witten-Bell weights (Witten & Bell 1991: a previous word seen
``c`` times followed by ``n`` distinct words keeps ``c / (c + n)`` for its bigram). This is how a
phone keyboard adapts with a personal dictionary: only word counts, kept on the device, and one
weight ``lam`` per user, chosen on the user's validation split
(:func:`interlearn.federated.personalization.select.personalize_validated`, ``extra_methods``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from interlearn.data.shakespeare_words import PAD
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.keyboard.recall import recall_sums
from interlearn.types import Params

__all__ = ["UserCache", "CachedModel", "evaluate_cached", "cache_candidates"]


@dataclass(frozen=True)
class UserCache:
    """Word counts of one user's own text.

    Attributes:
        unigram: (vocab,) counts of target words.
        bigram: (vocab, vocab) sparse counts, row = previous word (input), column = next word.
        smoothing: add-``smoothing`` counts for the unigram distribution (no word gets zero).
    """

    unigram: torch.Tensor
    bigram: torch.Tensor
    smoothing: float = 0.1

    @classmethod
    def from_data(cls, data: TensorData, vocab_size: int, smoothing: float = 0.1) -> UserCache:
        """Counts of the (input word, next word) pairs of ``data`` (padding skipped).

        Raises:
            DataError: ``data`` has no word.
        """
        prev, nxt = data.x.reshape(-1).long(), data.y.reshape(-1).long()
        keep = nxt != PAD
        if not bool(keep.any()):
            raise DataError("UserCache.from_data: the user's text has no word")
        prev, nxt = prev[keep], nxt[keep]
        uni = torch.bincount(nxt, minlength=vocab_size).float()
        bi = torch.sparse_coo_tensor(
            torch.stack([prev, nxt]), torch.ones(len(nxt)), (vocab_size, vocab_size), check_invariants=True
        ).coalesce()
        return cls(uni, bi, smoothing)

    def probs(self, prev: torch.Tensor) -> torch.Tensor:
        """``p_user(. | prev)`` for every previous word in ``prev`` (N,): (N, vocab)."""
        v = self.unigram.numel()
        p_uni = (self.unigram + self.smoothing) / (self.unigram.sum() + self.smoothing * v)
        rows = self.bigram.index_select(0, prev.long()).to_dense()  # (N, V)
        c = rows.sum(1, keepdim=True)
        n = (rows > 0).sum(1, keepdim=True).float()
        beta = torch.where(c > 0, c / (c + n).clamp_min(1e-12), torch.zeros_like(c))
        return beta * rows / c.clamp_min(1e-12) + (1 - beta) * p_uni


@dataclass(frozen=True)
class CachedModel:
    """The global model's parameters, a user's cache and the interpolation weight ``lam``."""

    params: Params
    cache: UserCache
    lam: float

    def __post_init__(self) -> None:
        if not 0 <= self.lam <= 1:
            raise ConfigError(f"CachedModel.lam={self.lam}: an interpolation weight in [0, 1]")

    @torch.no_grad()
    def probs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Mixed next-word probabilities at every position: (batch, vocab, time)."""
        p_global = functional_call(model, self.params, (x,)).softmax(1)  # (B, V, T)
        b, v, t = p_global.shape
        p_user = self.cache.probs(x.reshape(-1)).reshape(b, t, v).transpose(1, 2)
        return (1 - self.lam) * p_global + self.lam * p_user


@torch.no_grad()
def evaluate_cached(
    model: nn.Module, cm: CachedModel, data: TensorData, ks: tuple[int, ...] = (1, 3), batch_size: int = 128
) -> dict[str, float]:
    """:func:`interlearn.keyboard.recall.evaluate_recall` for a :class:`CachedModel`."""
    was = model.training
    model.eval()
    hits, total, nll, targets = [0] * len(ks), 0, 0.0, 0
    for s in range(0, len(data), batch_size):
        x, y = data.x[s : s + batch_size], data.y[s : s + batch_size]
        p = cm.probs(model, x)
        h, n = recall_sums(p.clamp_min(1e-30).log(), y, ks)
        hits, total = [a + b for a, b in zip(hits, h)], total + n
        keep = y != PAD
        nll -= float(p.transpose(1, 2)[keep].gather(1, y[keep].long()[:, None]).clamp_min(1e-30).log().sum())
        targets += int(keep.sum())
    model.train(was)
    if total == 0:
        raise DataError("evaluate_cached: no in-vocabulary target word to score")
    return {
        **{f"top{k}_recall": h / total for k, h in zip(ks, hits)},
        "words": float(total),
        "loss": nll / max(targets, 1),
    }


def cache_candidates(
    params: Params, vocab_size: int, lams: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)
) -> Callable[[int, TensorData], list[tuple[dict[str, Any], Any]]]:
    """An ``extra_methods`` entry for :func:`~interlearn.federated.personalization.select.personalize_validated`:
    ``fn(user_index, train) -> [({"lam": lam}, CachedModel)]`` (the cache built from ``train``)."""
    if not lams or any(not 0 < v <= 1 for v in lams):
        raise ConfigError(f"cache lams={lams}: interpolation weights in (0, 1]")

    def fn(_i: int, train: TensorData) -> list[tuple[dict[str, float], CachedModel]]:
        cache = UserCache.from_data(train, vocab_size)
        return [({"lam": lam}, CachedModel(params, cache, lam)) for lam in lams]

    return fn
