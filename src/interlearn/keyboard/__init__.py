"""The word-level keyboard: the Hard et al. 2018 recall metric, next-word suggestions, and a
personal cache (the user's own word statistics interpolated with the global model).

The model is :class:`interlearn.models.word_cifg.WordCIFG`, the data
:mod:`interlearn.data.shakespeare_words`, the end-to-end run :mod:`interlearn.recipes.keyboard_words`.
"""

from interlearn.keyboard.cache import CachedModel, UserCache, cache_candidates, evaluate_cached
from interlearn.keyboard.recall import SPECIAL_IDS, evaluate_recall, recall_sums
from interlearn.keyboard.suggest import encode_prefix, suggest_words

__all__ = [
    "SPECIAL_IDS",
    "evaluate_recall",
    "recall_sums",
    "encode_prefix",
    "suggest_words",
    "UserCache",
    "CachedModel",
    "cache_candidates",
    "evaluate_cached",
]
