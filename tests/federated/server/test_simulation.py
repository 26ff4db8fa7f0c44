import dataclasses
import json
import logging

import pytest
import torch
from fl_helpers import KillAt, blobs, tiny_mlp

from interlearn.errors import CheckpointError, ConfigError
from interlearn.federated import (
    ClientResult,
    LocalSGD,
    Population,
    ScaffoldClient,
    SimulationConfig,
    get_strategy,
    simulate,
)
from interlearn.federated.api import UpdateStep
from interlearn.federated.partition import shards
from interlearn.federated.server.comm import params_bytes


def _population(n=120, clients=8, seed=0):
    x, y = blobs(n, seed=seed)
    return Population(x, y, shards(y, clients, 2, seed=seed)), (x, y)


def _cfg(**kw):
    base = dict(rounds=6, clients_per_round=4, seed=3, progress=False)
    base.update(kw)
    return SimulationConfig(**base)


def test_fedavg_learns_and_writes_run_folder(tmp_path):
    pop, (x, y) = _population()
    res = simulate(
        tiny_mlp(),
        pop,
        LocalSGD(epochs=2, batch_size=8, lr=0.1),
        get_strategy("fedavg"),
        _cfg(rounds=8),
        test=(x, y),
        run_dir=tmp_path,
    )
    acc0 = res.history[0]["test_accuracy"]
    assert res.final_accuracy > max(0.6, acc0)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in lines] == list(range(1, 9))
    assert {"cohort", "bytes_down", "bytes_up", "train_loss", "test_accuracy"} <= lines[0].keys()
    assert "client_accuracy" in lines[-1] and res.client_accuracy
    assert (tmp_path / "accuracy.png").stat().st_size > 0 and (tmp_path / "client_accuracy.png").stat().st_size > 0


@pytest.mark.parametrize("engine", ["sequential", "vectorized"])
def test_progress_can_be_turned_off(engine, capsys):
    pop, _ = _population()
    simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), _cfg(rounds=2), engine=engine)
    assert capsys.readouterr().out == ""
    simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), _cfg(rounds=2, progress=True), engine=engine)
    assert "round 2/2" in capsys.readouterr().out


def test_engines_agree_over_rounds():
    pop, _ = _population()
    cu = LocalSGD(epochs=1, batch_size=8, lr=0.1)
    a = simulate(tiny_mlp(), pop, cu, get_strategy("fedavg"), _cfg(), engine="sequential")
    b = simulate(tiny_mlp(), pop, cu, get_strategy("fedavg"), _cfg(), engine="vectorized")
    for k in a.params:
        torch.testing.assert_close(a.params[k], b.params[k], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "strategy, client",
    [
        ("fedadam", LocalSGD(epochs=1, batch_size=8, lr=0.05, momentum=0.9)),
        ("scaffold", ScaffoldClient(epochs=1, batch_size=8, lr=0.05)),
    ],
)
def test_killed_and_resumed_run_is_bit_exact(tmp_path, strategy, client):
    pop, (x, y) = _population()
    kw = {"num_clients": len(pop)} if strategy == "scaffold" else {}
    cfg = _cfg(checkpoint_every=2, dropout=0.2)
    full = simulate(tiny_mlp(), pop, client, get_strategy(strategy, **kw), cfg, test=(x, y), run_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        simulate(
            tiny_mlp(),
            pop,
            client,
            get_strategy(strategy, **kw),
            cfg,
            steps=[KillAt(5)],
            test=(x, y),
            run_dir=tmp_path / "b",
        )
    # a new process would rebuild the model with other weights: resume must not depend on them
    resumed = simulate(
        tiny_mlp(seed=99),
        pop,
        client,
        get_strategy(strategy, **kw),
        cfg,
        test=(x, y),
        run_dir=tmp_path / "b",
        resume=True,
    )
    for k in full.params:
        assert torch.equal(full.params[k], resumed.params[k]), k
    for k in full.strategy_state:
        assert torch.equal(full.strategy_state[k], resumed.strategy_state[k]), k
    rounds = [json.loads(s)["round"] for s in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert rounds == list(range(1, 7))
    assert resumed.bytes_down == full.bytes_down and resumed.bytes_up == full.bytes_up


def test_resume_without_checkpoint_starts_fresh_and_mismatch_is_refused(tmp_path):
    pop, _ = _population()
    res = simulate(
        tiny_mlp(),
        pop,
        LocalSGD(),
        get_strategy("fedavg"),
        _cfg(rounds=2, checkpoint_every=1),
        run_dir=tmp_path,
        resume=True,
    )
    assert len(res.history) == 2
    with pytest.raises(CheckpointError, match="seed"):
        simulate(
            tiny_mlp(),
            pop,
            LocalSGD(),
            get_strategy("fedavg"),
            _cfg(rounds=3, seed=4, checkpoint_every=1),
            run_dir=tmp_path,
            resume=True,
        )
    with pytest.raises(ConfigError, match="run_dir"):
        simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), _cfg(checkpoint_every=1))


