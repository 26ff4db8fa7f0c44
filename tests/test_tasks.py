import pytest
import torch

from interlearn.errors import ConfigError, DataError
from interlearn.tasks import Task, classification, multilabel, regression


def test_classification_loss_and_metrics():
    t = classification(3)
    out = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0]])
    y = torch.tensor([0, 1, 2])
    m = t.metric_sums(out, y)
    assert m["accuracy"] == 2 and m["n"] == 3
    assert t.loss(out, y).item() == pytest.approx(torch.nn.functional.cross_entropy(out, y).item())


def test_regression_and_multilabel():
    r = regression(2)
    m = r.metric_sums(torch.zeros(4, 2), torch.ones(4, 2))
    assert m["mse"] == pytest.approx(4.0) and m["mae"] == pytest.approx(4.0)
    ml = multilabel(2)
    assert ml.metric_sums(torch.tensor([[3.0, -3.0]]), torch.tensor([[1.0, 1.0]]))["accuracy"] == pytest.approx(0.5)
    assert not r.higher_is_better and r.main_metric == "mse"


def test_bad_task_and_targets():
    with pytest.raises(ConfigError, match="kind='ranking'"):
        Task(kind="ranking")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="num_outputs=0"):
        classification(0)
    with pytest.raises(DataError, match=r"train.y: labels must be in \[0, 2\].*found range \[0, 7\]"):
        classification(3).check_targets(torch.tensor([0, 7]), "train.y")
    with pytest.raises(DataError, match="must be integers"):
        classification(3).check_targets(torch.tensor([0.0, 1.0]))
    with pytest.raises(DataError, match="non-finite"):
        regression().check_targets(torch.tensor([0.0, float("nan")]))
