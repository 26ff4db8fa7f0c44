import pytest
import torch

from interlearn.errors import ConfigError, DataError
from interlearn.federated.partition import dirichlet, iid, natural, partition, partition_stats, quantity_skew, shards
from interlearn.federated.plots import plot_partition

Y = torch.arange(1000) % 10


def _is_partition(parts, n):
    allidx = torch.cat(parts)
    assert len(allidx) == n and torch.equal(allidx.sort().values, torch.arange(n))


def test_iid():
    parts = iid(1000, 30, seed=1)
    _is_partition(parts, 1000)
    assert {len(p) for p in parts} <= {33, 34}
    assert all(torch.equal(a, b) for a, b in zip(parts, iid(1000, 30, seed=1)))
    assert not all(torch.equal(a, b) for a, b in zip(parts, iid(1000, 30, seed=2)))


def test_shards_pathological():
    parts = shards(Y, 50, shards_per_client=2, seed=0)
    _is_partition(parts, 1000)
    stats = partition_stats(Y, parts)
    assert stats["size_min"] == stats["size_max"] == 20
    assert stats["classes_per_client_max"] <= 2


@pytest.mark.parametrize("alpha, few", [(0.05, True), (1000.0, False)])
def test_dirichlet_skew_follows_alpha(alpha, few):
    parts = dirichlet(Y, 10, alpha=alpha, seed=0)
    _is_partition(parts, 1000)
    cpc = partition_stats(Y, parts)["classes_per_client_mean"]
    assert (cpc < 5) if few else (cpc == 10)
    assert all(torch.equal(a, b) for a, b in zip(parts, dirichlet(Y, 10, alpha=alpha, seed=0)))


def test_quantity_skew():
    parts = quantity_skew(1000, 20, alpha=0.3, seed=0, min_size=5)
    _is_partition(parts, 1000)
    sizes = [len(p) for p in parts]
    assert min(sizes) >= 5 and max(sizes) > 3 * (1000 / 20)


def test_natural():
    parts = natural(["a", "b", "a", "c", "b", "a"])
    assert [p.tolist() for p in parts] == [[0, 2, 5], [1, 4], [3]]
    assert len(natural(torch.tensor([0, 0, 1]), min_size=2)) == 1
    with pytest.raises(DataError):
        natural(["a"], min_size=2)


def test_registry_and_errors(tmp_path):
    assert len(partition("dirichlet", Y, 5, alpha=0.5)) == 5
    with pytest.raises(ConfigError, match="shards"):
        partition("shard", Y, 5)
    with pytest.raises(ConfigError, match="alpha"):
        dirichlet(Y, 5, alpha=0)
    with pytest.raises(DataError):
        iid(3, 5)
    with pytest.raises(DataError, match="1-D integer"):
        shards(torch.rand(10), 2)
    stats = partition_stats(Y, shards(Y, 20, seed=0))
    assert stats["counts"].shape == (20, 10) and int(stats["counts"].sum()) == 1000
    png = plot_partition(stats["counts"], tmp_path / "heat.png")
    assert png.stat().st_size > 0
