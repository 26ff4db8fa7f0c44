"""Tiny multi-task fixtures: a 3-task MLP problem and a 2-task toy with conflicting gradients."""

import pytest
import torch
from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.multitask import MultiTaskModel, TaskSet, pack_targets
from interlearn.tasks import classification, multilabel, regression


@pytest.fixture
def mixed_tasks() -> TaskSet:
    return TaskSet((classification(3, "cls"), regression(2, "reg"), multilabel(4, "ml")))


@pytest.fixture
def mixed_data(mixed_tasks: TaskSet) -> TensorData:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(48, 6, generator=g)
    targets = {
        "cls": (x[:, 0] > 0).long() + (x[:, 1] > 1).long(),
        "reg": torch.stack([x[:, 2], x[:, 3] - x[:, 4]], 1),
        "ml": (x[:, :4] > 0).float(),
    }
    return TensorData(x, pack_targets(targets, mixed_tasks))


@pytest.fixture
def mixed_model(mixed_tasks: TaskSet) -> MultiTaskModel:
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh())
    return MultiTaskModel(trunk, {t.name: nn.Linear(8, t.num_outputs) for t in mixed_tasks.tasks})
