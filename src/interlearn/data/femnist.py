"""FEMNIST in LEAF's JSON layout, one client per writer.

LEAF (Caldas et al. 2018, "LEAF: A Benchmark for Federated Settings") groups the 62-class
EMNIST handwritten characters of NIST SD19 by writer. Each JSON file holds
``{"users": [...], "num_samples": [...], "user_data": {user: {"x": [[784 floats]], "y": [...]}}}``;
``x`` is a 28x28 image in [0, 1] with **1.0 the white background and dark ink** (the inverse of
MNIST); ``y`` is 0-9 digits, 10-35 ``A``-``Z``, 36-61 ``a``-``z``. By default images are
inverted (``1 - x``) so ink is bright, as in MNIST; pass ``invert=False`` for LEAF's raw values.

Files are looked up in ``<data_dir>/femnist-leaf/{train,test}/`` (``.json`` or ``.json.gz``),
then in the cache; ``download=True`` fetches the 20-shard subset this project uses (LEAF's
``-s niid --sf 0.05 -k 0 -t sample --tf 0.9`` output, from a public repository) and verifies
each file's SHA-256.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from interlearn.data.download import download as _download
from interlearn.data.paths import cache_dir, data_root, not_found
from interlearn.data.tensors import TensorData
from interlearn.errors import DataError, closest

__all__ = ["FemnistData", "load_femnist", "read_leaf_json", "FEMNIST_CLASSES", "FEMNIST_SHARDS"]

FEMNIST_CLASSES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
"""The label -> character table (62 classes)."""

_URL = "https://raw.githubusercontent.com/slz-ai/leaf-torch/5a94e3b721bf5920a25d59d800481380602b7862/data/femnist/data/{split}/all_data_{k}_niid_05_keep_0_{split}_9.json"
FEMNIST_SHARDS: dict[int, tuple[str, str]] = {
    # shard K -> (sha256 of the train JSON, sha256 of the test JSON)
    0: (
        "e52c8724a9a3ea3ff3fecc179b3f322efa25fe84a1d712a37ee94586f08123c6",
        "979c4ab82ccbc6de67656cfdfc7412900910099014a7c134d64a36347ca6be41",
    ),
    1: (
        "e7e9a1b23bc206e1feeb94d4f993d911ed950adc47e92ce52954597197b99c13",
        "e7dabc622469a0941c32ba03c14ba8c1f2f2c24e03378926f2b4d60a10f5a537",
    ),
    2: (
        "a71f9d0d1ab95b98bb95f20cdcab02097125efab27d9ce341045cb07d565409d",
        "86f292986d0843c50f08d069125f73fddd4fff59a990e6a4c7cc7fff472696b1",
    ),
    3: (
        "1623ade048b1c1991d3aa6d5a658dcb67e83fe1def41c2b2647f466f3f3c91db",
        "99f701d9394a8516a4cb86eb96e3565bf8a405e490ae00487f882419ca86d6fc",
    ),
    4: (
        "133facbc92bfaffe3b315a147cd458ca20e3283d3f48882ad72e953c4906e435",
        "2a4c61b74d2efd1dcd6b7eaa6a970ca10da82f6b1f3b419839c6ae314e85b14b",
    ),
    5: (
        "2a2b8dccb528033995b0d29ddd953edf002242ed4869c99b23983570b37348de",
        "63b48265b8ccae669c770ce7846976dbd62e7b848e9c36563d93a364f0109607",
    ),
    6: (
        "be03dc6a7fef7197501f75cb25285f03b9dbf6ae0e1367e48d82096da41cb32c",
        "a7ece8a2f53b40671c5a58150d6b7f846bb44003a9b4b8c4628a1973387607ca",
    ),
    7: (
        "2e1008e286bdb71110e47ab0010edde2d5bcabfb96ba988926481aa401e85532",
        "a2094cd1048f01072f4a9b8cbff2bd1f69c4e24c03f871e0b23796c19f2f8c97",
    ),
    8: (
        "b72ad0551d01fa0b031f2580aac5bc415f4ffb8613a8cf62048389923d44be90",
        "3939db329891ce9a9b1def83e55af6193eabaa11672344d8129d4a9ab6300e86",
    ),
    9: (
        "4c8ed42c941fa95250f21125cf35141b57147cce5063e6acb1bf1d02c7684b8d",
        "09707e362bd5cf273c1948170eb0e3aed4264659b9b7efbb4d7bd0fd38be4b12",
    ),
    10: (
        "dc687d0b52afc4cb038ba59504f5962217947b58be77708502f27aace6481f9d",
        "9ed09f6d45455c66d8d442a8451d96d7f53b64e159149a2ccc0931651ae52851",
    ),
    16: (
        "927bb8cc27658e539c0781ac39918397b3ad712f42fff8ac687778dfabab2451",
        "b326cd7652b00073ae157e517b6d90e5bd45257bcdf8b6d6781f5e9beafdf628",
    ),
    17: (
        "9fe910f90e73eb87989f8dbcbab94bd713b1ada05dad8c438f19d0febe4ea5d6",
        "40b93f70a73598b133443a7c5e332e706d82c2611de7d5cfd6066d2a2a3c9052",
    ),
    18: (
        "b0acfd82f3e3854d6a105928c46f66c25868b3ae1305488a9e91572dce0396b0",
        "fefe2cf9c2f14fdb6cb757774ff841519fed1adf214c786c680492a94d6b63fc",
    ),
    19: (
        "6e3184a7b11c700f89af4a779dcca275796768c48fa84e4e150af7d4bf4db513",
        "c3f5506ff72efbce185955fb4778d7887389a31c0bb4d9090a08dbcb90101e82",
    ),
    20: (
        "46a4e20479468057c9b9462cc60ad2ad48c2b0c000e740d94d4a8310b23715bf",
        "34a4aedc5b4e7a7c88c3ddb2f8f5beff944a5f3619e98a634879de9e509588f6",
    ),
    31: (
        "a2438bbf6e17a45d05ea9e28b9c7085dde298e1ed02e00372eee6da8161d6701",
        "7534a28d664082283e1fd678ced09faf2883b344cc87f12acdc8490c60562ece",
    ),
    32: (
        "8c82d19646fbc0a96483d886c36a3502bdfc657e758c40cae12ee9eef83e3daf",
        "83e62e7c499bf1211424b0a38082df3efd80de66f9f2a16a094d8f971f8f6f03",
    ),
    33: (
        "b6f89d29618747d8431396bd2a9d2e54fd2286d1d8939a9b32c72f569d6ffd05",
        "b5eec2f3d839cf2934a9581aaaee94b40bf368fcdf1c918b9107fd67f1fde519",
    ),
    34: (
        "655a68578d2edd76a02f6ee8141e32c5aad079f48d4edeece711b0e04c84c1fc",
        "1ccf595d2c2442141ba555cba762d4c72d76d8e7341314e45e7830d196013fe0",
    ),
}
_NUM_CLASSES = 62


@dataclass(frozen=True)
class FemnistData:
    """One split of FEMNIST: writers (sorted) and each writer's images (N, 1, 28, 28) and labels."""

    users: list[str]
    data: list[TensorData]
    files: list[str]

    def __len__(self) -> int:
        return sum(len(d) for d in self.data)

    def of(self, user: str) -> TensorData:
        """The data of writer ``user``.

        Raises:
            DataError: unknown writer (the message suggests close ids).
        """
        if user not in self.users:
            raise DataError(f"unknown writer {user!r}; did you mean {closest(user, self.users)}?")
        return self.data[self.users.index(user)]

    def pooled(self) -> TensorData:
        """All writers' examples concatenated (for centralized training or global evaluation)."""
        return TensorData(torch.cat([d.x for d in self.data]), torch.cat([d.y for d in self.data]))


