"""Small reference models used by the paradigms, the tour and the benchmarks.

- :func:`small_cnn` — an ``nn.Sequential`` CNN with named layers (easy cuts for transfer).
- :func:`mlp`, :func:`mnist_2nn`, :func:`digits_mlp` — MLPs (McMahan et al. 2017's 2NN).
- :func:`mnist_cnn` — McMahan et al. 2017's MNIST CNN.
- :func:`char_lstm`, :func:`ondevice_char_lstm` — the keyboard's character LSTM (explicit
  gates, so it vectorizes under ``torch.func``) and its small on-device variant.
- :func:`femnist_cnn` — LEAF's FEMNIST CNN.
"""

from interlearn.models.char_lstm import CharLSTM, CharLSTMConfig, char_lstm, ondevice_char_lstm
from interlearn.models.cnn import mnist_cnn
from interlearn.models.femnist_cnn import FemnistCNN, femnist_cnn
from interlearn.models.mlp import digits_mlp, mlp, mnist_2nn
from interlearn.models.small_cnn import small_cnn

__all__ = [
    "small_cnn",
    "mlp",
    "mnist_2nn",
    "digits_mlp",
    "mnist_cnn",
    "char_lstm",
    "ondevice_char_lstm",
    "CharLSTM",
    "CharLSTMConfig",
    "femnist_cnn",
    "FemnistCNN",
]
