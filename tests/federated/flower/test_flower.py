"""Flower deployment with real processes: a ``flower-superlink`` and three ``flower-supernode``s
on loopback (insecure mode), runs submitted with ``flwr run``; the final model must equal the
in-process sequential engine's for the same clients and seed. All processes are stopped in the
fixture's teardown, also when a test fails.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
import types
from pathlib import Path

import pytest
import torch

pytest.importorskip("flwr", reason="Flower deployment needs the federated extra (flwr)")

from interlearn.checkpoint import load_checkpoint
from interlearn.federated.engines import SequentialEngine
from interlearn.federated.flower import FINAL, LocalFederation, RemotePopulation, run_job, write_flower_app

pytestmark = [pytest.mark.flower, pytest.mark.slow]

APP_SOURCE = '''
"""A tiny federation: 3 clients, an MLP, FedAvg; each node takes its partition by partition-id."""
import torch
from torch import nn

from interlearn.federated.client import LocalSGD
from interlearn.federated.protections.compression import CompressUpdates
from interlearn.federated.flower import FlowerJob, job_client_app, job_server_app
from interlearn.federated.protections.privacy import ClipUpdates, GaussianNoise
from interlearn.federated.protections.secagg import SecureAggregation
from interlearn.federated.population import Population
from interlearn.federated.server.simulation import SimulationConfig
from interlearn.federated.strategies import get_strategy

NUM_CLIENTS = 3


def model_fn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def population():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 5, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return Population(x, y, [torch.arange(0, 15), torch.arange(15, 35), torch.arange(35, 60)])


def protections():
    """Adaptive clipping, local DP noise, top-k compression with error feedback: client hooks."""
    clip = ClipUpdates(0.5, adaptive=True, learning_rate=0.5)
    return [clip, GaussianNoise(clip, 0.2, mode="local"), CompressUpdates("topk", ratio=0.3)]


def secure():
    """Clipping, then secure aggregation: the server only ever sees the masked sum."""
    return [ClipUpdates(1.0), SecureAggregation(threshold=2)]


STEPS = {0: lambda: (), 1: protections, 2: secure}


def job(context):
    rc = dict(context.run_config or {})
    return FlowerJob(
        model_fn=model_fn,
        client_update=LocalSGD(epochs=2, batch_size=5, lr=0.1),
        strategy_fn=lambda: get_strategy("fedavg"),
        config=SimulationConfig(rounds=int(rc.get("num-rounds", 2)), clients_per_round=NUM_CLIENTS, seed=7, progress=True),
        client_data=lambda ctx: population().client(int(ctx.node_config["partition-id"])),
        num_clients=NUM_CLIENTS,
        steps_fn=STEPS[int(rc.get("protect", 0))],
        round_timeout_s=float(rc.get("round-timeout", 90.0)),
        discovery_timeout_s=120.0,
    )


server_app = job_server_app(job)
client_app = job_client_app(job)
'''


def _load_app_module(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("interlearn_flower_test_app", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    work = tmp_path_factory.mktemp("flower")
    app = write_flower_app(
        work / "app", APP_SOURCE, {"num-rounds": 2, "run-dir": "", "round-timeout": 90.0, "protect": 0}
    )
    fed = LocalFederation(work / "deploy", [{"partition-id": i} for i in range(3)])
    try:
        fed.start()
        yield fed, app, work
    finally:
        fed.stop()
        assert fed.superlink is None and fed.supernodes == []


def _records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(s) for s in path.read_text().splitlines() if s.strip()]


def _in_process(app: Path, run_config: dict, engine=None):
    """The same job run in this process (sequential engine unless given): the reference."""
    mod = _load_app_module(app / "interlearn_flower_app.py")
    job = mod.job(types.SimpleNamespace(run_config=run_config))
    return run_job(job, engine or SequentialEngine(), mod.population(), None)


def _max_diff(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_rounds_on_real_supernodes_equal_in_process(federation):
    fed, app, work = federation
    run_dir = work / "run-equal"
    fed.run(app, {"run-dir": str(run_dir), "num-rounds": 2}, timeout_s=420)
    params, meta = load_checkpoint(run_dir / FINAL)
    assert meta["engine"] == "flower" and meta["rounds"] == 2
    assert [r["reported"] for r in _records(run_dir)] == [3, 3]

    mod = _load_app_module(app / "interlearn_flower_app.py")
    job = mod.job(types.SimpleNamespace(run_config={"num-rounds": 2}))
    ref = run_job(job, SequentialEngine(), mod.population(), None)
    assert _max_diff(ref.params, params) < 1e-5
    assert _max_diff(ref.params, mod.model_fn().state_dict()) > 1e-3  # it trained


def test_client_protections_run_on_the_nodes_and_equal_in_process(federation):
    """Clip (adaptive), local noise and compression run on the SuperNodes; the server only
    decompresses and aggregates. Same model as the in-process run with the same steps."""
    fed, app, work = federation
    run_dir = work / "run-protect"
    fed.run(app, {"run-dir": str(run_dir), "num-rounds": 2, "protect": 1}, timeout_s=420)
    params, _ = load_checkpoint(run_dir / FINAL)
    records = _records(run_dir)
    assert [r["reported"] for r in records] == [3, 3]
    assert all(r["compress/bytes_up"] > 0 for r in records)  # notes that only the nodes' hooks write
    assert records[0]["clip/norm"] != records[1]["clip/norm"]  # the adapted norm reached the nodes

    assert _max_diff(_in_process(app, {"num-rounds": 2, "protect": 1}).params, params) < 1e-5
    assert _max_diff(_in_process(app, {"num-rounds": 2}).params, params) > 1e-3  # the protections changed the model


def test_secure_aggregation_runs_over_flower_messages(federation):
    """The protocol's four rounds as query.secagg messages to the SuperNodes (their keys and
    shares stay in each node's context.state); same model as the in-process protocol."""
    fed, app, work = federation
    run_dir = work / "run-secagg"
    fed.run(app, {"run-dir": str(run_dir), "num-rounds": 2, "protect": 2}, timeout_s=420)
    params, _ = load_checkpoint(run_dir / FINAL)
    records = _records(run_dir)
    assert [r["secagg/survivors"] for r in records] == [3, 3]
    assert all(r["secagg/bytes_up"] > r["bytes_down"] / 3 for r in records)  # masked vectors + protocol messages

    assert _max_diff(_in_process(app, {"num-rounds": 2, "protect": 2}).params, params) < 1e-5


