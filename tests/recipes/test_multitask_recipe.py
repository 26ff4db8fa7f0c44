import pytest
from torch import nn

from interlearn.errors import ConfigError
from interlearn.multitask import CrossStitch, MMoE, MultiTaskModel, TaskSet
from interlearn.multitask.data import DIGITS_TASKS, MULTIMNIST_TASKS
from interlearn.recipes.multitask import Config, DataConfig, build_model


@pytest.mark.parametrize("arch,cls", [("hard", MultiTaskModel), ("mmoe", MMoE), ("cross_stitch", CrossStitch)])
@pytest.mark.parametrize("dataset,tasks", [("digits", DIGITS_TASKS), ("multimnist", MULTIMNIST_TASKS)])
def test_build_model_per_architecture(arch, cls, dataset, tasks):
    model = build_model(Config(data=DataConfig(dataset=dataset), architecture=arch, num_experts=2), tasks)
    assert type(model) is cls and model.task_names == tasks.names


def test_cross_stitch_with_one_task_is_a_plain_model():
    one = TaskSet((DIGITS_TASKS["digit"],))
    model = build_model(Config(architecture="cross_stitch"), one)
    assert type(model) is MultiTaskModel and isinstance(model.trunk, nn.Sequential)


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ConfigError, match="architecture='cross-stitch'.*cross_stitch"):
        Config(architecture="cross-stitch")
