"""The personal cache: Witten-Bell bigram/unigram statistics mixed with the global model."""

import pytest
import torch

from interlearn.data.shakespeare_words import BOS, PAD, WordVocab
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.params import model_params
from interlearn.keyboard import (
    CachedModel,
    UserCache,
    cache_candidates,
    evaluate_cached,
    evaluate_recall,
    suggest_words,
)
from interlearn.models.word_cifg import word_cifg


def _data():
    # one user's text: "lord lord good lord" after BOS; vocab ids: 3 lord, 4 good
    x = torch.tensor([[BOS, 3, 3, 4]])
    y = torch.tensor([[3, 3, 4, 3]])
    return TensorData(x, y)


def test_witten_bell_bigram_backs_off_to_the_unigram():
    c = UserCache.from_data(_data(), vocab_size=6, smoothing=0.0)
    assert c.unigram.tolist() == [0, 0, 0, 3, 1, 0]
    p = c.probs(torch.tensor([3, 5]))
    # after "lord": seen twice, followed by 2 distinct words -> beta = 2 / 4; bigram 1/2 lord, 1/2 good
    uni = torch.tensor([0, 0, 0, 0.75, 0.25, 0])
    assert torch.allclose(p[0], 0.5 * torch.tensor([0, 0, 0, 0.5, 0.5, 0]) + 0.5 * uni)
    assert torch.allclose(p[1], uni)  # never seen: the unigram
    assert torch.allclose(p.sum(1), torch.ones(2))
    with pytest.raises(DataError):
        UserCache.from_data(TensorData(torch.tensor([[BOS]]), torch.tensor([[PAD]])), 6)


def test_mixture_is_the_global_model_at_zero_and_learns_the_users_words():
    torch.manual_seed(0)
    vocab = WordVocab(("lord", "good", "the"))
    model = word_cifg(len(vocab), embed_dim=4, hidden=8)
    params = model_params(model)
    cache = UserCache.from_data(_data(), len(vocab))
    at0 = evaluate_cached(model, CachedModel(params, cache, 0.0), _data())
    plain = evaluate_recall(model, params, _data())
    assert at0["top1_recall"] == plain["top1_recall"] and at0["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    full = evaluate_cached(model, CachedModel(params, cache, 1.0), _data())
    assert full["top1_recall"] == 0.75 and full["loss"] < plain["loss"]  # "lord" is this user's word
    assert suggest_words(model, vocab, "my ", params=CachedModel(params, cache, 1.0))[0][0] == "lord"
    cands = cache_candidates(params, len(vocab), (0.1, 0.5))(0, _data())
    assert [s for s, _ in cands] == [{"lam": 0.1}, {"lam": 0.5}]
    with pytest.raises(ConfigError):
        CachedModel(params, cache, 1.5)
