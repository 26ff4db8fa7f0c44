import numpy as np
import pytest
import torch

from interlearn.data import TensorData, from_arrays, from_dataset, load_csv, load_digits, load_npz
from interlearn.errors import DataError


def test_digits_split_is_stratified_and_scaled():
    tr, te = load_digits(test_fraction=0.3, seed=0)
    assert len(tr) + len(te) == 1797 and tr.x.shape[1] == 64
    assert float(tr.x.min()) >= 0.0 and float(tr.x.max()) <= 1.0
    assert set(te.y.tolist()) == set(range(10))
    img, _ = load_digits(image=True)
    assert img.x.shape[1:] == (1, 8, 8)


def test_from_arrays_validates():
    d = from_arrays(np.zeros((4, 3)), [0, 1, 2, 1], num_classes=3)
    assert d.y.dtype == torch.long and d.x.dtype == torch.float32
    with pytest.raises(DataError, match="x has 4 rows but data.y has 3"):
        from_arrays(np.zeros((4, 3)), [0, 1, 2])
    x = np.zeros((4, 3))
    x[2, 1] = np.nan
    with pytest.raises(DataError, match=r"train.x has 1 NaN/Inf values \(first rows \[2\]\)"):
        from_arrays(x, [0, 1, 0, 1], name="train")
    with pytest.raises(DataError, match="label 5 but num_classes=3"):
        from_arrays(np.zeros((2, 3)), [0, 5], num_classes=3)
    with pytest.raises(DataError, match="negative label"):
        from_arrays(np.zeros((2, 3)), [0, -1])
    with pytest.raises(DataError, match="NaN/Inf targets"):
        from_arrays(np.zeros((2, 3)), [0.5, np.inf])


def test_npz_and_csv(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((3, 2)), y=np.array([0, 1, 1]))
    assert len(load_npz(tmp_path / "d.npz")) == 3
    with pytest.raises(DataError, match=r"keys \['features'\] not found; present keys"):
        load_npz(tmp_path / "d.npz", x_key="features")
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    d = load_csv(tmp_path / "d.csv", label_column="label")
    assert d.x.shape == (2, 2) and d.y.tolist() == [0, 1]
    (tmp_path / "bad.csv").write_text("a,b,label\n1,x,0\n")
    with pytest.raises(DataError, match=r"row 2, column 'b': 'x' is not a number"):
        load_csv(tmp_path / "bad.csv", label_column="label")
    with pytest.raises(DataError, match="label column 'y' not in header"):
        load_csv(tmp_path / "d.csv", label_column="y")


def test_from_torch_dataset():
    ds = torch.utils.data.TensorDataset(torch.randn(5, 2), torch.tensor([0, 1, 0, 1, 1]))
    d = from_dataset(ds, num_classes=2)
    assert isinstance(d, TensorData) and len(d) == 5


@pytest.mark.parametrize("content", [b"\x00\x01garbage" * 50, b"PK\x03\x04" + b"\xff" * 200])
def test_garbage_npz_is_a_data_error_not_numpys_pickle_message(tmp_path, content):
    from interlearn.data import load_npz

    p = tmp_path / "bad.npz"
    p.write_bytes(content)
    with pytest.raises(DataError, match=r"bad.npz: (not a .npz file|the arrays cannot be read).*numpy.savez") as info:
        load_npz(p)
    assert "pickled" not in str(info.value)


def test_npz_of_python_objects_says_so(tmp_path):
    from interlearn.data import load_npz

    p = tmp_path / "obj.npz"
    np.savez(p, x=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="Python objects rather than numeric arrays"):
        load_npz(p)
