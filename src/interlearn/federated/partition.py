"""Partitioners: how a centralized dataset is split into simulated clients.

* ``iid`` — a uniform random split into (nearly) equal parts.
* ``dirichlet`` — label skew: for every class, its examples are divided among clients with
  proportions drawn from ``Dir(alpha)`` (Hsu, Qi & Brown 2019, "Measuring the Effects of
  Non-Identical Data Distribution for Federated Visual Classification"); small ``alpha`` =
  few classes per client.
* ``shards`` — McMahan et al. 2017's pathological non-IID split: sort by label, cut into
  ``num_clients * shards_per_client`` shards, give each client ``shards_per_client`` shards
  (2 shards of 300 MNIST digits per client: at most 2 classes each).
* ``natural`` — one client per natural group id (writer in FEMNIST, speaker in Shakespeare;
  Caldas et al. 2018, "LEAF: A Benchmark for Federated Settings").
* ``quantity`` — quantity skew: IID labels, client sizes proportional to ``Dir(alpha)`` draws
  (Li, Diao, Chen & He 2022, "Federated Learning on Non-IID Data Silos: An Experimental Study").

Every partitioner returns one index tensor per client, seeded; :func:`partition_stats`
summarizes a partition (and :func:`interlearn.federated.plots.plot_partition` draws it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from interlearn.errors import ConfigError, DataError
from interlearn.registry import Registry

__all__ = ["iid", "dirichlet", "shards", "natural", "quantity_skew", "PARTITIONERS", "partition", "partition_stats"]


def _check(n: int, num_clients: int) -> None:
    if num_clients < 1:
        raise ConfigError(f"num_clients={num_clients}: must be >= 1")
    if n < num_clients:
        raise DataError(f"{n} examples cannot give each of {num_clients} clients at least one; use fewer clients")


def _labels(labels: torch.Tensor) -> torch.Tensor:
    y = torch.as_tensor(labels)
    if y.dim() != 1 or y.dtype.is_floating_point:
        raise DataError(
            f"labels must be a 1-D integer tensor (one class per example), got shape {tuple(y.shape)} dtype {y.dtype}"
        )
    return y.long()


def iid(n: int, num_clients: int, seed: int = 0) -> list[torch.Tensor]:
    """Uniform random split of ``range(n)`` into ``num_clients`` parts of size n//k or n//k+1."""
    _check(n, num_clients)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [p.clone() for p in torch.tensor_split(perm, num_clients)]