class _DropFromRound(SequentialEngine):
    """Reference for the kill test: the sequential engine losing ``victim`` from round ``start``."""

    def __init__(self, victim: int, start: int) -> None:
        super().__init__(warmup=False)
        self.victim, self.from_round, self.round = victim, start, 0

    def run_cohort(self, task):
        self.round += 1
        keep = [
            (c, g) for c, g in zip(task.clients, task.generators) if self.round < self.from_round or c != self.victim
        ]
        return super().run_cohort(
            dataclasses.replace(task, clients=[c for c, _ in keep], generators=[g for _, g in keep])
        )


def test_killed_supernode_is_a_dropout(federation):
    fed, app, work = federation
    run_dir = work / "run-kill"
    proc = fed.start_run(app, {"run-dir": str(run_dir), "num-rounds": 2, "round-timeout": 120.0})
    try:
        deadline = time.monotonic() + 300
        while not _records(run_dir) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _records(run_dir), "round 1 never finished"
        fed.kill_supernode(2)  # SIGKILL while round 2 is being dispatched
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    records = _records(run_dir)
    assert [r["reported"] for r in records] == [3, 2]
    params, _ = load_checkpoint(run_dir / FINAL)
    mod = _load_app_module(app / "interlearn_flower_app.py")
    job = mod.job(types.SimpleNamespace(run_config={"num-rounds": 2}))
    ref = run_job(job, _DropFromRound(victim=2, start=2), mod.population(), None)
    assert _max_diff(ref.params, params) < 1e-5


def test_remote_population_checks_ids():
    pop = RemotePopulation({0: 5, 1: 7})
    assert len(pop) == 2 and pop.sizes.tolist() == [5, 7] and len(pop.client(1)) == 0
    from interlearn.errors import ConfigError

    with pytest.raises(ConfigError, match="partition-id"):
        RemotePopulation({0: 5, 2: 7})


def test_flower_simulation_runtime_equals_in_process(tmp_path):
    """The same job on Flower's Simulation Runtime (virtual SuperNodes on Ray actors)."""
    pytest.importorskip("ray", reason="Flower's simulation runtime runs on Ray")
    from interlearn.federated.flower import run_flower_simulation

    (tmp_path / "simapp.py").write_text(APP_SOURCE)
    mod = _load_app_module(tmp_path / "simapp.py")
    run_flower_simulation(
        mod.job,
        num_supernodes=3,
        run_dir=tmp_path / "run",
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": 2}},
    )
    params, meta = load_checkpoint(tmp_path / "run" / FINAL)
    ref = run_job(mod.job(types.SimpleNamespace(run_config={})), SequentialEngine(), mod.population(), None)
    assert meta["rounds"] == 2 and _max_diff(ref.params, params) < 1e-5


def test_codec_round_trips_results_and_generators():
    from interlearn.errors import UpdateRejected
    from interlearn.federated.api import ClientResult
    from interlearn.federated.flower.codec import (
        content_to_result,
        generator_to_record,
        record_to_generator,
        result_to_content,
    )

    res = ClientResult(
        4, {"w": torch.randn(3, 2), "b": torch.randn(2)}, 17.0, {"loss": 0.25}, extras={"c": torch.ones(2)}
    )
    back = content_to_result(result_to_content(res))
    assert back.client_id == 4 and back.weight == 17.0 and back.metrics == {"loss": 0.25}
    assert all(torch.equal(back.update[k], res.update[k]) for k in res.update)
    assert torch.equal(back.extras["c"], res.extras["c"])
    g = torch.Generator().manual_seed(11)
    torch.rand(3, generator=g)
    g2 = record_to_generator(generator_to_record(g))
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=g2))
    from flwr.app import RecordDict

    with pytest.raises(UpdateRejected, match="update"):
        content_to_result(RecordDict())


def test_write_flower_app_and_config_values(tmp_path):
    import tomllib

    from interlearn.errors import ConfigError
    from interlearn.federated.flower.deploy import toml_value

    app = write_flower_app(tmp_path / "app", "server_app = 1\nclient_app = 2\n", {"num-rounds": 3, "run-dir": "/x"})
    conf = tomllib.loads((app / "pyproject.toml").read_text())
    assert conf["tool"]["flwr"]["app"]["config"] == {"num-rounds": 3, "run-dir": "/x"}
    assert conf["tool"]["flwr"]["app"]["components"]["serverapp"] == "interlearn_flower_app:server_app"
    assert toml_value(True) == "true" and toml_value('a"b') == '"a\\"b"'
    with pytest.raises(ConfigError, match="run config value"):
        toml_value([1, 2])
