"""Synthetic(α, β): a population of any size whose clients' data is generated on demand.

Li et al. 2020, "Federated Optimization in Heterogeneous Networks" (FedProx), §5.1: client ``k``
has its own softmax model and its own input distribution,

* ``u_k ~ N(0, α)``, ``W_k ~ N(u_k, 1)`` (classes × features), ``b_k ~ N(u_k, 1)``;
* ``B_k ~ N(0, β)``, ``v_k ~ N(B_k, 1)`` (features);
* ``x ~ N(v_k, Σ)`` with ``Σ`` diagonal, ``Σ_jj = j^-1.2``;
* ``y = argmax softmax(W_k x + b_k)``;

with 60 features and 10 classes. α controls how much the clients' models differ, β how much
their inputs do. As in the authors' generator (``np.random.normal(0, alpha)``), α and β are
standard deviations. Client sizes follow the paper's lognormal, ``min_size + ⌊LogNormal(μ, σ)⌋``
(μ = 4, σ = 2, min 50 there), capped at ``max_size``: the paper's 30 users need no cap, but over
a million clients that tail reaches 10⁶ examples.

Nothing is stored per client. Client ``k``'s examples are drawn from a generator seeded with
``(seed, k)`` when :meth:`SyntheticPopulation.client` is called, and its size from a hash of
``(seed, k)``. So a client's data depends only on ``(seed, k)``: the same in every process
(multicore workers, Ray tasks), in every round, and whatever the population's size (a population
of 10⁴ is the first 10⁴ clients of one of 10⁶). Memory is the sizes vector (8 bytes a client)
plus the clients of the current cohort.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData
from interlearn.federated.server.sampling import mix_seed
from interlearn.types import ClientId

__all__ = ["SyntheticPopulation"]

_DATA, _SIZE = 7, 8  # purposes mixed into the seed: a client's examples, the sizes' hash
_U64 = np.uint64


def _uniform(seed: int, ids: np.ndarray) -> np.ndarray:
    """A uniform in (0, 1) per id: splitmix64 of ``seed + id`` (numpy's uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = ids.astype(_U64) + _U64(seed) + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        z = z ^ (z >> _U64(31))
    return ((z >> _U64(11)).astype(np.float64) + 0.5) * 2.0**-53


class SyntheticPopulation:
    """``num_clients`` Synthetic(α, β) clients (see the module docstring), generated lazily.

    A :class:`~interlearn.federated.api.ClientPopulation`: ``simulate`` and every engine take
    it where they take a :class:`~interlearn.federated.population.Population`.

    Args:
        num_clients: clients in the population (ids ``0..num_clients-1``).
        alpha: std of ``u_k``, the spread of the clients' models (FedProx's α).
        beta: std of ``B_k``, the spread of the clients' inputs (FedProx's β).
        seed: the population's seed; client ``k``'s data depends only on ``(seed, k)``.
        features: input dimension (60 in the paper).
        classes: number of classes (10 in the paper).
        size_mu: the mean of the client sizes' lognormal (4 in the paper).
        size_sigma: the std of the client sizes' lognormal (2 in the paper).
        min_size: examples every client has at least (50 in the paper).
        max_size: examples a client has at most (the lognormal's tail is cut there).

    Attributes:
        generated: how many times a client's data has been generated in this process (the
            memory contract: a round generates its cohort and nothing else).

    Raises:
        ConfigError: a non-positive count, a negative α/β/σ, or ``min_size > max_size``.

    Example:
        >>> pop = SyntheticPopulation(1_000_000, alpha=1.0, beta=1.0, seed=0)
        >>> len(pop), pop.client(123_456).x.shape[1]
        (1000000, 60)
    """

    def __init__(
        self,
        num_clients: int,
        alpha: float = 1.0,
        beta: float = 1.0,
        seed: int = 0,
        features: int = 60,
        classes: int = 10,
        size_mu: float = 4.0,
        size_sigma: float = 2.0,
        min_size: int = 50,
        max_size: int = 2000,
    ) -> None:
        for name, value in (("num_clients", num_clients), ("features", features), ("min_size", min_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r}: must be an integer >= 1")
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
            raise ConfigError(f"classes={classes!r}: must be an integer >= 2")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < min_size:
            raise ConfigError(f"max_size={max_size!r}: must be an integer >= min_size={min_size}")
        for name, fvalue in (("alpha", alpha), ("beta", beta), ("size_sigma", size_sigma)):
            if not (math.isfinite(fvalue) and fvalue >= 0):
                raise ConfigError(f"{name}={fvalue!r}: must be a finite number >= 0")
        if not math.isfinite(size_mu):
            raise ConfigError(f"size_mu={size_mu!r}: must be a finite number")
        self.num_clients = num_clients
        self.alpha, self.beta, self.seed = float(alpha), float(beta), int(seed)
        self.features, self.classes = features, classes
        self.size_mu, self.size_sigma = float(size_mu), float(size_sigma)
        self.min_size, self.max_size = min_size, max_size
        self.generated = 0
        self._sizes = self._sizes_of(np.arange(num_clients, dtype=np.int64))
        # Σ_jj = j^-1.2, j = 1..features: the std of feature j is j^-0.6
        self._x_std = torch.arange(1, features + 1, dtype=torch.float64).pow(-0.6).to(torch.float32)

    def _sizes_of(self, ids: np.ndarray) -> torch.Tensor:
        z = torch.special.ndtri(torch.from_numpy(_uniform(mix_seed(self.seed, _SIZE), ids)))
        n = self.min_size + torch.floor(torch.exp(self.size_mu + self.size_sigma * z))
        return n.clamp(max=self.max_size).to(torch.long)

    def __len__(self) -> int:
        return self.num_clients

    @property
    def sizes(self) -> torch.Tensor:
        """Examples per client, (clients,) int64 (computed once from the hash, no data)."""
        return self._sizes

    def client(self, cid: ClientId) -> ClientData:
        """Generate client ``cid``'s examples: x (size, features) float32, y (size,) int64.

        Raises:
            ConfigError: ``cid`` out of range.
        """
        if isinstance(cid, bool) or not 0 <= int(cid) < self.num_clients:
            raise ConfigError(
                f"client id {cid!r} out of range: the population has {self.num_clients} clients "
                f"(0..{self.num_clients - 1})"
            )
        cid = int(cid)
        g = torch.Generator().manual_seed(mix_seed(self.seed, cid, _DATA))
        d, c, n = self.features, self.classes, int(self._sizes[cid])
        u = torch.randn((), generator=g) * self.alpha
        w = u + torch.randn(c, d, generator=g)  # (classes, features)
        b = u + torch.randn(c, generator=g)
        v = torch.randn((), generator=g) * self.beta + torch.randn(d, generator=g)
        x = v + torch.randn(n, d, generator=g) * self._x_std  # (n, features)
        y = torch.argmax(x @ w.T + b, dim=1)  # softmax is monotone: its argmax is the logits'
        self.generated += 1
        return ClientData(cid, x, y)

    def __repr__(self) -> str:
        return (
            f"SyntheticPopulation(clients={self.num_clients}, alpha={self.alpha:g}, beta={self.beta:g}, "
            f"seed={self.seed}, examples={int(self._sizes.sum())})"
        )
