"""The open round loop: a Server driven by hand equals simulate; plug-ins declare their interface."""

import dataclasses

import pytest
import torch
from fl_helpers import blobs, tiny_mlp

from interlearn.errors import ConfigError
from interlearn.federated import (
    LocalSGD,
    Population,
    Server,
    ServerStrategy,
    SimulationConfig,
    Strategy,
    UpdateStep,
    get_strategy,
    simulate,
)
from interlearn.federated.partition import shards
from interlearn.federated.server.callbacks import Callback
from interlearn.federated.strategies import ServerSGD


def _setup():
    x, y = blobs(120)
    pop = Population(x, y, shards(y, 8, 2, seed=0))
    cfg = SimulationConfig(rounds=4, clients_per_round=4, seed=1, progress=False)
    return pop, cfg, (x, y)


def test_a_hand_written_loop_over_the_server_equals_simulate():
    pop, cfg, test = _setup()
    ref = simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), cfg, engine="sequential", test=test)
    server = Server(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), cfg, engine="sequential", test=test)
    state = server.init()
    records = []
    while not server.done(state):
        state, record = server.round(state)
        records.append(record)
    server.stop()
    assert [r["round"] for r in records] == [1, 2, 3, 4] and state.round == 4
    for k in ref.params:
        assert torch.equal(ref.params[k], state.params[k]), k
    assert [r["test_accuracy"] for r in records] == [h["test_accuracy"] for h in ref.history]


class _Counter(Callback):
    def __init__(self):
        self.calls = []

    def on_start(self, server, state):
        self.calls.append("start")
        return state

    def on_round(self, server, state, record):
        self.calls.append(record["round"])

    def on_end(self, server, state, failed):
        self.calls.append(("end", failed))


def test_callbacks_see_start_every_round_and_end():
    pop, cfg, _ = _setup()
    counter = _Counter()
    simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), cfg, callbacks=[counter])
    assert counter.calls == ["start", 1, 2, 3, 4, ("end", False)]


class _Stop(UpdateStep):
    name = "stop"

    def after(self, old, new, ctx):
        if ctx.round == 2:
            ctx.stop = "enough"
        return new


def test_a_step_stops_the_run_through_the_typed_field():
    pop, cfg, _ = _setup()
    res = simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), cfg, steps=[_Stop()])
    assert res.stopped == "enough" and len(res.history) == 2 and res.history[-1]["stop"] == "enough"


class _Bare:
    name = "bare"

    def client(self, result, ctx):
        return result


class _NoExtras:
    def init(self, params):
        return {}

    def aggregate(self, params, results, state):
        return params, state


def test_plug_ins_that_do_not_declare_their_interface_are_refused_by_name():
    pop, cfg, _ = _setup()
    with pytest.raises(ConfigError, match="UpdateStep"):
        simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), cfg, steps=[_Bare()])
    with pytest.raises(ConfigError, match="server_extras"):
        simulate(tiny_mlp(), pop, LocalSGD(), _NoExtras(), cfg)
    with pytest.raises(ConfigError, match="Aggregator"):
        ServerStrategy(ServerSGD(1.0), aggregator=lambda results: {})


def test_declared_defaults():
    class Plain(UpdateStep):
        pass

    step = Plain()
    assert step.state_dict() is None and step.sampling is None
    assert not step.releases_every_round and not step.needs_channel

    class Mine(Strategy):
        def init(self, params):
            return {}

        def aggregate(self, params, results, state):
            return params, state

    assert Mine().server_extras({}) == {} and isinstance(Mine(), Strategy)
    assert dataclasses.is_dataclass(SimulationConfig)


def test_no_capability_probes_in_the_federated_package():
    """Capabilities are declared on the protocols; the only getattr left reads a Flower context
    (an external object) and a report's column by name."""
    from pathlib import Path

    import interlearn.federated as fl

    root = Path(fl.__file__).parent
    allowed = {"flower/demo.py", "personalization/local.py"}
    found = [
        f"{p.relative_to(root)}:{n}"
        for p in sorted(root.rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if ("getattr(" in line or "hasattr(" in line) and str(p.relative_to(root)) not in allowed
    ]
    assert found == []
