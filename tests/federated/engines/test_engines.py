"""Every engine runs the same client step and equals the sequential reference (within 1e-5) on an
MLP, a CNN and an LSTM with ragged clients, for SGD, momentum, Adam, FedProx and SCAFFOLD; a
client update defined only here runs batched; ``auto`` picks a valid engine; unsupported models
get a clear error."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from fl_helpers import cohort
from torch import nn
from torch.func import functional_call, grad_and_value

from interlearn.errors import ConfigError, DataError, InterlearnError
from interlearn.federated.api import ClientData
from interlearn.federated.client import LocalSGD, ScaffoldClient, StepUpdate, batch_schedule
from interlearn.federated.engines import (
    AutoEngine,
    MultiCoreEngine,
    SequentialEngine,
    VectorizedEngine,
    get_engine,
    run_cohort_on,
)
from interlearn.federated.engines import auto as auto_module
from interlearn.federated.params import model_params
from interlearn.federated.server.sampling import client_generator
from interlearn.models.char_lstm import char_lstm
from interlearn.models.cnn import mnist_cnn
from interlearn.models.mlp import mlp

SIZES = [13, 30, 7, 25]  # ragged: different step counts and short last batches mid-schedule


def _mlp_clients() -> list[ClientData]:
    return cohort(SIZES)


def _cnn_clients() -> list[ClientData]:
    g = torch.Generator().manual_seed(0)
    return [
        ClientData(i, torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g))
        for i, n in enumerate(SIZES)
    ]


def _lstm_clients() -> list[ClientData]:
    g = torch.Generator().manual_seed(0)
    return [
        ClientData(i, torch.randint(0, 12, (n, 6), generator=g), torch.randint(0, 12, (n, 6), generator=g))
        for i, n in enumerate(SIZES)
    ]


def _lstm() -> nn.Module:
    torch.manual_seed(0)
    return char_lstm(12, embed_dim=4, hidden=16, layers=2, output="all")


MODELS = {
    "mlp": (lambda: mlp(8, [16], 3, seed=0), _mlp_clients),
    "cnn": (lambda: mnist_cnn(num_classes=4, channels=(3, 5), hidden=12, image_size=8, seed=0), _cnn_clients),
    "lstm": (_lstm, _lstm_clients),
}
UPDATES = {
    "sgd": LocalSGD(epochs=2, batch_size=8, lr=0.1),
    "momentum": LocalSGD(epochs=2, batch_size=8, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": LocalSGD(steps=6, batch_size=8, lr=0.01, optimizer="adam"),
    "fedprox": LocalSGD(epochs=1, batch_size=8, lr=0.1, prox_mu=0.5),
    "scaffold": ScaffoldClient(epochs=2, batch_size=8, lr=0.1),
}
ENGINES = {
    "vectorized": lambda: VectorizedEngine(),
    "vectorized_autograd": lambda: VectorizedEngine(closed_form=False),
    "vectorized_chunks": lambda: VectorizedEngine(chunk_size=3),
    "multicore": lambda: MultiCoreEngine(workers=2),
    "multicore_vectorized": lambda: MultiCoreEngine(workers=2, inner="vectorized"),
    "auto": lambda: AutoEngine(),
}


def _run(engine, model, update, clients, extras=None, states=None):
    params = model_params(model)
    gens = [client_generator(0, 1, d.client_id) for d in clients]
    try:
        out = run_cohort_on(engine, model, update, params, clients, states, extras, gens)
    finally:
        engine.stop()
    return params, out.results, gens


def _assert_equal(params, ref, got, atol=1e-5):
    assert [r.client_id for r, _ in ref] == [r.client_id for r, _ in got]
    for (a, sa), (b, sb) in zip(ref, got):
        assert a.weight == b.weight and a.metrics["steps"] == b.metrics["steps"]
        assert a.metrics["loss"] == pytest.approx(b.metrics["loss"], abs=1e-5)
        assert list(a.update) == list(b.update) == list(params)
        for k in params:
            torch.testing.assert_close(b.update[k], a.update[k], atol=atol, rtol=0)
        assert a.extras.keys() == b.extras.keys()
        for k in a.extras:
            torch.testing.assert_close(b.extras[k], a.extras[k], atol=atol, rtol=0)
        assert (sa is None) == (sb is None)
        for k in sa or {}:
            torch.testing.assert_close(sb[k], sa[k], atol=atol, rtol=0)


@pytest.mark.parametrize("update_name", sorted(UPDATES))
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_every_engine_equals_sequential(model_name, update_name):
    build, clients_fn = MODELS[model_name]
    model, clients, update = build(), clients_fn(), UPDATES[update_name]
    if update_name == "adam":
        # Adam divides by sqrt(v): an entry whose gradient is ~0 turns float32 rounding noise (the
        # batched conv sums in another order) into an lr-sized step. In float64 the same
        # comparison is tight, which is what "same math" means here.
        model = model.double()
        clients = [ClientData(c.client_id, c.x.double() if c.x.is_floating_point() else c.x, c.y) for c in clients]
    extras, states = None, None
    if update_name == "scaffold":
        g = torch.Generator().manual_seed(1)
        params = model_params(model)
        extras = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in params.items()}
        states = {1: {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in params.items()}}
    params, ref, ref_gens = _run(SequentialEngine(), model, update, clients, extras, states)
    assert any(float(r.update[k].abs().max()) > 1e-4 for r, _ in ref for k in params)  # it trained
    for name, make in ENGINES.items():
        _, got, gens = _run(make(), model, update, clients, extras, states)
        _assert_equal(params, ref, got)
        for a, b in zip(ref_gens, gens):  # every engine leaves each generator where training left it
            assert torch.equal(a.get_state(), b.get_state()), name


def test_multicore_with_sequential_inside_is_bitwise_sequential():
    model, clients = MODELS["cnn"][0](), _cnn_clients()
    _, ref, _ = _run(SequentialEngine(), model, UPDATES["momentum"], clients)
    _, got, _ = _run(MultiCoreEngine(workers=2, inner="sequential"), model, UPDATES["momentum"], clients)
    for (a, _), (b, _) in zip(ref, got):
        assert all(torch.equal(a.update[k], b.update[k]) for k in a.update)


# ---------------------------------------------------------------- a client update written here


@dataclass(frozen=True)
class NormalizedSGD(StepUpdate):
    """Steps of length ``lr`` along each tensor's gradient direction: per-tensor norms make its
    ``apply`` not elementwise, so the batched engine must ``vmap`` it (a norm over the stacked
    clients would be wrong)."""

    lr: float = 0.05
    batch_size: int = 6

    def schedule(self, n, generator):
        return batch_schedule(n, self.batch_size, 1, None, generator)

    def objective(self, model, params, x, y):
        return F.cross_entropy(functional_call(model, params, (x,)), y)

    def apply(self, params, grads, state, ctx, t):
        new = dict(params)
        for k, g in grads.items():
            new[k] = params[k] - self.lr * g / (g.norm() + 1e-12)
        return new, state


@dataclass(frozen=True)
class HeavyBallStep(StepUpdate):
    """A whole custom step written with torch.func (so the batched engine can vmap it)."""

    lr: float = 0.1
    beta: float = 0.5

    def schedule(self, n, generator):
        return batch_schedule(n, 5, 2, None, generator)

    def init_state(self, params, client_state, ctx):
        return {k: torch.zeros_like(params[k]) for k in ctx.trainable}

    def step(self, model, params, state, x, y, ctx, t):
        def loss_of(trainable):
            return F.cross_entropy(functional_call(model, {**params, **trainable}, (x,)), y)

        grads, loss = grad_and_value(loss_of)({k: params[k] for k in ctx.trainable})
        new_state = {k: self.beta * state[k] + grads[k] for k in ctx.trainable}
        new_params = {**params, **{k: params[k] - self.lr * new_state[k] for k in ctx.trainable}}
        return new_params, new_state, loss


@pytest.mark.parametrize("update", [NormalizedSGD(), HeavyBallStep()], ids=["custom_apply", "custom_step"])
def test_a_client_update_defined_in_a_test_runs_batched(update):
    model, clients = mlp(8, [16], 3, seed=0), _mlp_clients()
    params, ref, _ = _run(SequentialEngine(), model, update, clients)
    for engine in (VectorizedEngine(), MultiCoreEngine(workers=2, inner="vectorized")):
        _, got, _ = _run(engine, model, update, clients)
        _assert_equal(params, ref, got)


@dataclass(frozen=True)
class CountingSGD(LocalSGD):
    """LocalSGD that counts the client-steps its apply advances (a batched call counts its stack)."""

    counter: list = None  # type: ignore[assignment]

    def apply(self, params, grads, state, ctx, t):
        p = next(iter(grads.values()))
        self.counter.append(p.shape[0] if p.dim() == ctx.global_params[next(iter(grads))].dim() + 1 else 1)
        return super().apply(params, grads, state, ctx, t)


def test_ragged_cohorts_cost_the_sum_of_their_steps():
    counter: list[int] = []
    update = CountingSGD(epochs=1, batch_size=4, lr=0.1, counter=counter)
    clients = cohort([3, 40, 9, 1, 17])  # 1 .. 10 steps each
    steps = sum(-(-len(c) // 4) for c in clients)
    _run(
        VectorizedEngine(warmup=False), mlp(8, [16], 3, seed=0), update, clients
    )  # the warm-up's steps would count too
    assert sum(counter) == steps  # not cohort x longest = 50
    assert max(counter) == 3  # step 1: the three clients with a full batch of 4 advance together


# ---------------------------------------------------------------- auto


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_auto_picks_a_valid_engine(model_name):
    build, clients_fn = MODELS[model_name]
    engine = AutoEngine()
    params, _ref, _ = _run(SequentialEngine(), build(), UPDATES["sgd"], clients_fn())
    run_cohort_on(engine, build(), UPDATES["sgd"], params, clients_fn())
    chosen = engine.describe()
    engine.stop()
    expected = "vectorized" if model_name == "mlp" else "sequential"
    assert expected in chosen and chosen.startswith("auto -> ")


def test_auto_rule(monkeypatch):
    from interlearn.federated.api import EngineSetup
    from interlearn.federated.population import Population

    pop = Population.from_clients([(c.x, c.y) for c in _cnn_clients()])
    cnn = MODELS["cnn"][0]()
    engine, why = auto_module.choose_engine(EngineSetup(cnn, UPDATES["sgd"], pop, 4), cores=1)
    assert isinstance(engine, SequentialEngine) and "1 core" in why
    engine, why = auto_module.choose_engine(EngineSetup(cnn, UPDATES["sgd"], pop, 4), cores=2)
    assert isinstance(engine, SequentialEngine) and "ms of work" in why  # a tiny round stays in process
    monkeypatch.setattr(auto_module, "MIN_ROUND_SECONDS", 0.0)
    engine, why = auto_module.choose_engine(EngineSetup(cnn, UPDATES["sgd"], pop, 4), cores=2)
    assert isinstance(engine, MultiCoreEngine) and engine.inner == "sequential" and "2 cores" in why
    engine, why = auto_module.choose_engine(
        EngineSetup(mlp(8, [16], 3), UPDATES["sgd"], Population.from_clients([(c.x, c.y) for c in _mlp_clients()]), 4),
        cores=2,
    )
    assert isinstance(engine, MultiCoreEngine) and engine.inner == "vectorized"
    engine, why = auto_module.choose_engine(EngineSetup(cnn, lambda *a: None, pop, 4), cores=2)
    assert isinstance(engine, SequentialEngine) and "not a StepUpdate" in why  # a plain callable may keep state
    engine, why = auto_module.choose_engine(EngineSetup(mlp(8, [16], 3), ScaffoldClient(), pop, 1), cores=2)
    assert isinstance(engine, VectorizedEngine) and "cohort 1" in why  # SCAFFOLD's apply on closed-form gradients


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "model, match",
    [
        (nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)), "BatchNorm1d"),
        (nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.5), nn.Linear(4, 3)), "Dropout"),
    ],
)
def test_unvectorizable_model_suggests_sequential(model, match):
    with pytest.raises(ConfigError, match=f"(?s){match}.*sequential"):
        run_cohort_on(VectorizedEngine(), model, UPDATES["sgd"], model_params(model), cohort([4]))


def test_nn_lstm_suggests_sequential():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 4, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0][:, -1]

    with pytest.raises(ConfigError, match="sequential"):
        run_cohort_on(VectorizedEngine(), M(), UPDATES["sgd"], model_params(M()), cohort([4]))


def test_sequential_and_multicore_run_batchnorm_and_lstm():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(8)
            self.lstm = nn.LSTM(8, 4, batch_first=True)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(self.lstm(self.bn(x).unsqueeze(1))[0][:, -1])

    torch.manual_seed(0)
    m = M()
    params = model_params(m)
    assert "bn.running_mean" in params and "bn.num_batches_tracked" not in params
    _, ref, _ = _run(SequentialEngine(), m, UPDATES["sgd"], cohort([10, 12]))
    assert float(ref[0][0].update["bn.running_mean"].abs().sum()) > 0  # BN statistics are averaged too
    _, got, _ = _run(MultiCoreEngine(workers=2), m, UPDATES["sgd"], cohort([10, 12]))
    _assert_equal(params, ref, got)


def test_a_plain_callable_update_runs_everywhere_but_vectorized():
    def my_update(model, params, data, state, extras, gen):  # a custom ClientUpdate without steps
        return LocalSGD(epochs=1, batch_size=4)(model, params, data, state, extras, gen)

    model = mlp(8, [4], 3, seed=0)
    with pytest.raises(ConfigError, match="StepUpdate.*sequential"):
        run_cohort_on(VectorizedEngine(), model, my_update, model_params(model), cohort([4]))
    params, ref, _ = _run(SequentialEngine(), model, my_update, cohort([5, 9]))
    _, got, _ = _run(MultiCoreEngine(workers=2), model, my_update, cohort([5, 9]))
    _assert_equal(params, ref, got)


def _reject(model, params, data, state, extras, gen):
    raise DataError(f"client {data.client_id}: labels out of range")


def test_multicore_reraises_a_client_error_with_its_type():
    model = mlp(8, [4], 3, seed=0)
    with pytest.raises(DataError, match="labels out of range"):
        _run(MultiCoreEngine(workers=2), model, _reject, cohort([5, 6]))


def _die(model, params, data, state, extras, gen):
    os._exit(3)


def test_multicore_names_a_dead_worker():
    model = mlp(8, [4], 3, seed=0)
    with pytest.raises(InterlearnError, match="worker .* died .*exit code 3"):
        _run(MultiCoreEngine(workers=2), model, _die, cohort([5, 6]))


def test_engine_registry():
    assert get_engine("sequential").name == "sequential"
    assert get_engine("vectorized", chunk_size=4).name == "vectorized"
    assert get_engine("multicore", workers=2).name == "multicore"
    assert get_engine("auto").name == "auto"
    with pytest.raises(ConfigError, match="vectorized"):
        get_engine("vectorised")
    with pytest.raises(ConfigError, match="workers=0"):
        MultiCoreEngine(workers=0)
    with pytest.raises(ConfigError, match="not started"):
        SequentialEngine().bound()


def test_library_client_updates_run_on_every_engine():
    """FedPer (a private head in the client state) and federated distillation (a KD objective) are
    StepUpdates too: batched and multi-core runs equal the sequential ones."""
    from interlearn.federated.client.distill_update import FedDistillUpdate
    from interlearn.federated.personalization.local import FedPerUpdate

    model, clients = mlp(8, [16], 3, seed=0), _mlp_clients()
    params = model_params(model)
    g = torch.Generator().manual_seed(3)
    states = {2: {k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in params.items() if k.startswith("3.")}}
    updates = [
        FedPerUpdate(epochs=2, batch_size=8, lr=0.1, head_patterns=("3.*",)),
        FedDistillUpdate(teacher=mlp(8, [32], 3, seed=1), epochs=2, batch_size=8, lr=0.1, max_steps=5),
    ]
    for update in updates:
        _, ref, _ = _run(SequentialEngine(), model, update, clients, states=states)
        for engine in (VectorizedEngine(), MultiCoreEngine(workers=2)):
            _, got, _ = _run(engine, model, update, clients, states=states)
            _assert_equal(params, ref, got)
    fedper = _run(SequentialEngine(), model, updates[0], clients, states=states)[1]
    assert all(float(r.update["3.weight"].abs().max()) == 0.0 for r, _ in fedper)  # the head stays private
    assert set(fedper[2][1]) == {"3.weight", "3.bias"}


class _WithUnusedPooler(nn.Module):
    """A classifier that carries a trainable layer its forward never uses (like MiniLM's pooler
    under a mean-pooling head)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(8, 16)
        self.pooler = nn.Linear(16, 16)  # trainable, never called
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))


@pytest.mark.parametrize("update_name", ["momentum", "adam"])
def test_a_trainable_parameter_the_forward_never_uses_stays_put_on_every_engine(update_name):
    # torch.optim skips a parameter whose grad is None; every engine does the same instead of
    # failing with "appears to not have been used in the graph".
    update, clients = UPDATES[update_name], _mlp_clients()
    params, ref, _ = _run(SequentialEngine(), _WithUnusedPooler(), update, clients)
    for r, _ in ref:
        assert torch.count_nonzero(r.update["pooler.weight"]) == 0 and torch.count_nonzero(r.update["pooler.bias"]) == 0
        assert torch.count_nonzero(r.update["body.weight"]) > 0
    for name, make in ENGINES.items():
        _, got, _ = _run(make(), _WithUnusedPooler(), update, clients)
        _assert_equal(params, ref, got), name