def dirichlet(
    labels: torch.Tensor, num_clients: int, alpha: float = 0.5, seed: int = 0, min_size: int = 1, max_tries: int = 100
) -> list[torch.Tensor]:
    """Label skew with ``Dir(alpha)`` class proportions per client (see module docstring).

    Redraws (up to ``max_tries``) until every client has at least ``min_size`` examples.

    Raises:
        ConfigError: ``alpha <= 0``.
        DataError: no draw satisfied ``min_size`` (raise ``alpha`` or lower ``min_size``).
    """
    y = _labels(labels)
    _check(len(y), num_clients)
    if not alpha > 0:
        raise ConfigError(f"alpha={alpha}: must be > 0 (0.1 = strong skew, 100 = nearly IID)")
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    for _ in range(max_tries):
        parts: list[list[torch.Tensor]] = [[] for _ in range(num_clients)]
        for c in classes.tolist():
            idx = (y == c).nonzero().flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            # Dirichlet via normalized Gamma draws, using our generator (torch's sampler has none)
            w = _gamma_sample(float(alpha), num_clients, g)
            props = w / w.sum()
            cuts = (props.cumsum(0) * len(idx)).round().long().tolist()[:-1]
            for k, chunk in enumerate(torch.tensor_split(idx, cuts)):
                parts[k].append(chunk)
        out = [torch.cat(p) if p else torch.zeros(0, dtype=torch.long) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return [p[torch.randperm(len(p), generator=g)] for p in out]
    raise DataError(
        f"dirichlet(alpha={alpha}) left a client with fewer than {min_size} examples after {max_tries} draws; raise alpha, lower min_size or use fewer clients"
    )


def _gamma_sample(alpha: float, k: int, g: torch.Generator) -> torch.Tensor:
    """``k`` Gamma(alpha, 1) draws from generator ``g`` (Marsaglia & Tsang 2000; alpha < 1 by
    the boost ``G(a) = G(a+1) * U^(1/a)``). Written here because torch's Gamma sampler takes no
    generator, and partitions must be reproducible from their seed alone."""
    boost = alpha < 1.0
    a = alpha + 1.0 if boost else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / (9.0 * d) ** 0.5
    out = torch.empty(k, dtype=torch.float64)
    for i in range(k):
        while True:
            x = float(torch.randn((), generator=g, dtype=torch.float64))
            v = (1.0 + c * x) ** 3
            if v <= 0:
                continue
            u = float(torch.rand((), generator=g, dtype=torch.float64))
            if u < 1 - 0.0331 * x**4 or (u > 0 and math.log(u) < 0.5 * x * x + d * (1 - v + math.log(v))):
                out[i] = d * v
                break
        if boost:
            out[i] = out[i] * float(torch.rand((), generator=g, dtype=torch.float64).clamp_min(1e-300)) ** (1.0 / alpha)
    return out.clamp_min(1e-300)


def shards(labels: torch.Tensor, num_clients: int, shards_per_client: int = 2, seed: int = 0) -> list[torch.Tensor]:
    """McMahan et al. 2017's pathological non-IID split (see module docstring).

    Raises:
        ConfigError: ``shards_per_client < 1``.
        DataError: fewer examples than shards.
    """
    y = _labels(labels)
    _check(len(y), num_clients)
    if shards_per_client < 1:
        raise ConfigError(f"shards_per_client={shards_per_client}: must be >= 1")
    total = num_clients * shards_per_client
    if total > len(y):
        raise DataError(f"{num_clients} clients x {shards_per_client} shards = {total} shards > {len(y)} examples")
    g = torch.Generator().manual_seed(seed)
    # stable sort by label, ties in a seeded random order
    order = torch.randperm(len(y), generator=g)
    order = order[torch.sort(y[order], stable=True).indices]
    pieces = torch.tensor_split(order, total)
    assign = torch.randperm(total, generator=g).reshape(num_clients, shards_per_client)
    return [torch.cat([pieces[s] for s in row.tolist()]) for row in assign]


def natural(groups: Sequence[Any] | torch.Tensor, min_size: int = 1) -> list[torch.Tensor]:
    """One client per distinct group id (writer, speaker), in order of first appearance;
    groups with fewer than ``min_size`` examples are dropped.

    Raises:
        DataError: no group has ``min_size`` examples.
    """
    seen: dict[Any, list[int]] = {}
    keys = groups.tolist() if isinstance(groups, torch.Tensor) else list(groups)
    for i, gid in enumerate(keys):
        seen.setdefault(gid, []).append(i)
    out = [torch.tensor(v, dtype=torch.long) for v in seen.values() if len(v) >= min_size]
    if not out:
        raise DataError(f"no group has at least min_size={min_size} examples ({len(seen)} groups)")
    return out


def quantity_skew(n: int, num_clients: int, alpha: float = 1.0, seed: int = 0, min_size: int = 1) -> list[torch.Tensor]:
    """IID labels, client sizes from ``Dir(alpha)`` proportions (each client gets at least
    ``min_size``).

    Raises:
        ConfigError: ``alpha <= 0``.
        DataError: ``n < num_clients * min_size``.
    """
    _check(n, num_clients)
    if not alpha > 0:
        raise ConfigError(f"alpha={alpha}: must be > 0 (small = very unequal sizes)")
    if n < num_clients * min_size:
        raise DataError(f"{n} examples < {num_clients} clients x min_size {min_size}")
    g = torch.Generator().manual_seed(seed)
    w = _gamma_sample(float(alpha), num_clients, g)
    props = w / w.sum()
    extra = n - num_clients * min_size
    sizes = (props * extra).floor().long() + min_size
    sizes[: n - int(sizes.sum())] += 1  # hand out the rounding remainder
    perm = torch.randperm(n, generator=g)
    return [p.clone() for p in torch.split(perm, sizes.tolist())]


PARTITIONERS: Registry[Callable[..., list[torch.Tensor]]] = Registry("partitioner")
"""Partitioners by name: ``fn(labels, num_clients, **kwargs) -> index tensors``."""
PARTITIONERS.register_all(
    {
        "iid": lambda labels, num_clients, **kw: iid(len(labels), num_clients, **kw),
        "dirichlet": dirichlet,
        "shards": shards,
        "quantity": lambda labels, num_clients, **kw: quantity_skew(len(labels), num_clients, **kw),
    }
)


def partition(name: str, labels: torch.Tensor, num_clients: int, **kwargs: Any) -> list[torch.Tensor]:
    """Split by the partitioner registered as ``name`` (``iid``, ``dirichlet``, ``shards``,
    ``quantity``; ``natural`` needs group ids and is called directly).

    Raises:
        ConfigError: unknown name (lists the known ones) or a bad keyword.
    """
    parts: list[torch.Tensor] = PARTITIONERS.build(name, labels, num_clients, **kwargs)
    return parts


def partition_stats(
    labels: torch.Tensor, parts: Sequence[torch.Tensor], num_classes: int | None = None
) -> dict[str, Any]:
    """Summary of a partition.

    Returns:
        ``counts`` ((clients, classes) tensor of examples per label), ``sizes`` (list),
        ``size_mean``/``size_std``/``size_min``/``size_max``, ``classes_per_client_mean`` and
        ``classes_per_client_min``/``max`` (classes with at least one example).
    """
    y = _labels(labels)
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    counts = (
        torch.stack([torch.bincount(y[p], minlength=k)[:k] for p in parts])
        if parts
        else torch.zeros(0, k, dtype=torch.long)
    )
    sizes = counts.sum(1).float()
    present = (counts > 0).sum(1).float()
    return {
        "counts": counts,
        "sizes": sizes.long().tolist(),
        "clients": len(parts),
        "size_mean": float(sizes.mean()),
        "size_std": float(sizes.std(unbiased=False)),
        "size_min": int(sizes.min()),
        "size_max": int(sizes.max()),
        "classes_per_client_mean": float(present.mean()),
        "classes_per_client_min": int(present.min()),
        "classes_per_client_max": int(present.max()),
    }