def test_dropouts_and_min_survivors_skip_rounds(caplog):
    pop, _ = _population()
    model = tiny_mlp()
    with caplog.at_level(logging.WARNING):
        res = simulate(model, pop, LocalSGD(), get_strategy("fedavg"), _cfg(rounds=10, dropout=0.6, min_survivors=3))
    skipped = [h for h in res.history if "skipped" in h]
    ran = [h for h in res.history if "skipped" not in h]
    assert skipped and ran
    assert all("min_survivors=3" in h["skipped"] for h in skipped)
    assert all(h["reported"] >= 3 and h["reported"] == h["cohort"] - h["dropped"] for h in ran)
    assert any("round skipped" in r.message for r in caplog.records)
    with pytest.raises(ConfigError, match="min_survivors"):
        simulate(model, pop, LocalSGD(), get_strategy("fedavg"), _cfg(min_survivors=5))


def test_skipped_round_leaves_params_unchanged():
    pop, _ = _population()
    snapshots = []
    res = simulate(
        tiny_mlp(),
        pop,
        LocalSGD(),
        get_strategy("fedavg"),
        _cfg(rounds=1, dropout=0.99, min_survivors=4),
        on_round=snapshots.append,
    )
    assert "skipped" in res.history[0]
    for k, v in tiny_mlp().state_dict().items():
        assert torch.equal(res.params[k], v)


class _Half(UpdateStep):
    """Client side: send float16; server side: back to float32 (a toy compression step)."""

    name = "half"

    def client(self, result, ctx):
        return dataclasses.replace(result, update={k: v.half() for k, v in result.update.items()})

    def server(self, results, ctx):
        return [dataclasses.replace(r, update={k: v.float() for k, v in r.update.items()}) for r in results]

    def after(self, old, new, ctx):
        return new


def test_communication_bytes_are_dtype_aware():
    pop, _ = _population()
    model = tiny_mlp()
    p_bytes = params_bytes(model.state_dict())
    plain = simulate(model, pop, LocalSGD(), get_strategy("fedavg"), _cfg(rounds=2))
    half = simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), _cfg(rounds=2), steps=[_Half()])
    for h in plain.history:
        assert h["bytes_down"] == 4 * p_bytes and h["bytes_up"] == 4 * p_bytes
    assert all(h["bytes_up"] == 2 * p_bytes for h in half.history)
    assert plain.bytes_down == 8 * p_bytes and half.bytes_up == plain.bytes_up // 2
    sc = simulate(tiny_mlp(), pop, ScaffoldClient(), get_strategy("scaffold", num_clients=8), _cfg(rounds=1))
    assert sc.history[0]["bytes_down"] == 8 * p_bytes and sc.history[0]["bytes_up"] == 8 * p_bytes  # + control variates


