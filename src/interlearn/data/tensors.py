"""In-memory datasets: validated (x, y) tensors, built from arrays, .npz/CSV files or a torch Dataset.

Everything interlearn trains on is a ``TensorData``: a pair of tensors whose first dimension is
the example index. Validation happens here, where data enters, so errors name the field.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interlearn.errors import DataError

__all__ = ["TensorData", "from_arrays", "load_npz", "load_csv", "from_dataset"]


@dataclass(frozen=True)
class TensorData:
    """Inputs and targets as tensors; first dimension = examples.

    Attributes:
        x: inputs, float tensor of shape (N, ...).
        y: targets, (N,) long labels or (N, ...) float targets.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise DataError(
                f"x and y must be tensors, got {type(self.x).__name__} and {type(self.y).__name__}; use from_arrays()"
            )
        if self.x.shape[0] != self.y.shape[0]:
            raise DataError(
                f"x has {self.x.shape[0]} examples but y has {self.y.shape[0]}; they must match along dim 0"
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: torch.Tensor | Sequence[int]) -> TensorData:
        """The examples at ``index`` (a view-free copy)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return TensorData(self.x[idx], self.y[idx])

    def to(self, device: torch.device | str) -> TensorData:
        return TensorData(self.x.to(device), self.y.to(device))

    @property
    def num_classes(self) -> int:
        """``max(y) + 1`` for integer labels."""
        if self.y.dtype.is_floating_point:
            raise DataError("num_classes is only defined for integer labels")
        return int(self.y.max()) + 1 if len(self) else 0


def from_arrays(x: Any, y: Any, num_classes: int | None = None, name: str = "data") -> TensorData:
    """Build a validated ``TensorData`` from NumPy arrays, lists or tensors.

    Integer-valued ``y`` becomes long labels; float ``y`` stays float (regression).

    Args:
        x: inputs, shape (N, ...).
        y: targets, shape (N,) or (N, ...).
        num_classes: when given, labels must lie in ``[0, num_classes)``.
        name: used in error messages (e.g. ``"train"``).

    Raises:
        DataError: mismatched lengths, non-numeric values, NaN/Inf inputs, labels out of range.
    """
    try:
        xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: could not convert x/y to tensors ({exc}); pass numeric arrays") from exc
    if xt.dim() == 0 or yt.dim() == 0:
        raise DataError(
            f"{name}: x and y need a leading example dimension, got shapes {tuple(xt.shape)} and {tuple(yt.shape)}"
        )
    if xt.shape[0] != yt.shape[0]:
        raise DataError(f"{name}.x has {xt.shape[0]} rows but {name}.y has {yt.shape[0]}; they must match")
    if not (xt.dtype.is_floating_point or xt.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise DataError(f"{name}.x has dtype {xt.dtype}; expected numbers")
    xt = xt.float() if xt.dtype != torch.long else xt
    if xt.dtype.is_floating_point:
        bad = ~torch.isfinite(xt)
        if bad.any():
            rows = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten()[:5].tolist()
            raise DataError(f"{name}.x has {int(bad.sum())} NaN/Inf values (first rows {rows}); impute or drop them")
    if yt.dtype.is_floating_point:
        if not torch.isfinite(yt).all():
            rows = (~torch.isfinite(yt)).reshape(yt.shape[0], -1).any(1).nonzero().flatten()[:5].tolist()
            raise DataError(f"{name}.y has NaN/Inf targets (first rows {rows}); drop those rows")
        if yt.dim() == 1 and num_classes is not None and torch.equal(yt, yt.round()):
            yt = yt.long()
    else:
        yt = yt.long()
    if not yt.dtype.is_floating_point and yt.numel():
        lo, hi = int(yt.min()), int(yt.max())
        if lo < 0:
            raise DataError(f"{name}.y has negative label {lo}; labels must be 0..num_classes-1")
        if num_classes is not None and hi >= num_classes:
            raise DataError(
                f"{name}.y has label {hi} but num_classes={num_classes}; labels must be in [0, {num_classes - 1}]"
            )
    return TensorData(xt, yt)


def load_npz(path: str | Path, x_key: str = "x", y_key: str = "y", num_classes: int | None = None) -> TensorData:
    """Load ``x``/``y`` arrays from a ``.npz`` file.

    Raises:
        DataError: missing file or keys (the message lists the keys present).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"npz file not found: {p}")
    if not zipfile.is_zipfile(p):
        raise DataError(
            f"{p}: not a .npz file (an .npz is a zip archive of .npy arrays); write it with numpy.savez(path, x=..., y=...)"
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in (x_key, y_key) if k not in z.files]
            if missing:
                raise DataError(f"{p}: keys {missing} not found; present keys: {z.files}; pass x_key=/y_key=")
            x, y = z[x_key], z[y_key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(
            f"{p}: the arrays cannot be read ({type(exc).__name__}: {exc}); the file is corrupted, or holds Python "
            "objects rather than numeric arrays: re-save numeric arrays with numpy.savez(path, x=..., y=...)"
        ) from None
    return from_arrays(x, y, num_classes=num_classes, name=p.name)


def load_csv(path: str | Path, label_column: str | int = -1, num_classes: int | None = None) -> TensorData:
    """Load a numeric CSV with a header row; ``label_column`` (name or index) is the target.

    Raises:
        DataError: missing file, unknown label column, or a non-numeric cell (row and column named).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"CSV file not found: {p}")
    with p.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        raise DataError(f"{p}: expected a header row and at least one data row")
    header, body = rows[0], rows[1:]
    if isinstance(label_column, str):
        if label_column not in header:
            raise DataError(f"{p}: label column {label_column!r} not in header {header}")
        li = header.index(label_column)
    else:
        li = label_column % len(header)
    values = np.empty((len(body), len(header)), dtype=np.float64)
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{p}: row {r + 2} has {len(row)} fields, header has {len(header)}")
        for c, cell in enumerate(row):
            try:
                values[r, c] = float(cell)
            except ValueError:
                raise DataError(f"{p}: row {r + 2}, column {header[c]!r}: {cell!r} is not a number") from None
    y = values[:, li]
    x = np.delete(values, li, axis=1)
    return from_arrays(
        x.astype(np.float32),
        y,
        num_classes=num_classes if num_classes is not None else int(y.max()) + 1 if np.all(y == np.round(y)) else None,
        name=p.name,
    )


def from_dataset(
    dataset: torch.utils.data.Dataset[Any], num_classes: int | None = None, name: str = "dataset"
) -> TensorData:
    """Materialize a map-style torch ``Dataset`` of ``(x, y)`` pairs into a ``TensorData``."""
    if not isinstance(dataset, Sized):
        raise DataError(f"{name}: only map-style datasets with __len__ are supported")
    n = len(dataset)
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"{name}[{i}] must be an (x, y) pair, got {type(item).__name__}")
        xs.append(torch.as_tensor(item[0]))
        ys.append(torch.as_tensor(item[1]))
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) > 1:
        raise DataError(f"{name}: inputs have different shapes {sorted(shapes)[:3]}; resize or pad them")
    return from_arrays(torch.stack(xs), torch.stack(ys), num_classes=num_classes, name=name)
