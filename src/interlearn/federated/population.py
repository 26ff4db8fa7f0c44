"""A federated population as index views over one dataset.

The population never copies data per client: it keeps the full ``(x, y)`` tensors plus, for
every client, a slice of one index array (``order[offsets[c]:offsets[c+1]]``). Only the
clients sampled in a round are materialized as :class:`ClientData`, so memory grows with the
cohort, not with the number of clients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData
from interlearn.types import ClientId

__all__ = ["Population"]


class Population:
    """Clients as index views over shared ``(x, y)`` tensors.

    Args:
        x: all inputs, (N, ...).
        y: all targets, (N, ...).
        parts: one index tensor (or list of ints) per client (e.g. from a partitioner).

    Raises:
        DataError: mismatched ``x``/``y``, no clients, a client without examples, or an index
            out of range.

    Example:
        >>> pop = Population(torch.randn(6, 2), torch.arange(6), [[0, 1, 2], [3, 4, 5]])
        >>> len(pop), len(pop.client(1))
        (2, 3)
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, parts: Sequence[torch.Tensor | Sequence[int]]) -> None:
        if x.shape[0] != y.shape[0]:
            raise DataError(f"x has {x.shape[0]} examples but y has {y.shape[0]}; they must match along dim 0")
        if len(parts) == 0:
            raise DataError("a population needs at least one client; the partition is empty")
        idx = [torch.as_tensor(p, dtype=torch.long).reshape(-1) for p in parts]
        sizes = torch.tensor([len(p) for p in idx], dtype=torch.long)
        empty = (sizes == 0).nonzero().reshape(-1).tolist()
        if empty:
            raise DataError(
                f"client(s) {empty[:10]}{' ...' if len(empty) > 10 else ''} have no examples ({len(empty)} of {len(idx)}); "
                "every client needs data to train: drop empty parts from the partition (or use fewer clients)"
            )
        order = torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long)
        if order.numel() and (int(order.min()) < 0 or int(order.max()) >= x.shape[0]):
            raise DataError(f"partition indexes example {int(order.max())} but the data has {x.shape[0]} examples")
        self.x = x
        self.y = y
        self.order = order
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def sizes(self) -> torch.Tensor:
        """Examples per client, (clients,)."""
        return self.offsets[1:] - self.offsets[:-1]

    def indices(self, cid: ClientId) -> torch.Tensor:
        """The example indices of client ``cid`` (a view, no copy)."""
        if not 0 <= cid < len(self):
            raise ConfigError(
                f"client id {cid} out of range: the population has {len(self)} clients (0..{len(self) - 1})"
            )
        return self.order[int(self.offsets[cid]) : int(self.offsets[cid + 1])]

    def client(self, cid: ClientId) -> ClientData:
        """Materialize client ``cid``'s data (only its own examples are copied)."""
        idx = self.indices(cid)
        return ClientData(cid, self.x[idx], self.y[idx])

    def parts(self) -> list[torch.Tensor]:
        """Every client's indices (views)."""
        return [self.indices(c) for c in range(len(self))]

    @classmethod
    def from_clients(cls, clients: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Population:
        """Build a population from per-client ``(x, y)`` pairs (concatenated once)."""
        if not clients:
            raise DataError("from_clients needs at least one (x, y) pair")
        xs = torch.cat([c[0] for c in clients])
        ys = torch.cat([c[1] for c in clients])
        sizes = [int(c[0].shape[0]) for c in clients]
        starts = [0]
        for s in sizes[:-1]:
            starts.append(starts[-1] + s)
        return cls(xs, ys, [torch.arange(s, s + n) for s, n in zip(starts, sizes)])

    def __repr__(self) -> str:
        s = self.sizes.float()
        return f"Population(clients={len(self)}, examples={int(s.sum())}, mean_size={float(s.mean()):.1f})"
