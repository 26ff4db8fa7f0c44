"""Top-k recall over in-vocabulary words: the keyboard metric of Hard et al. 2018.

A keyboard shows a few suggestions; a prediction counts when the word the user typed next is
among the top ``k`` suggestions. As in Hard et al. 2018 (and TFF's Stack Overflow next-word
accuracy, Reddi et al. 2021), only positions whose target is an in-vocabulary word are scored
(padding and out-of-vocabulary targets are skipped: no keyboard can suggest a word it does not
know), and the special tokens (pad, oov, bos) are never among the suggestions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from interlearn.data.shakespeare_words import BOS, OOV, PAD
from interlearn.data.tensors import TensorData
from interlearn.errors import DataError
from interlearn.types import Params

__all__ = ["recall_sums", "evaluate_recall", "SPECIAL_IDS"]

SPECIAL_IDS = (PAD, OOV, BOS)


@torch.no_grad()
def recall_sums(logits: torch.Tensor, y: torch.Tensor, ks: Sequence[int] = (1, 3)) -> tuple[list[int], int]:
    """Hits at each ``k`` and the number of scored positions.

    Args:
        logits: (batch, vocab, time) or (batch, vocab).
        y: (batch, time) or (batch,) targets.
        ks: suggestion counts.

    Returns:
        ``([hits@k for k in ks], scored)``.
    """
    if logits.dim() == 3:
        logits = logits.transpose(1, 2).reshape(-1, logits.shape[1])
        y = y.reshape(-1)
    keep = (y != PAD) & (y != OOV) & (y != BOS)
    lg, t = logits[keep].clone(), y[keep]
    lg[:, list(SPECIAL_IDS)] = float("-inf")
    top = lg.topk(max(ks), dim=1).indices
    hit = top == t[:, None]
    return [int(hit[:, :k].any(1).sum()) for k in ks], int(t.numel())


@torch.no_grad()
def evaluate_recall(
    model: nn.Module, params: Params | None, data: TensorData, ks: Sequence[int] = (1, 3), batch_size: int = 256
) -> dict[str, float]:
    """Top-k recall of ``model`` (with ``params``, or its own weights when ``None``) on ``data``.

    Returns:
        ``{"top1_recall": ..., "top3_recall": ..., "words": scored positions, "loss": mean
        cross-entropy over every non-padding target, out-of-vocabulary ones included}``.

    Raises:
        DataError: ``data`` holds no in-vocabulary target.
    """
    was = model.training
    model.eval()
    hits, total, loss_sum, targets = [0] * len(ks), 0, 0.0, 0
    for s in range(0, len(data), batch_size):
        x, y = data.x[s : s + batch_size], data.y[s : s + batch_size]
        out = model(x) if params is None else functional_call(model, params, (x,))
        h, n = recall_sums(out, y, ks)
        hits, total = [a + b for a, b in zip(hits, h)], total + n
        loss_sum += float(F.cross_entropy(out, y.long(), ignore_index=PAD, reduction="sum"))
        targets += int((y != PAD).sum())
    model.train(was)
    if total == 0:
        raise DataError("evaluate_recall: no in-vocabulary target word to score")
    return {
        **{f"top{k}_recall": h / total for k, h in zip(ks, hits)},
        "words": float(total),
        "loss": loss_sum / max(targets, 1),
    }