def read_leaf_json(path: Path) -> dict[str, tuple[list[list[float]], list[int]]]:
    """Parse one LEAF JSON file (optionally gzipped) into ``{user: (x, y)}``, validating it.

    Raises:
        DataError: unreadable JSON, missing keys, or ``x``/``y``/``num_samples`` disagreeing.
    """
    try:
        with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as fh:
            obj = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable LEAF JSON file ({exc})") from exc
    missing = [k for k in ("users", "user_data") if k not in obj]
    if missing:
        raise DataError(f"{path}: keys {missing} missing; LEAF JSON has 'users', 'num_samples', 'user_data'")
    out = {}
    counts = obj.get("num_samples", [None] * len(obj["users"]))
    for user, n in zip(obj["users"], counts):
        if user not in obj["user_data"]:
            raise DataError(f"{path}: user {user!r} listed in 'users' has no entry in 'user_data'")
        rec = obj["user_data"][user]
        x, y = rec.get("x"), rec.get("y")
        if x is None or y is None or len(x) != len(y) or (n is not None and len(y) != n):
            raise DataError(
                f"{path}: user {user!r} has {len(x or [])} images, {len(y or [])} labels, num_samples={n}; they must agree"
            )
        out[user] = (x, y)
    return out


def _files(split: str, data_dir: str | Path | None, download: bool) -> list[Path]:
    root = data_root(data_dir)
    folders = ([root / "femnist-leaf" / split, root / split] if root is not None else []) + [
        cache_dir() / "femnist-leaf" / split
    ]
    for f in folders:
        found = sorted(p for p in f.glob("*.json*") if p.name.endswith((".json", ".json.gz"))) if f.is_dir() else []
        if found:
            return found
    if download:
        out = []
        for k, shas in FEMNIST_SHARDS.items():
            sha = shas[0] if split == "train" else shas[1]
            name = f"all_data_{k}_niid_05_keep_0_{split}_9.json"
            dest = cache_dir() / "femnist-leaf" / split / name
            out.append(dest if dest.is_file() else _download([_URL.format(split=split, k=k)], dest, sha256=sha))
        return out
    raise not_found(f"FEMNIST {split} JSON files", folders, "femnist-leaf/{train,test}/*.json[.gz]")


