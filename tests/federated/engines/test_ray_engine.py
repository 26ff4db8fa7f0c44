"""The Ray engine against the sequential reference, on a local Ray with 2 CPUs.

One Ray session serves the whole module (start-up takes seconds on a small CI machine).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass

import pytest
import torch
from torch import nn

ray = pytest.importorskip("ray", reason="the ray engine needs the federated extra (ray)")

from interlearn.errors import ConfigError  # noqa: E402
from interlearn.federated.api import ClientData, ClientResult  # noqa: E402
from interlearn.federated.client import LocalSGD, ScaffoldClient  # noqa: E402
from interlearn.federated.engines import SequentialEngine, get_engine, run_cohort_on  # noqa: E402
from interlearn.federated.engines.ray_engine import RayEngine  # noqa: E402
from interlearn.federated.population import Population  # noqa: E402
from interlearn.federated.server.simulation import SimulationConfig, simulate  # noqa: E402
from interlearn.federated.strategies import get_strategy  # noqa: E402
from interlearn.federated.strategies.base import server_extras  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def engine():
    # The test module's own classes (the crashing client below) travel to the workers by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    eng = RayEngine(num_cpus=2, init_kwargs={"runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1"}}})
    eng.start()
    yield eng
    eng.shutdown()


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def _population(n_clients: int = 6) -> Population:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(120, 5, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    sizes = [10, 14, 18, 22, 26, 30][:n_clients]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return Population(x, y, [torch.arange(s, s + n) for s, n in zip(starts, sizes)])


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


CONFIG = SimulationConfig(rounds=3, clients_per_round=4, seed=3, progress=False)


def test_fedavg_equals_sequential(engine):
    pop = _population()
    update = LocalSGD(epochs=2, batch_size=5, lr=0.1)
    ref = simulate(_model(), pop, update, get_strategy("fedavg"), CONFIG, engine="sequential")
    got = simulate(_model(), pop, update, get_strategy("fedavg"), CONFIG, engine=engine)
    assert _max_diff(ref.params, got.params) < 1e-5
    assert _max_diff(ref.params, _model().state_dict()) > 1e-3  # training moved the model
    assert [h["reported"] for h in got.history] == [4, 4, 4]
    assert not any("engine_dropped" in h for h in got.history)
    # where the clients ran: one local node, every client counted
    assert [list(h["engine_nodes"].values()) for h in got.history] == [[4], [4], [4]]
    assert "engine_nodes" not in ref.history[0]  # in-process engines report no nodes


def test_scaffold_client_state_survives_rounds(engine):
    pop = _population()
    update = ScaffoldClient(epochs=1, batch_size=5, lr=0.1)
    ref = simulate(_model(), pop, update, get_strategy("scaffold", num_clients=len(pop)), CONFIG, engine="sequential")
    got = simulate(_model(), pop, update, get_strategy("scaffold", num_clients=len(pop)), CONFIG, engine=engine)
    assert _max_diff(ref.params, got.params) < 1e-5
    # The engine hands back each client's new control variate, which the next round receives.
    model = _model()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    strategy = get_strategy("scaffold", num_clients=len(pop))
    extras = server_extras(strategy, strategy.init(params))
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    outs = run_cohort_on(engine, model, update, params, [pop.client(0), pop.client(1)], {}, extras, gens).results
    states = [st for _, st in outs]
    assert all(st is not None and _max_diff(st, {k: torch.zeros_like(v) for k, v in st.items()}) > 0 for st in states)


def test_generators_advance_like_sequential(engine):
    pop = _population()
    model = _model()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    update = LocalSGD(epochs=1, batch_size=4, lr=0.1)
    g_seq = [torch.Generator().manual_seed(i) for i in range(3)]
    g_ray = [torch.Generator().manual_seed(i) for i in range(3)]
    cohort = [pop.client(c) for c in (0, 2, 4)]
    seq = run_cohort_on(SequentialEngine(), model, update, params, cohort, generators=g_seq).results
    got = run_cohort_on(engine, model, update, params, cohort, generators=g_ray).results
    for (a, _), (b, _) in zip(seq, got):
        assert a.client_id == b.client_id and _max_diff(a.update, b.update) < 1e-6
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(g_seq, g_ray))


@dataclass(frozen=True)
class CrashingClient:
    """Kills its worker process when client ``victim`` trains (a lost machine)."""

    inner: LocalSGD
    victim: int
    driver_pid: int

    def __call__(self, model, params, data, client_state, server_extras, generator):
        if data.client_id == self.victim and os.getpid() != self.driver_pid:
            os._exit(1)
        return self.inner(model, params, data, client_state, server_extras, generator)


class SkipVictim(SequentialEngine):
    """Reference: the sequential engine with the victim's result removed."""

    def __init__(self, victim: int) -> None:
        super().__init__(warmup=False)
        self.victim = victim

    def run_cohort(self, task):
        keep = [(c, g) for c, g in zip(task.clients, task.generators) if c != self.victim]
        return super().run_cohort(
            dataclasses.replace(task, clients=[c for c, _ in keep], generators=[g for _, g in keep])
        )


def test_lost_worker_is_a_dropout_and_the_run_continues(engine):
    pop = _population()
    # Every crash costs Ray a fresh worker process (seconds on a busy machine): two rounds.
    config = SimulationConfig(rounds=2, clients_per_round=6, seed=0, progress=False)
    update = CrashingClient(LocalSGD(epochs=1, batch_size=5, lr=0.1), victim=2, driver_pid=os.getpid())
    got = simulate(_model(), pop, update, get_strategy("fedavg"), config, engine=engine)
    assert [h["reported"] for h in got.history] == [5, 5]
    assert [h["engine_dropped"] for h in got.history] == [[2], [2]]
    ref = simulate(_model(), pop, update, get_strategy("fedavg"), config, engine=SkipVictim(2))
    assert _max_diff(ref.params, got.params) < 1e-5


def _reject(model, params, data, client_state, server_extras, generator):
    from interlearn.errors import DataError

    raise DataError(f"client {data.client_id}: labels out of range")


def test_client_errors_keep_their_type(engine):
    pop = _population()
    model = _model()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    from interlearn.errors import DataError

    with pytest.raises(DataError, match="labels out of range"):
        run_cohort_on(engine, model, _reject, params, [pop.client(0), pop.client(1)])


def test_registry_and_bad_arguments():
    assert isinstance(get_engine("ray", num_cpus=1), RayEngine)
    with pytest.raises(ConfigError, match="num_cpus"):
        RayEngine(num_cpus=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        RayEngine(timeout_s=0)
    with pytest.raises(ConfigError, match="scheduling='PACK'.*'SPREAD' or 'DEFAULT'"):
        RayEngine(scheduling="PACK")
    with pytest.raises(ConfigError, match="generators"):
        run_cohort_on(
            RayEngine(),
            nn.Linear(1, 1),
            LocalSGD(),
            {},
            [ClientData(0, torch.zeros(1, 1), torch.zeros(1))],
            generators=[],
        )


def test_result_is_a_client_result(engine):
    pop = _population()
    model = _model()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    [(res, _)] = run_cohort_on(engine, model, LocalSGD(), params, [pop.client(1)]).results
    assert isinstance(res, ClientResult) and res.weight == 14.0 and set(res.update) == set(params)
