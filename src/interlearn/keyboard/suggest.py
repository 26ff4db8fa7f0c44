"""Next-word suggestions for a typed prefix, as a keyboard's suggestion strip shows them.

The words typed so far (at most the last ``seq_len - 1``, the context length the model was
trained on, after the beginning-of-sequence token) go through the model; the special tokens are
never suggested. When the prefix ends inside a word (no trailing space), the suggestions are
completions: only vocabulary words that start with the typed letters (Hard et al. 2018's
keyboard shows the same strip for both cases).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from interlearn.data.shakespeare_words import BOS, WordVocab, tokenize
from interlearn.keyboard.cache import CachedModel
from interlearn.types import Params

__all__ = ["encode_prefix", "suggest_words"]


def encode_prefix(vocab: WordVocab, prefix: str, seq_len: int = 20) -> tuple[torch.Tensor, str]:
    """The model input (1, T) for ``prefix`` and the unfinished word ('' after a space)."""
    words = tokenize(prefix)
    partial = words[-1] if words and prefix and not prefix[-1].isspace() and prefix.lower().endswith(words[-1]) else ""
    context = words[:-1] if partial else words
    context = context[-(seq_len - 1) :] if seq_len > 1 else []
    ids = torch.cat([torch.tensor([BOS]), vocab.encode(context)]) if context else torch.tensor([BOS])
    return ids.unsqueeze(0), partial


@torch.no_grad()
def suggest_words(
    model: nn.Module, vocab: WordVocab, prefix: str, k: int = 3, params: Params | Any | None = None, seq_len: int = 20
) -> list[tuple[str, float]]:
    """The ``k`` most likely next words (or completions of an unfinished word) and their
    probabilities.

    Args:
        model: a next-word model whose output is (batch, vocab, time) logits.
        vocab: its vocabulary.
        prefix: the text typed so far.
        k: suggestions to return.
        params: parameters to use instead of the model's own (e.g. a personalized model), or a
            :class:`~interlearn.keyboard.cache.CachedModel` (the global model mixed with a
            user's own word statistics) or a :class:`~interlearn.federated.personalization.memory.MemoryModel`
            (the global model mixed with the user's local memory).
        seq_len: the training context length (longer prefixes keep their last words).

    Returns:
        ``[(word, probability)]``, most likely first (probabilities renormalized over the
        words allowed by the unfinished word, if any).
    """
    x, partial = encode_prefix(vocab, prefix, seq_len)
    was = model.training
    model.eval()
    predictor = getattr(params, "probs", None)  # a CachedModel or a MemoryModel
    if isinstance(params, CachedModel) or callable(predictor):
        assert predictor is not None
        probs = predictor(model, x)[0, :, -1].clone()
    else:
        out = model(x) if params is None else functional_call(model, params, (x,))
        probs = out[0, :, -1].softmax(-1)
    model.train(was)
    probs[list(vocab.special_ids())] = 0.0
    if partial:
        allowed = torch.zeros_like(probs, dtype=torch.bool)
        for w, i in vocab.index.items():
            if w.startswith(partial):
                allowed[i] = True
        if allowed.any():
            probs = torch.where(allowed, probs, torch.zeros_like(probs))
            probs = probs / probs.sum().clamp_min(1e-12)
    top = probs.topk(min(k, int((probs > 0).sum()) or k))
    return [(vocab.decode([int(i)])[0], float(p)) for p, i in zip(top.values, top.indices)]
