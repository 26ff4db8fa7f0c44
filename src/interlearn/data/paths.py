"""Where real datasets are looked up: an explicit path, ``$INTERLEARN_DATA``, or a cache folder."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "cache_dir"]


def data_root(data_dir: str | Path | None = None) -> Path | None:
    """The data directory: ``data_dir`` if given, else ``$INTERLEARN_DATA``, else ``None``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("INTERLEARN_DATA")
    return Path(env).expanduser() if env else None


def cache_dir() -> Path:
    """Download cache: ``$INTERLEARN_CACHE`` or ``~/.cache/interlearn``."""
    return Path(os.environ.get("INTERLEARN_CACHE", Path.home() / ".cache" / "interlearn")).expanduser()
