"""Word-level Shakespeare: tokenizing, vocabulary, chunks, the per-user validation split."""

import collections

import pytest
import torch

from interlearn.data.shakespeare_words import (
    BOS,
    OOV,
    PAD,
    WordVocab,
    load_shakespeare_words,
    masked_cross_entropy,
    tokenize,
    word_chunks,
)
from interlearn.errors import DataError


def test_tokenize_keeps_inner_apostrophes_and_drops_punctuation():
    assert tokenize("O'er the hills, I'll go -- 'tis 3 miles!") == [
        "o'er",
        "the",
        "hills",
        "i'll",
        "go",
        "tis",
        "miles",
    ]


def test_vocab_orders_by_frequency_and_maps_unknown_to_oov():
    v = WordVocab.from_counts(collections.Counter({"b": 5, "a": 5, "c": 1}), 2)
    assert v.words == ("a", "b") and len(v) == 5
    assert v.encode(["a", "zzz", "b"]).tolist() == [3, OOV, 4]
    assert v.decode([0, 1, 2, 3]) == ["<pad>", "<oov>", "<bos>", "a"]
    with pytest.raises(DataError, match="duplicates"):
        WordVocab(("a", "a"))


def test_word_chunks_targets_every_word_once_with_bos_inputs():
    ids = torch.arange(10, 17)  # 7 words
    d = word_chunks(ids, seq_len=3)
    assert d.x.shape == (3, 3)
    assert d.y.tolist() == [[10, 11, 12], [13, 14, 15], [16, PAD, PAD]]
    assert d.x.tolist() == [[BOS, 10, 11], [BOS, 13, 14], [BOS, PAD, PAD]]
    assert len(word_chunks(torch.zeros(0, dtype=torch.long), 4)) == 0


def test_masked_cross_entropy_ignores_padding():
    logits = torch.randn(2, 6, 3)
    y = torch.tensor([[3, 4, PAD], [5, PAD, PAD]])
    full = torch.nn.functional.cross_entropy(logits.transpose(1, 2).reshape(-1, 6)[[0, 1, 3]], torch.tensor([3, 4, 5]))
    assert torch.allclose(masked_cross_entropy(logits, y), full)


def test_load_splits_train_val_test_per_user(tiny_shakespeare_dir):
    tmp_path = tiny_shakespeare_dir
    d = load_shakespeare_words(tmp_path, source="tiny", vocab_size=50, seq_len=5, val_fraction=0.25)
    assert [u.name for u in d.users] == ["TINY_ALPHA", "TINY_BETA", "TINY_GAMMA"]
    assert "o'er" in d.vocab.words and len(d.vocab) == len(d.vocab.words) + 3
    for u in d.users:
        n = [int((s.y != PAD).sum()) for s in (u.train, u.val, u.test)]
        assert all(k > 0 for k in n) and n[1] == pytest.approx((n[0] + n[1]) * 0.25, abs=1)
    assert d.meta["test_oov_rate"] > 0  # the test lines' zz* words are unseen in training
    assert len(load_shakespeare_words(tmp_path, source="tiny", max_users=2).users) == 2
    with pytest.raises(DataError, match="val_fraction"):
        load_shakespeare_words(tmp_path, source="tiny", val_fraction=1.0)
