"""The 2-task toy with conflicting gradients shared by the multi-task tests."""

import torch
from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.multitask import MultiTaskModel, TaskSet, pack_targets
from interlearn.tasks import regression


class Point(nn.Module):
    """A shared point theta in R^2, repeated for every row of the batch."""

    def __init__(self, start: tuple[float, float]) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([list(start)]))  # (1, 2): a weight matrix for GradNorm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.theta.expand(x.shape[0], 2)


TOY_A, TOY_B = (1.0, 0.0), (-1.0, 0.0)


def toy_problem(start: tuple[float, float] = (0.5, 2.0)) -> tuple[MultiTaskModel, TensorData, TaskSet]:
    """Two regression tasks pulling theta to a=(1,0) and b=(-1,0); Pareto set = segment [a, b].

    The targets are spread around a and b (mean a, b) so that no loss can reach zero: uncertainty
    weighting's optimum log-variance log(L) then stays finite.
    """
    tasks = TaskSet((regression(2, "a"), regression(2, "b")))
    spread = torch.tensor([[0.3, 0.3], [-0.3, -0.3], [0.3, -0.3], [-0.3, 0.3]])
    n = len(spread)
    y = pack_targets({"a": torch.tensor([TOY_A]) + spread, "b": torch.tensor([TOY_B]) + spread}, tasks)
    model = MultiTaskModel(Point(start), {"a": nn.Identity(), "b": nn.Identity()})
    return model, TensorData(torch.zeros(n, 1), y), tasks
