"""Data: the embedded digits, user data (arrays, .npz, CSV, torch Datasets) and real datasets."""

from interlearn.data.digits import load_digits
from interlearn.data.mnist import load_mnist, read_idx
from interlearn.data.optdigits import to_optdigits
from interlearn.data.paths import cache_dir, data_root
from interlearn.data.tensors import TensorData, from_arrays, from_dataset, load_csv, load_npz

__all__ = [
    "TensorData",
    "from_arrays",
    "from_dataset",
    "load_csv",
    "load_npz",
    "load_digits",
    "load_mnist",
    "read_idx",
    "to_optdigits",
    "data_root",
    "cache_dir",
]
