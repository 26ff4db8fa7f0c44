"""Cross-stitch networks (Misra et al. 2016, "Cross-stitch Networks for Multi-task Learning").

One column per task, each a copy of the same stack of stages (e.g. :func:`lenet_stages`). After
every stage a cross-stitch unit, a learned ``T x T`` matrix ``alpha``, mixes the columns:
``x_t <- sum_s alpha[t, s] x_s``. With ``alpha`` the identity the columns are independent models;
training learns how much each task borrows from the others. Column ``t`` then feeds task ``t``'s
head.

Soft sharing keeps one column per task, so the model has about as many weights as T independent
models (plus ``T^2`` per stage); what is shared is learned, not imposed. Every column and stitch
receives gradient from every task, so all of them count as shared parameters for the gradient
combination methods; ``shared(x)`` returns the stacked column outputs ``(batch, T, features)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import cast

import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.multitask.model import MultiTaskModel

__all__ = ["CrossStitch", "stitch_init"]


def stitch_init(tasks: int, self_weight: float = 0.9) -> torch.Tensor:
    """The initial ``alpha``: ``self_weight`` on the diagonal, the rest shared equally (Misra et
    al. start from 0.9 / 0.1 for two tasks); the identity for one task."""
    if not 0.0 <= self_weight <= 1.0:
        raise ConfigError(f"self_weight={self_weight}: must be in [0, 1]")
    if tasks == 1:
        return torch.ones(1, 1)
    alpha = torch.full((tasks, tasks), (1.0 - self_weight) / (tasks - 1))
    return alpha.fill_diagonal_(self_weight)


class _StitchedColumns(nn.Module):
    """T columns of stages with a cross-stitch unit after each stage; returns ``(batch, T, ...)``."""

    def __init__(self, make_stages: Callable[[], Sequence[nn.Module]], tasks: int, self_weight: float) -> None:
        super().__init__()
        columns = [list(make_stages()) for _ in range(tasks)]
        depth = len(columns[0])
        if depth == 0:
            raise ConfigError("make_stages returned no stages; give a list like lenet_stages(28, 50)")
        if any(len(c) != depth for c in columns):
            raise ConfigError(
                f"make_stages returned {sorted({len(c) for c in columns})} stages on different calls; it must build the same stack each time"
            )
        self.columns = nn.ModuleList(nn.ModuleList(c) for c in columns)
        self.stitches = nn.ParameterList(nn.Parameter(stitch_init(tasks, self_weight)) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x] * len(self.columns)
        for depth, alpha in enumerate(self.stitches):
            stacked = torch.stack(
                [cast(nn.ModuleList, col)[depth](h) for col, h in zip(self.columns, outs, strict=True)]
            )  # (T, batch, ...)
            mixed = torch.einsum("ts,s...->t...", alpha, stacked)
            outs = list(mixed.unbind(0))
        return torch.stack(outs, dim=1)


class CrossStitch(MultiTaskModel):
    """A cross-stitch network: one column of ``make_stages()`` per task, stitched after every stage.

    Args:
        make_stages: builds one column's stages (called once per task), e.g.
            ``lambda: lenet_stages(28, 50)``.
        heads: ``{task_name: head}``; column ``i`` feeds the ``i``-th head.
        self_weight: initial diagonal of every stitch matrix (default 0.9, as in the paper).

    Example:
        >>> m = CrossStitch(lambda: [nn.Linear(4, 8), nn.Linear(8, 6)], {"a": nn.Linear(6, 3), "b": nn.Linear(6, 1)})
        >>> {k: tuple(v.shape) for k, v in m(torch.zeros(2, 4)).items()}
        {'a': (2, 3), 'b': (2, 1)}
    """

    def __init__(
        self, make_stages: Callable[[], Sequence[nn.Module]], heads: Mapping[str, nn.Module], self_weight: float = 0.9
    ) -> None:
        if not heads:
            raise ConfigError("a multi-task model needs at least one head")
        super().__init__(_StitchedColumns(make_stages, len(heads), self_weight), heads)

    def task_outputs(self, features: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(features[:, i]) for i, (name, head) in enumerate(self.heads.items())}

    @property
    def _columns(self) -> _StitchedColumns:
        return cast(_StitchedColumns, self.trunk)

    def stitch_matrices(self) -> list[torch.Tensor]:
        """The learned ``alpha`` of every stage (detached copies), first stage first."""
        return [a.detach().clone() for a in self._columns.stitches]

    def last_shared_parameter(self) -> nn.Parameter:
        """The last weight matrix of the last column (GradNorm's measuring point); every task's
        gradient reaches it through the final stitch."""
        mats = [p for p in self._columns.columns[-1].parameters() if p.requires_grad and p.dim() >= 2]
        if not mats:
            raise ConfigError("the columns have no trainable weight matrix; GradNorm needs one")
        return mats[-1]
