"""Multi-task models: hard parameter sharing (a trunk + a head per task) and MMoE soft sharing
(cross-stitch networks are in :mod:`interlearn.multitask.cross_stitch`).

Hard sharing (Caruana 1997): one trunk computes a shared representation, a ``ModuleDict`` of heads
maps it to each task's output. MMoE (Ma et al. 2018, "Modeling Task Relationships in Multi-task
Learning with Multi-gate Mixture-of-Experts"): several expert trunks; each task mixes the experts'
outputs with its own softmax gate over the input, then applies its head.

Both expose the split that gradient-combination methods need: ``shared(x)`` (the last shared
representation), ``task_outputs(features, x)``, ``shared_parameters()`` and
``task_parameters(name)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast

import torch
from torch import nn

from interlearn.errors import ConfigError, closest
from interlearn.tasks import Task

__all__ = ["MultiTaskModel", "MMoE", "lenet_stages", "lenet_trunk", "mlp_stages", "mlp_trunk", "heads_for"]


class MultiTaskModel(nn.Module):
    """A shared trunk plus one head per task; ``forward`` returns ``{task: output}``.

    Args:
        trunk: any module mapping inputs to a shared representation.
        heads: ``{task_name: head}``.

    Example:
        >>> m = MultiTaskModel(nn.Linear(4, 8), {"a": nn.Linear(8, 3), "b": nn.Linear(8, 1)})
        >>> {k: tuple(v.shape) for k, v in m(torch.zeros(2, 4)).items()}
        {'a': (2, 3), 'b': (2, 1)}
    """

    def __init__(self, trunk: nn.Module, heads: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not heads:
            raise ConfigError("a multi-task model needs at least one head")
        self.trunk = trunk
        self.heads = nn.ModuleDict(dict(heads))

    @property
    def task_names(self) -> list[str]:
        return list(self.heads.keys())

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """The last shared representation of ``x``."""
        return self.trunk(x)

    def task_outputs(self, features: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each head applied to the shared ``features`` (``x`` is unused by hard sharing)."""
        return {name: head(features) for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.task_outputs(self.shared(x), x)

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters used by every task."""
        return [p for p in self.trunk.parameters() if p.requires_grad]

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        """Trainable parameters of task ``name`` only."""
        if name not in self.heads:
            raise ConfigError(f"unknown task {name!r}; heads: {closest(name, self.task_names)}")
        return [p for p in self.heads[name].parameters() if p.requires_grad]

    def last_shared_parameter(self) -> nn.Parameter:
        """The last trainable shared weight matrix (GradNorm measures gradient norms there)."""
        mats = [p for p in self.shared_parameters() if p.dim() >= 2]
        if not mats:
            raise ConfigError("the trunk has no trainable weight matrix; GradNorm needs one")
        return mats[-1]


class MMoE(MultiTaskModel):
    """Multi-gate mixture of experts: ``num_experts`` trunks, one softmax gate per task.

    Args:
        make_expert: builds one expert trunk (called ``num_experts`` times).
        heads: ``{task_name: head}`` applied to each task's mixture of expert outputs.
        num_experts: number of experts.
        gate_input: size of the flattened input the gates see.
    """

    def __init__(
        self, make_expert: Callable[[], nn.Module], heads: Mapping[str, nn.Module], num_experts: int, gate_input: int
    ) -> None:
        if num_experts < 1:
            raise ConfigError(f"num_experts={num_experts}: must be >= 1")
        super().__init__(nn.ModuleList([make_expert() for _ in range(num_experts)]), heads)
        self.gates = nn.ModuleDict({name: nn.Linear(gate_input, num_experts) for name in heads})

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        experts = cast(nn.ModuleList, self.trunk)  # MMoE's trunk is its ModuleList of experts
        return torch.stack([expert(x) for expert in experts], dim=1)  # (batch, experts, features)

    def task_outputs(self, features: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = x.reshape(x.shape[0], -1)
        out = {}
        for name, head in self.heads.items():
            gate = torch.softmax(self.gates[name](flat), dim=-1)  # (batch, experts)
            out[name] = head(torch.einsum("be,bef->bf", gate, features))
        return out

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        return super().task_parameters(name) + [p for p in self.gates[name].parameters() if p.requires_grad]


def lenet_stages(in_size: int = 28, out_features: int = 50, dropout: float = 0.0) -> list[nn.Module]:
    """The LeNet of Sener & Koltun (2018) for MultiMNIST as three stages (conv-pool, conv-pool,
    fc), the points where a cross-stitch network mixes its columns.

    ``dropout``: channel dropout after the second convolution (their code uses 0.5).
    """
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout={dropout}: must be in [0, 1)")
    side = ((in_size - 4) // 2 - 4) // 2
    if side < 1:
        raise ConfigError(f"in_size={in_size}: LeNet needs images of at least 12x12")
    drop: list[nn.Module] = [nn.Dropout2d(dropout)] if dropout > 0 else []
    return [
        nn.Sequential(nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU()),
        nn.Sequential(nn.Conv2d(10, 20, 5), *drop, nn.MaxPool2d(2), nn.ReLU()),
        nn.Sequential(nn.Flatten(), nn.Linear(20 * side * side, out_features), nn.ReLU()),
    ]


def lenet_trunk(in_size: int = 28, out_features: int = 50, dropout: float = 0.0) -> nn.Sequential:
    """The LeNet trunk of Sener & Koltun (2018) for MultiMNIST: 2 conv + max-pool layers, fc 50
    (the layers of :func:`lenet_stages` in one ``Sequential``).

    ``dropout``: channel dropout after the second convolution (their code uses 0.5).
    """
    return nn.Sequential(
        *[layer for stage in lenet_stages(in_size, out_features, dropout) for layer in stage.children()]
    )


def mlp_stages(in_features: int, hidden: int = 64, out_features: int = 32) -> list[nn.Module]:
    """A two-layer MLP (flattens its input) as two stages, for a cross-stitch network."""
    return [
        nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU()),
        nn.Sequential(nn.Linear(hidden, out_features), nn.ReLU()),
    ]


def mlp_trunk(in_features: int, hidden: int = 64, out_features: int = 32) -> nn.Sequential:
    """A two-layer MLP trunk (flattens its input; the layers of :func:`mlp_stages`)."""
    return nn.Sequential(
        *[layer for stage in mlp_stages(in_features, hidden, out_features) for layer in stage.children()]
    )


def heads_for(
    tasks: Iterable[Task], in_features: int, hidden: int | None = None, dropout: float = 0.0
) -> dict[str, nn.Module]:
    """One head per task: ``Linear`` (or ``Linear-ReLU-[Dropout]-Linear`` with ``hidden``) to its outputs."""
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout={dropout}: must be in [0, 1)")
    heads: dict[str, nn.Module] = {}
    for t in tasks:
        if hidden:
            drop: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
            heads[t.name] = nn.Sequential(
                nn.Linear(in_features, hidden), nn.ReLU(), *drop, nn.Linear(hidden, t.num_outputs)
            )
        else:
            heads[t.name] = nn.Linear(in_features, t.num_outputs)
    return heads
