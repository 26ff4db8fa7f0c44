import pytest
import torch

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError, ShapeError
from interlearn.multitask import TaskSet, mix_sources, pack_targets
from interlearn.tasks import classification


def test_pack_and_split_roundtrip(mixed_tasks, mixed_data):
    parts = mixed_tasks.split(mixed_data.y)
    assert mixed_data.y.shape == (48, 1 + 2 + 4)
    assert parts["cls"][0].dtype == torch.long and parts["cls"][1].all()
    assert parts["reg"][0].shape == (48, 2) and parts["ml"][0].shape == (48, 4)


def test_masks_make_rows_unlabelled(mixed_tasks):
    mask = torch.tensor([True, False, True])
    y = pack_targets({"cls": torch.tensor([0, 1, 2]), "reg": torch.zeros(3, 2)}, mixed_tasks, masks={"cls": mask})
    parts = mixed_tasks.split(y)
    assert parts["cls"][1].tolist() == [True, False, True]
    assert parts["reg"][1].all() and not parts["ml"][1].any()


def test_missing_task_loss_is_zero_and_finite(mixed_tasks, mixed_model):
    y = pack_targets({"cls": torch.tensor([0, 1])}, mixed_tasks)
    out = mixed_model(torch.randn(2, 6))
    losses, present = mixed_tasks.losses(out, y)
    assert present == ["cls"]
    assert losses["reg"].item() == 0.0 and losses["ml"].item() == 0.0
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in mixed_model.parameters() if p.grad is not None)
    assert float(mixed_model.heads["reg"].weight.grad.abs().sum()) == 0.0


def test_masked_loss_ignores_unlabelled_rows(mixed_tasks, mixed_model):
    x = torch.randn(4, 6)
    cls = torch.tensor([0, 1, 2, 1])
    full = pack_targets({"cls": cls}, mixed_tasks)
    half = pack_targets({"cls": cls}, mixed_tasks, masks={"cls": torch.tensor([True, True, False, False])})
    out = mixed_model(x)
    expected = mixed_tasks["cls"].loss(out["cls"][:2], cls[:2])
    assert torch.allclose(mixed_tasks.losses(out, half)[0]["cls"], expected)
    assert not torch.allclose(mixed_tasks.losses(out, full)[0]["cls"], expected)


def test_errors_name_the_problem(mixed_tasks):
    with pytest.raises(DataError, match="unknown tasks"):
        pack_targets({"nope": torch.zeros(3)}, mixed_tasks)
    with pytest.raises(DataError, match="labels must be in"):
        pack_targets({"cls": torch.tensor([0, 5])}, mixed_tasks)
    with pytest.raises(ShapeError, match="columns"):
        pack_targets({"reg": torch.zeros(3, 3)}, mixed_tasks)
    with pytest.raises(ConfigError, match="unique"):
        TaskSet((classification(2, "a"), classification(3, "a")))
    with pytest.raises(ShapeError, match="pack_targets"):
        mixed_tasks.split(torch.zeros(3, 2))


def test_mix_sources_schedules():
    tasks = TaskSet((classification(2, "a"), classification(3, "b")))
    a = TensorData(torch.randn(90, 4), torch.randint(0, 2, (90,)))
    b = TensorData(torch.randn(10, 4), torch.randint(0, 3, (10,)))
    counts = {}
    for schedule in ("proportional", "uniform", "temperature"):
        mixed = mix_sources([(a, "a"), (b, "b")], tasks, schedule=schedule, size=100, seed=0)
        masks = tasks.split(mixed.y)
        assert not (masks["a"][1] & masks["b"][1]).any()  # each row labelled for one task
        counts[schedule] = int(masks["b"][1].sum())
    assert counts == {"proportional": 10, "uniform": 50, "temperature": 25}
    with pytest.raises(ConfigError, match="schedule"):
        mix_sources([(a, "a")], tasks, schedule="random")  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="input shapes"):
        mix_sources([(a, "a"), (TensorData(torch.randn(5, 3), torch.zeros(5).long()), "b")], tasks)
