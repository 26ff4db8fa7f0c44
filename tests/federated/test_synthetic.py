"""Synthetic(α, β): a lazily generated population, deterministic per client, that only ever
builds the clients a round samples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interlearn.errors import ConfigError
from interlearn.federated import LocalSGD, Population, SyntheticPopulation
from interlearn.federated.api import ClientPopulation
from interlearn.federated.engines import MultiCoreEngine, SequentialEngine, VectorizedEngine
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy


def test_a_client_depends_only_on_seed_and_id():
    small = SyntheticPopulation(1_000, seed=3)
    big = SyntheticPopulation(1_000_000, seed=3)
    for cid in (0, 17, 999):
        a, b, again = small.client(cid), big.client(cid), small.client(cid)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)  # the population's size does not matter
        assert torch.equal(a.x, again.x) and torch.equal(a.y, again.y)  # nor how often it is built
    assert torch.equal(small.sizes, big.sizes[:1_000])
    assert not torch.equal(small.client(5).x, SyntheticPopulation(1_000, seed=4).client(5).x)
    assert not torch.equal(small.client(5).x[:1], small.client(6).x[:1])


def test_sizes_shapes_and_labels():
    pop = SyntheticPopulation(20_000, seed=0, min_size=5, max_size=300)
    sizes = pop.sizes
    assert sizes.shape == (20_000,) and sizes.dtype == torch.long
    assert int(sizes.min()) >= 5 and int(sizes.max()) == 300  # the lognormal's tail is cut at max_size
    # min 5 + floor(LogNormal(4, 2)): its median is 5 + floor(e^4) = 59
    assert 50 <= float(sizes.float().median()) <= 70
    data = pop.client(123)
    assert data.client_id == 123 and len(data) == int(sizes[123])
    assert data.x.shape == (len(data), 60) and data.x.dtype == torch.float32
    assert data.y.dtype == torch.long and int(data.y.min()) >= 0 and int(data.y.max()) < 10


def test_the_input_covariance_is_the_papers():
    """Σ_jj = j^-1.2: the 1st feature's variance is 1, the 60th's 60^-1.2 ≈ 0.0074."""
    pop = SyntheticPopulation(10, seed=1, min_size=4000, max_size=4000)
    var = pop.client(0).x.var(dim=0)
    assert abs(float(var[0]) - 1.0) < 0.1
    assert abs(float(var[59]) - 60**-1.2) < 0.002


def test_it_is_a_client_population():
    assert isinstance(SyntheticPopulation(3), ClientPopulation)
    assert isinstance(Population(torch.randn(4, 2), torch.arange(4), [[0, 1], [2, 3]]), ClientPopulation)


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="num_clients=0"):
        SyntheticPopulation(0)
    with pytest.raises(ConfigError, match="max_size=3.*min_size=50"):
        SyntheticPopulation(10, max_size=3)
    with pytest.raises(ConfigError, match="alpha=-1"):
        SyntheticPopulation(10, alpha=-1.0)
    with pytest.raises(ConfigError, match="client id 10 out of range"):
        SyntheticPopulation(10).client(10)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(60, 16), nn.ReLU(), nn.Linear(16, 10))


CONFIG = SimulationConfig(rounds=3, clients_per_round=8, client_eval_max=8, seed=2, progress=False)
UPDATE = LocalSGD(epochs=1, batch_size=10, lr=0.05)


def test_a_round_builds_its_cohort_and_nothing_else():
    """The memory contract: a million clients, 8 a round, per-client evaluation of 8 clients at
    the end: 3 rounds generate 3 x 8 + 8 clients, not a million."""
    pop = SyntheticPopulation(1_000_000, seed=0, size_mu=2.0, size_sigma=1.0, min_size=5, max_size=50)
    res = simulate(_model(), pop, UPDATE, get_strategy("fedavg"), CONFIG, engine=SequentialEngine(warmup=False))
    assert [h["cohort"] for h in res.history] == [8, 8, 8]
    assert pop.generated == 3 * 8 + 8
    assert len(res.client_accuracy) == 8


@pytest.mark.parametrize(
    "engine",
    [
        pytest.param(lambda: VectorizedEngine(), id="vectorized"),
        pytest.param(lambda: MultiCoreEngine(workers=2), id="multicore"),
    ],
)
def test_engines_agree_on_a_lazy_population(engine):
    pop = SyntheticPopulation(100_000, seed=0, size_mu=2.0, size_sigma=1.0, min_size=5, max_size=50)
    ref = simulate(_model(), pop, UPDATE, get_strategy("fedavg"), CONFIG, engine="sequential")
    eng = engine()
    try:
        got = simulate(_model(), pop, UPDATE, get_strategy("fedavg"), CONFIG, engine=eng)
    finally:
        eng.stop()  # an engine passed in is left running by simulate
    assert max(float((ref.params[k] - got.params[k]).abs().max()) for k in ref.params) < 1e-5
    start = _model().state_dict()
    assert max(float((ref.params[k] - start[k]).abs().max()) for k in start) > 1e-3  # training moved it
