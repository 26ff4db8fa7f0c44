import pytest
import torch

from interlearn.data import load_digits
from interlearn.federated.tour import tour_rows


@pytest.mark.slow
def test_tour_rows(tmp_path):
    torch.manual_seed(0)
    tr, te = load_digits()
    rows = tour_rows((tr.x, tr.y), (te.x, te.y), tmp_path, seed=0)
    assert set(rows) == {"federated", "local_only", "centralized"}
    for row in rows.values():
        assert {"accuracy", "trainable_params", "train_seconds", "bytes_communicated"} <= row.keys()
    fed, local, central = rows["federated"], rows["local_only"], rows["centralized"]
    # collaboration beats training alone on skewed data; pooling everything is the upper bound
    assert fed["accuracy"] > local["accuracy"] + 0.2
    assert central["accuracy"] > 0.9 and fed["accuracy"] > 0.8
    assert fed["bytes_communicated"] > 0 and local["bytes_communicated"] == 0
    assert (tmp_path / "partition.png").exists() and (tmp_path / "metrics.jsonl").exists()
