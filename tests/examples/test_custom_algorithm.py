"""examples/custom_algorithm: FedDyn and FedNova written in user code, checked against their
papers' update rules on tiny quadratic / linear clients whose rounds have closed forms, run
through ``simulate`` on the ``sequential`` and ``vectorized`` engines (agreeing within 1e-5),
named in a ``federated`` recipe, and put through the built-in strategies' conformance suite."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from interlearn.federated import Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.api import ClientData
from interlearn.federated.client.registry import CLIENT_UPDATES, get_client_update
from interlearn.federated.strategies import AGGREGATORS, STRATEGIES
from interlearn.recipes import federated as recipe
from interlearn.schema import build

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "custom_algorithm"
ENGINES = ("sequential", "vectorized")


REGISTRIES = (STRATEGIES, AGGREGATORS, CLIENT_UPDATES)


@pytest.fixture(scope="module")
def algorithms() -> Iterator[tuple[ModuleType, ModuleType]]:
    """Import examples/custom_algorithm/{feddyn,fednova}.py (they register their names on import);
    afterwards remove what they registered, so the rest of the session (the conformance suites
    over every registered name) sees interlearn's own registries."""
    before = {id(r): set(r.names()) for r in REGISTRIES}
    modules = []
    for name in ("feddyn", "fednova"):
        spec = importlib.util.spec_from_file_location(f"custom_algorithm_{name}", FOLDER / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
        modules.append(module)
    yield modules[0], modules[1]
    for r in REGISTRIES:
        for name in set(r.names()) - before[id(r)]:
            r.unregister(name)
    for m in modules:
        del sys.modules[m.__name__]


@pytest.fixture(scope="module")
def feddyn(algorithms):
    return algorithms[0]


@pytest.fixture(scope="module")
def fednova(algorithms):
    return algorithms[1]


class Shift(nn.Module):
    """The model ``f(x) = theta`` (one vector): with the losses below, each client is a quadratic
    ``1/2 ||theta - c||^2`` (or a linear ``<theta, v>``) whatever its batch."""

    def __init__(self, start: torch.Tensor) -> None:
        super().__init__()
        self.theta = nn.Parameter(start.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.theta.expand(x.shape[0], -1)


def quadratic(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(1).mean()


def linear(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out * y).sum(1).mean()


def population(centers: torch.Tensor, sizes: list[int]) -> Population:
    """Client ``i`` holds ``sizes[i]`` copies of ``centers[i]`` as its targets."""
    return Population.from_clients(
        [(torch.zeros(n, centers.shape[1]), centers[i].expand(n, -1)) for i, n in enumerate(sizes)]
    )


def run(engine: str, start: torch.Tensor, pop: Population, client, strategy, rounds: int):
    sim = SimulationConfig(rounds=rounds, clients_per_round=len(pop), seed=0, progress=False, client_eval=False)
    return simulate(Shift(start), pop, client, strategy, sim, engine=engine)


CENTERS = torch.tensor([[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]])
START = torch.tensor([0.5, 0.5])


# ----------------------------------------------------------------------------------- FedDyn


def feddyn_by_hand(rounds: int, alpha: float, lr: float, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1 with every client in every round; local SGD on the quadratic in closed form:
    ``theta_K = theta* + (1 - lr (1 + alpha))^K (theta0 - theta*)``,
    ``theta* = (c + g + alpha theta0) / (1 + alpha)``. Returns ``(theta, h, g)``."""
    c = CENTERS.double()
    m = len(c)
    theta, h, g = START.double(), torch.zeros(2, dtype=torch.float64), torch.zeros_like(c)
    for _ in range(rounds):
        star = (c + g + alpha * theta) / (1 + alpha)
        local = star + (1 - lr * (1 + alpha)) ** steps * (theta - star)
        g = g - alpha * (local - theta)
        h = h - alpha / m * (local - theta).sum(0)
        theta = local.mean(0) - h / alpha
    return theta, h, g


@pytest.mark.parametrize("engine", ENGINES)
def test_feddyn_follows_algorithm_1(engine, feddyn):
    alpha, lr, steps = 0.1, 0.2, 3
    client = feddyn.FedDynClient(steps=steps, batch_size=2, lr=lr, alpha=alpha, loss=quadratic)
    res = run(engine, START, population(CENTERS, [4, 4, 4]), client, feddyn.FedDyn(len(CENTERS), alpha), rounds=2)
    theta, h, _ = feddyn_by_hand(2, alpha, lr, steps)
    torch.testing.assert_close(res.params["theta"].double(), theta, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.strategy_state["h/theta"].double(), h, atol=1e-5, rtol=0)


def test_feddyn_client_state_is_the_gradient_at_its_local_model(feddyn):
    """Solved to convergence, the kept state ``g - alpha (theta_k - theta)`` is ``grad L_k(theta_k)``."""
    alpha, theta0, g = 0.1, START.clone(), torch.tensor([0.3, -0.2])
    client = feddyn.FedDynClient(steps=300, batch_size=2, lr=0.3, alpha=alpha, loss=quadratic)
    data = ClientData(0, torch.zeros(2, 2), CENTERS[0].expand(2, -1))
    result, state = client(Shift(theta0), {"theta": theta0}, data, {"theta": g}, {}, torch.Generator().manual_seed(0))
    local = theta0 + result.update["theta"]
    torch.testing.assert_close(state["theta"], local - CENTERS[0], atol=1e-5, rtol=0)  # grad of 1/2||theta - c||^2
    torch.testing.assert_close(
        state["theta"], feddyn.gradient_state({"theta": g}, alpha, {"theta": local}, {"theta": theta0})["theta"]
    )


def test_feddyn_engines_agree(feddyn):
    client = feddyn.FedDynClient(epochs=2, batch_size=3, lr=0.1, alpha=0.05, loss=quadratic)
    pop = population(CENTERS, [5, 9, 2])  # ragged: 4, 6 and 2 local steps
    a, b = (run(e, START, pop, client, feddyn.FedDyn(3, 0.05), rounds=3) for e in ENGINES)
    torch.testing.assert_close(a.params["theta"], b.params["theta"], atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------- FedNova


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("tau", [1, 3, 7])
def test_fednova_normalizer_is_the_sum_of_the_step_coefficients(tau, momentum, fednova):
    """On a linear loss every gradient is ``v``, so ``tau`` steps move ``theta`` by ``-lr a_i v``."""
    lr, v = 0.1, torch.tensor([1.0, -2.0])
    client = fednova.FedNovaClient(steps=tau, batch_size=1, lr=lr, momentum=momentum, loss=linear)
    data = ClientData(0, torch.zeros(3, 2), v.expand(3, -1))
    result, _ = client(Shift(START), {"theta": START}, data, None, {}, torch.Generator().manual_seed(0))
    a = float(result.extras["fednova/a"])
    assert a == pytest.approx(fednova.normalizer(tau, momentum)) and result.metrics["steps"] == tau
    torch.testing.assert_close(result.update["theta"], -lr * a * v, atol=1e-5, rtol=0)


@pytest.mark.parametrize("engine", ENGINES)
def test_fednova_normalized_aggregate_by_hand(engine, fednova):
    """One round, tau = 1, 2, 4 (from 2, 4, 8 examples, batch 2): ``theta_i`` in closed form,
    then ``theta + tau_eff sum_i p_i (theta_i - theta) / tau_i``."""
    lr, sizes = 0.1, [2, 4, 8]
    client = fednova.FedNovaClient(epochs=1, batch_size=2, lr=lr, loss=quadratic)
    res = run(engine, START, population(CENTERS, sizes), client, fednova.FedNova(), rounds=1)
    c, theta = CENTERS.double(), START.double()
    tau = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    p = torch.tensor(sizes, dtype=torch.float64) / sum(sizes)
    local = c + (1 - lr) ** tau[:, None] * (theta - c)
    expected = theta + (p * tau).sum() * (p[:, None] * (local - theta) / tau[:, None]).sum(0)
    torch.testing.assert_close(res.params["theta"].double(), expected, atol=1e-5, rtol=0)


def test_fednova_is_fedavg_when_every_client_takes_the_same_steps(fednova):
    client = fednova.FedNovaClient(epochs=2, batch_size=2, lr=0.1, loss=quadratic)
    plain = get_client_update("local_sgd", epochs=2, batch_size=2, lr=0.1, loss=quadratic)
    pop = population(CENTERS, [6, 6, 6])
    nova = run("sequential", START, pop, client, fednova.FedNova(), rounds=2)
    avg = run("sequential", START, pop, plain, get_strategy("fedavg"), rounds=2)
    torch.testing.assert_close(nova.params["theta"], avg.params["theta"], atol=1e-6, rtol=0)


def test_fednova_corrects_the_objective_inconsistency_of_fedavg(fednova):
    """Client sizes 2 and 16 (batch 2): 1 and 8 local steps. The intended optimum of
    ``sum_i p_i L_i`` is ``sum_i p_i c_i``; FedAvg converges to a point biased toward the client that
    steps more, FedNova to (nearly) the optimum. Both fixed points are known in closed form."""
    lr, sizes, c = 0.05, [2, 16], CENTERS[:2]
    p = torch.tensor(sizes, dtype=torch.float64) / sum(sizes)
    tau = torch.tensor([1.0, 8.0], dtype=torch.float64)
    shrink = 1 - (1 - lr) ** tau  # theta_i - theta = shrink_i (c_i - theta)
    optimum = (p[:, None] * c.double()).sum(0)

    def fixed_point(w: torch.Tensor) -> torch.Tensor:
        return (w[:, None] * c.double()).sum(0) / w.sum()

    pop = population(c, sizes)
    kw = {"epochs": 1, "batch_size": 2, "lr": lr, "loss": quadratic}
    nova = run("sequential", START, pop, fednova.FedNovaClient(**kw), fednova.FedNova(), rounds=60)
    avg = run("sequential", START, pop, get_client_update("local_sgd", **kw), get_strategy("fedavg"), rounds=60)
    torch.testing.assert_close(nova.params["theta"].double(), fixed_point(p * shrink / tau), atol=1e-4, rtol=0)
    torch.testing.assert_close(avg.params["theta"].double(), fixed_point(p * shrink), atol=1e-4, rtol=0)
    err_nova = float((nova.params["theta"].double() - optimum).norm())
    err_avg = float((avg.params["theta"].double() - optimum).norm())
    assert err_nova < 0.25 * err_avg, (err_nova, err_avg)


def test_fednova_engines_agree_with_momentum(fednova):
    client = fednova.FedNovaClient(epochs=2, batch_size=3, lr=0.05, momentum=0.9, loss=quadratic)
    pop = population(CENTERS, [5, 9, 2])
    a, b = (run(e, START, pop, client, fednova.FedNova(), rounds=3) for e in ENGINES)
    torch.testing.assert_close(a.params["theta"], b.params["theta"], atol=1e-5, rtol=0)


# ------------------------------------------------------------------------- in a recipe, by name


@pytest.mark.parametrize(
    "client, strategy",
    [
        ({"update": "feddyn", "options": {"alpha": 0.01}}, {"name": "feddyn", "options": {"alpha": 0.01}}),
        ({"update": "fednova"}, {"name": "fednova"}),
        ({"update": "fednova"}, {"name": "fedadam", "options": {"lr": 0.01}, "aggregator": "fednova"}),
    ],
)
def test_a_recipe_names_them(algorithms, tmp_path, client, strategy):
    cfg = build(
        recipe.Config,
        {
            "data": {"dataset": "digits", "num_clients": 4, "partitioner": "quantity", "alpha": 1.0},
            "model": {"hidden": [8]},
            "client": {**client, "epochs": 1, "batch_size": 20},
            "strategy": strategy,
            "engine": "vectorized",
            "rounds": 2,
            "clients_per_round": 3,
            "checkpoint_every": 0,
        },
        "federated",
    )
    row = recipe.run(cfg, tmp_path, progress=False)["federated"]
    assert row["rounds"] == 2 and 0.0 <= row["accuracy"] <= 1.0


# ------------------------------------------------------------- the shared conformance suite

# FedDyn's h adds up the cohort's updates over the population (h -= alpha/m sum_k ...), so k
# identical clients move it k times as far as one client does: a property of the algorithm.
EXPECTED_DEVIATIONS = {("feddyn", "test_strategy_identical_updates_act_like_one_client")}


def _conformance_suite() -> ModuleType:
    """interlearn's own strategy conformance suite (tests/**/test_aggregation_conformance.py)."""
    (path,) = (Path(__file__).resolve().parents[1]).rglob("test_aggregation_conformance.py")
    spec = importlib.util.spec_from_file_location("conformance_for_custom_algorithms", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["feddyn", "fednova"])
def test_they_pass_the_conformance_suite_of_the_builtin_strategies(algorithms, name, tmp_path, monkeypatch):
    suite = _conformance_suite()
    monkeypatch.setitem(suite.STRATEGY_KWARGS, "feddyn", {"num_clients": 40})
    checks = [f for n, f in sorted(vars(suite).items()) if n.startswith("test_strategy_")]
    assert len(checks) >= 7
    for check in checks:
        wants = inspect.signature(check).parameters
        for dtype in (torch.float64, torch.float32) if "dtype" in wants else (None,):
            kwargs: dict[str, object] = {"name": name}
            if dtype is not None:
                kwargs["dtype"] = dtype
            if "tmp_path" in wants:
                kwargs["tmp_path"] = tmp_path
            if (name, check.__name__) in EXPECTED_DEVIATIONS:
                with pytest.raises(AssertionError):
                    check(**kwargs)
            else:
                check(**kwargs)


@pytest.mark.parametrize("engine", ENGINES)
def test_fednova_with_plain_sgd_needs_no_special_client(engine, fednova):
    """Every client reports its steps, so plain LocalSGD clients give the same FedNova round."""
    kw = {"epochs": 1, "batch_size": 2, "lr": 0.1, "loss": quadratic}
    pop = population(CENTERS, [2, 4, 8])
    a = run(engine, START, pop, fednova.FedNovaClient(**kw), fednova.FedNova(), rounds=2)
    b = run(engine, START, pop, get_client_update("local_sgd", **kw), fednova.FedNova(), rounds=2)
    torch.testing.assert_close(a.params["theta"], b.params["theta"], atol=1e-6, rtol=0)
