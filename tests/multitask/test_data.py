import pytest
import torch

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.multitask.data import MULTIMNIST_TASKS, load_digits_multitask, load_multimnist, make_multimnist


def _fake_mnist(n=40):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.zeros(n, 1, 28, 28)
    code = ((labels + 1) / 20.0).reshape(n, 1, 1, 1)
    images[:, :, :8, :8] = code  # marks the top-left corner (only the left digit reaches there)
    images[:, :, 20:, 20:] = code  # and the bottom-right one (only the right digit)
    return images, labels


@pytest.mark.parametrize(("layout", "corner"), [("random", 35), ("sener_koltun", 33)])
def test_left_and_right_labels_match_the_placed_digits(layout, corner):
    images, labels = _fake_mnist()
    data = make_multimnist(images, labels, n=60, size=36, max_shift=0, seed=1, layout=layout)
    parts = MULTIMNIST_TASKS.split(data.y)
    left, right = parts["left"][0], parts["right"][0]
    assert data.x.shape == (60, 1, 36, 36)
    assert torch.allclose(data.x[:, 0, 0, 0], (left + 1) / 20.0)
    assert torch.allclose(data.x[:, 0, corner, corner], (right + 1) / 20.0)
    if layout == "sener_koltun":  # Sener & Koltun's loader: right digit at [6:34, 6:34]
        assert float(data.x[:, 0, 34:, :].abs().sum()) == 0.0


def test_unknown_layout_names_the_known_ones():
    images, labels = _fake_mnist()
    with pytest.raises(ConfigError, match="sener_koltun"):
        make_multimnist(images, labels, layout="diagonal")


def test_generation_is_seeded_and_resizes():
    images, labels = _fake_mnist()
    a = make_multimnist(images, labels, n=20, seed=3)
    b = make_multimnist(images, labels, n=20, seed=3)
    c = make_multimnist(images, labels, n=20, seed=4)
    assert a.x.shape == (20, 1, 28, 28) and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.y, c.y)
    assert float(a.x.min()) >= 0 and float(a.x.max()) <= 1
    with pytest.raises(ConfigError, match="max_shift"):
        make_multimnist(images, labels, max_shift=9)


def test_load_multimnist_caches(tmp_path, monkeypatch):
    images, labels = _fake_mnist()
    calls = []

    def fake_load(split, data_dir=None):
        calls.append(split)
        return TensorData(images, labels)

    monkeypatch.setattr("interlearn.multitask.data.load_mnist", fake_load)
    first = load_multimnist("train", n=30, cache=tmp_path)
    second = load_multimnist("train", n=30, cache=tmp_path)
    assert calls == ["train"] and len(list(tmp_path.glob("*.pt"))) == 1
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    load_multimnist("train", n=30, seed=1, cache=tmp_path)
    assert calls == ["train", "train"]  # another seed is another cache entry


def test_digits_multitask_attributes():
    train, test = load_digits_multitask()
    from interlearn.multitask.data import DIGITS_TASKS

    parts = DIGITS_TASKS.split(train.y)
    digit, parity, ge5 = (parts[n][0] for n in ("digit", "parity", "ge5"))
    assert torch.equal(parity, digit % 2) and torch.equal(ge5, (digit >= 5).long())
    assert len(train) + len(test) == 1797
