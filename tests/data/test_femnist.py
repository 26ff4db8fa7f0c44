"""FEMNIST loader on small LEAF JSON files written by the tests."""

import gzip
import json

import pytest
import torch

from interlearn.data.femnist import FEMNIST_CLASSES, load_femnist, read_leaf_json
from interlearn.errors import DataError


def _write(path, users, gz=False):
    obj = {
        "users": list(users),
        "num_samples": [len(v[1]) for v in users.values()],
        "user_data": {u: {"x": x, "y": y} for u, (x, y) in users.items()},
    }
    text = json.dumps(obj)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)


def _image(ink_at: int) -> list[float]:
    img = [1.0] * 784  # LEAF: white background
    img[ink_at] = 0.0  # dark ink
    return img


@pytest.fixture
def leaf_dir(tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        d = tmp_path / "femnist-leaf" / split
        d.mkdir(parents=True)
        _write(d / f"all_data_0_{split}.json.gz", {"w2": ([_image(i) for i in range(n)], [61] * n)}, gz=True)
        _write(d / f"all_data_1_{split}.json", {"w1": ([_image(5)] * n, [0] * n), "w3": ([_image(7)] * n, [10] * n)})
    return tmp_path


def test_writers_are_clients_and_pixels_inverted(leaf_dir):
    tr = load_femnist("train", leaf_dir)
    assert tr.users == ["w1", "w2", "w3"] and len(tr) == 9
    x = tr.of("w2").x
    assert x.shape == (3, 1, 28, 28)
    assert x.flatten(1)[1, 1] == 1.0 and x.flatten(1)[1, 0] == 0.0  # ink bright, background dark
    assert tr.of("w2").y.tolist() == [61] * 3 and FEMNIST_CLASSES[61] == "z"
    raw = load_femnist("train", leaf_dir, invert=False)
    assert torch.equal(raw.of("w2").x, 1 - x)
    te = load_femnist("test", leaf_dir)
    assert te.users == tr.users and len(te.pooled()) == 3
    with pytest.raises(DataError, match="did you mean"):
        tr.of("w9")


def test_malformed_json_is_rejected(tmp_path):
    bad = tmp_path / "bad.json"
    _write(bad, {"w": ([_image(0)] * 2, [1])})
    with pytest.raises(DataError, match="must agree"):
        read_leaf_json(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a readable"):
        read_leaf_json(bad)
    bad.write_text(json.dumps({"users": []}))
    with pytest.raises(DataError, match="user_data"):
        read_leaf_json(bad)


def test_values_checked(tmp_path):
    d = tmp_path / "femnist-leaf" / "train"
    d.mkdir(parents=True)
    _write(d / "a.json", {"w": ([[2.0] * 784], [3])})
    with pytest.raises(DataError, match="outside"):
        load_femnist("train", tmp_path)
    _write(d / "a.json", {"w": ([[1.0] * 784], [62])})
    with pytest.raises(DataError, match="label"):
        load_femnist("train", tmp_path)
    _write(d / "a.json", {"w": ([[1.0] * 10], [1])})
    with pytest.raises(DataError, match="784"):
        load_femnist("train", tmp_path)


def test_missing_files_say_where(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERLEARN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="Looked in"):
        load_femnist("train", tmp_path / "none")
    with pytest.raises(DataError, match="split"):
        load_femnist("validation", tmp_path)
