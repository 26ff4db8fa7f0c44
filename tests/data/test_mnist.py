import gzip
import struct

import numpy as np
import pytest

from interlearn.data import load_mnist, read_idx
from interlearn.errors import DataError


def _write_idx(path, array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    _write_idx(d / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)), 0x803)
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 4, 9]), 0x801)
    return tmp_path


def test_reads_idx_gz(fake_mnist):
    data = load_mnist("test", data_dir=fake_mnist)
    assert data.x.shape == (6, 1, 28, 28) and float(data.x.max()) <= 1.0
    assert data.y.tolist() == [0, 1, 2, 3, 4, 9]
    assert load_mnist("test", data_dir=fake_mnist, flatten=True).x.shape == (6, 784)


def test_env_variable(fake_mnist, monkeypatch):
    monkeypatch.setenv("INTERLEARN_DATA", str(fake_mnist))
    assert len(load_mnist("test")) == 6


def test_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERLEARN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"(?s)not found. Looked in:.*nowhere/mnist/train-images.*--data-dir"):
        load_mnist("train", data_dir=tmp_path / "nowhere")


def test_truncated_and_bad_magic(tmp_path):
    p = tmp_path / "x.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(struct.pack(">IIII", 0x803, 10, 28, 28) + b"\0" * 100)
    with pytest.raises(DataError, match="truncated"):
        read_idx(p)
    with gzip.open(p, "wb") as fh:
        fh.write(b"\x12\x34\x56\x78")
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        read_idx(p)


def test_unknown_split_and_kind(fake_mnist):
    with pytest.raises(DataError, match="split='val'"):
        load_mnist("val", data_dir=fake_mnist)
    with pytest.raises(DataError, match="kind='kmnist'"):
        load_mnist("test", data_dir=fake_mnist, kind="kmnist")


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "not_gzip"])
def test_damaged_gzip_is_a_data_error_naming_the_file(fake_mnist, damage):
    path = fake_mnist / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "bitflip":
        for i in range(20, len(raw) - 8, 7):  # inside the deflate stream and its CRC
            raw[i] ^= 0xFF
    else:
        raw = bytearray(b"this is not a gzip file at all" * 10)
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: cannot be read as a gzipped IDX file.*fresh copy"):
        load_mnist("test", data_dir=fake_mnist)


def test_labels_outside_0_to_9_are_refused(fake_mnist):
    _write_idx(fake_mnist / "mnist" / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 200, 9]), 0x801)
    with pytest.raises(DataError, match=r"1 label\(s\) outside 0-9 \(largest 200\)"):
        load_mnist("test", data_dir=fake_mnist)
    # an image file where labels belong is caught by its shape
    _write_idx(fake_mnist / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros((6, 28, 28)), 0x803)
    with pytest.raises(DataError, match="swapped"):
        load_mnist("test", data_dir=fake_mnist)
