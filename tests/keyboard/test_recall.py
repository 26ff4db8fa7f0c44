"""Top-k recall over in-vocabulary words (Hard et al. 2018's metric) and word suggestions."""

import torch

from interlearn.data.shakespeare_words import BOS, OOV, PAD, WordVocab
from interlearn.data.tensors import TensorData
from interlearn.keyboard import evaluate_recall, recall_sums, suggest_words
from interlearn.models.word_cifg import word_cifg


def test_recall_skips_oov_and_padding_targets_and_never_suggests_specials():
    # vocab: 0 pad, 1 oov, 2 bos, 3.. words; (batch=1, vocab=6, time=4)
    logits = torch.full((1, 6, 4), -5.0)
    logits[0, OOV, :] = 10.0  # the model loves <oov>: it must not count as a suggestion
    logits[0, 3, 0], logits[0, 4, 0] = 3.0, 2.0  # position 0: 3 first, 4 second
    logits[0, 5, 1], logits[0, 3, 1] = 3.0, 2.0  # position 1: 5 first, 3 second
    y = torch.tensor([[4, 3, OOV, PAD]])
    hits, n = recall_sums(logits, y, (1, 2, 3))
    assert n == 2  # oov and pad targets are not scored
    assert hits == [0, 2, 2]


def test_evaluate_recall_matches_argmax_on_a_perfect_model():
    class Oracle(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(x + 1, 8).float().transpose(1, 2)  # predicts x + 1

    x = torch.tensor([[3, 4, 5], [5, 6, 0]])
    y = torch.tensor([[4, 5, 6], [6, 7, PAD]])
    r = evaluate_recall(Oracle(), None, TensorData(x, y))
    assert r["top1_recall"] == 1.0 and r["words"] == 5


def test_suggestions_are_words_and_complete_an_unfinished_word():
    vocab = WordVocab(("the", "thee", "thou", "lord", "my"))
    m = word_cifg(len(vocab), embed_dim=4, hidden=8)
    s = suggest_words(m, vocab, "my good ")
    assert len(s) == 3 and all(w in vocab.words for w, _ in s)
    assert s[0][1] >= s[1][1] >= s[2][1]
    comp = suggest_words(m, vocab, "my lord th")
    assert {w for w, _ in comp} == {"the", "thee", "thou"} and abs(sum(p for _, p in comp) - 1) < 1e-5
    assert all(w not in ("<bos>", "<oov>", "<pad>") for w, _ in suggest_words(m, vocab, ""))
    assert BOS == 2