class _Spy(UpdateStep):
    name = "spy"

    def __init__(self, x):
        self.x = x
        self.seen = []

    def client(self, result, ctx):
        return result

    def server(self, results, ctx):
        for r in results:
            assert type(r) is ClientResult
            for t in [*r.update.values(), *r.extras.values()]:
                assert t.untyped_storage().data_ptr() != self.x.untyped_storage().data_ptr()
        self.seen.append(len(results))
        return list(results)

    def after(self, old, new, ctx):
        ctx.notes["spy/rounds"] = len(self.seen)
        if len(self.seen) == 2:
            ctx.stop = "spy asked to stop"
        return new


def test_server_sees_only_results_and_a_step_can_stop_the_run():
    pop, (x, _) = _population()
    spy = _Spy(x)
    res = simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), _cfg(), steps=[spy])
    assert spy.seen == [4, 4] and len(res.history) == 2 and res.stopped == "spy asked to stop"
    assert res.history[-1]["spy/rounds"] == 2


def test_memory_follows_the_cohort_not_the_population():
    """Only the cohort's data is ever materialized: the bytes copied per round are the same for
    a population of 1,000 and of 10,000 clients (no wall-clock or RSS assertion)."""
    copied = {}
    for n_clients in (1000, 10000):
        x = torch.randn(2 * n_clients, 4)
        y = torch.randint(0, 3, (2 * n_clients,))
        pop = Population(x, y, torch.arange(2 * n_clients).reshape(n_clients, 2))
        seen = []
        orig = pop.client

        def client(cid, orig=orig, seen=seen):
            d = orig(cid)
            seen.append(d.x.numel() * d.x.element_size() + d.y.numel() * d.y.element_size())
            return d

        pop.client = client  # type: ignore[method-assign]
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        cfg = SimulationConfig(rounds=3, clients_per_round=10, seed=0, progress=False, client_eval_max=10)
        simulate(model, pop, LocalSGD(batch_size=2), get_strategy("fedavg"), cfg, engine="vectorized")
        copied[n_clients] = sum(seen)
    # 3 rounds x 10 clients trained + 10 clients evaluated at the end + the one client the
    # vectorized engine's warm-up reads at start, 2 examples each
    assert copied[1000] == copied[10000] == 41 * 2 * (4 * 4 + 8)


def test_config_validation():
    with pytest.raises(ConfigError, match="exactly one"):
        SimulationConfig(rounds=1)
    with pytest.raises(ConfigError, match="dropout"):
        SimulationConfig(rounds=1, fraction=0.5, dropout=1.0)
    with pytest.raises(ConfigError, match="rounds"):
        SimulationConfig(rounds=0, fraction=0.5)


def test_time_budget_stops_the_run_and_says_so():
    from interlearn.federated.client import LocalSGD
    from interlearn.federated.server.simulation import SimulationConfig, simulate
    from interlearn.federated.strategies import get_strategy

    x, y = blobs(80)
    pop = Population(x, y, [list(range(i, 80, 4)) for i in range(4)])
    cfg = SimulationConfig(rounds=50, clients_per_round=2, seed=0, progress=False, time_budget_s=1e-9)
    res = simulate(tiny_mlp(), pop, LocalSGD(), get_strategy("fedavg"), cfg, engine="sequential", test=(x, y))
    assert len(res.history) == 1 and res.stopped == "time budget of 1e-09 s spent after round 1"
    assert "test_accuracy" in res.history[-1]  # the last round is evaluated like any last round
    with pytest.raises(ConfigError, match="time_budget_s=0"):
        SimulationConfig(rounds=1, clients_per_round=1, time_budget_s=0)


def test_the_result_names_the_engine_auto_chose_after_it_stopped():
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    pop = Population(x, y, torch.arange(40).reshape(10, 4))
    cfg = SimulationConfig(rounds=1, clients_per_round=2, seed=0, progress=False)
    res = simulate(torch.nn.Sequential(torch.nn.Linear(4, 3)), pop, LocalSGD(batch_size=2), get_strategy("fedavg"), cfg)
    assert res.engine.startswith("auto -> ") and "not started" not in res.engine