def load_femnist(
    split: Literal["train", "test"] = "train",
    data_dir: str | Path | None = None,
    invert: bool = True,
    download: bool = False,
    max_users: int | None = None,
) -> FemnistData:
    """Load FEMNIST as one ``TensorData`` per writer.

    Args:
        split: ``"train"`` or ``"test"`` (the same writers, 90/10 per writer in LEAF's sample split).
        data_dir: folder holding ``femnist-leaf/`` (default ``$INTERLEARN_DATA``).
        invert: ``1 - x`` so ink is bright like MNIST (LEAF's raw images have a white background).
        download: fetch missing files into the cache (needs internet).
        max_users: keep only the first ``max_users`` writers in sorted order.

    Returns:
        ``FemnistData``: images (N, 1, 28, 28) float in [0, 1], labels (N,) long in [0, 62).

    Raises:
        DataError: missing files, malformed JSON, wrong image size, values or labels out of range.
    """
    if split not in ("train", "test"):
        raise DataError(f"split={split!r}; use 'train' or 'test'")
    files = _files(split, data_dir, download)
    merged: dict[str, tuple[list[list[float]], list[int]]] = {}
    for f in files:
        for user, (x, y) in read_leaf_json(f).items():
            px, py = merged.setdefault(user, ([], []))
            px.extend(x)
            py.extend(y)
    users = sorted(merged)[:max_users] if max_users is not None else sorted(merged)
    data = []
    for u in users:
        images = torch.tensor(merged[u][0], dtype=torch.float32)
        labels = torch.tensor(merged[u][1], dtype=torch.long)
        if images.dim() != 2 or images.shape[1] != 784:
            raise DataError(
                f"writer {u!r}: images have shape {tuple(images.shape)}; LEAF FEMNIST images are 784 floats (28x28)"
            )
        if images.numel() and (images.min() < 0 or images.max() > 1 or not torch.isfinite(images).all()):
            raise DataError(f"writer {u!r}: pixel values outside [0, 1]; LEAF FEMNIST stores intensities in [0, 1]")
        if labels.numel() and (labels.min() < 0 or labels.max() >= _NUM_CLASSES):
            raise DataError(
                f"writer {u!r}: label {int(labels.max() if labels.max() >= _NUM_CLASSES else labels.min())} outside [0, 61]"
            )
        images = (1.0 - images) if invert else images
        data.append(TensorData(images.reshape(-1, 1, 28, 28), labels))
    return FemnistData(users, data, [str(f) for f in files])
