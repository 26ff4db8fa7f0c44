"""Where real datasets are looked up: an explicit path, ``$INTERLEARN_DATA``, or a cache folder."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from interlearn.errors import DataError

__all__ = ["data_root", "cache_dir", "not_found"]


def data_root(data_dir: str | Path | None = None) -> Path | None:
    """The data directory: ``data_dir`` if given, else ``$INTERLEARN_DATA``, else ``None``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("INTERLEARN_DATA")
    return Path(env).expanduser() if env else None


def cache_dir() -> Path:
    """Download cache: ``$INTERLEARN_CACHE`` or ``~/.cache/interlearn``."""
    return Path(os.environ.get("INTERLEARN_CACHE", Path.home() / ".cache" / "interlearn")).expanduser()


def not_found(what: str, looked: Iterable[Path], holding: str, note: str = "") -> DataError:
    """The error for a dataset file that is nowhere: where it looked and how to point at it.

    Args:
        what: the missing thing (``"MNIST file train-images-idx3-ubyte.gz"``).
        looked: the paths tried.
        holding: what the data folder should hold (``"the IDX .gz files"``).
        note: appended after the fix (e.g. the expected checksum).
    """
    paths = "\n  ".join(str(p) for p in looked)
    return DataError(
        f"{what} not found. Looked in:\n  {paths}\n"
        f"Pass data_dir=... (or --data-dir / INTERLEARN_DATA) pointing at a folder with {holding}, "
        f"or download=True on a machine with internet{note}."
    )
