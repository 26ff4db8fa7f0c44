"""The embedded default dataset: scikit-learn's 8x8 handwritten digits (1,797 images, no download)."""

from __future__ import annotations

import torch

from interlearn.data.tensors import TensorData

__all__ = ["load_digits"]


def load_digits(test_fraction: float = 0.3, seed: int = 0, image: bool = False) -> tuple[TensorData, TensorData]:
    """Return a stratified ``(train, test)`` split of scikit-learn's digits.

    Args:
        test_fraction: share of examples held out for testing.
        seed: split seed.
        image: ``True`` gives (N, 1, 8, 8) images, ``False`` flat (N, 64) vectors; values in [0, 1].
    """
    from sklearn.datasets import load_digits as _load  # deferred: scikit-learn takes ~1 s to import
    from sklearn.model_selection import train_test_split

    bunch = _load()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    idx = torch.arange(len(y)).numpy()
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=y.numpy())
    tr_t, te_t = torch.as_tensor(tr), torch.as_tensor(te)
    return TensorData(x[tr_t], y[tr_t]), TensorData(x[te_t], y[te_t])
