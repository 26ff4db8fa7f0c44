"""Downloading a file with checksum verification into the cache (for machines with internet)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import urllib.request
from pathlib import Path

from interlearn.errors import DataError

__all__ = ["download", "sha256_of"]


def sha256_of(path: Path, decompress: bool = False) -> str:
    """SHA-256 of a file's bytes (of its gunzipped content when ``decompress``)."""
    h = hashlib.sha256()
    with gzip.open(path, "rb") if decompress else open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(urls: list[str], dest: Path, sha256: str | None = None, decompressed_sha256: str | None = None) -> Path:
    """Fetch the first reachable URL to ``dest`` atomically and verify its checksum.

    Args:
        urls: mirrors tried in order.
        dest: target file; left untouched on failure.
        sha256: expected digest of the downloaded bytes.
        decompressed_sha256: expected digest of the gunzipped content (used for ``.gz`` files
            whose gzip header may differ between mirrors).

    Raises:
        DataError: no mirror reachable, or the checksum does not match.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
            tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, tmp_path.open("wb") as out:
                shutil.copyfileobj(resp, out)
            if sha256 and sha256_of(tmp_path) != sha256:
                raise DataError(f"checksum mismatch for {url}")
            if decompressed_sha256 and sha256_of(tmp_path, decompress=True) != decompressed_sha256:
                raise DataError(f"content checksum mismatch for {url}")
            tmp_path.replace(dest)
            return dest
        except Exception as exc:  # noqa: BLE001  (try the next mirror, report all failures at the end)
            errors.append(f"{url}: {exc}")
            tmp_path.unlink(missing_ok=True)
    raise DataError(f"could not download {dest.name}: " + "; ".join(errors))
