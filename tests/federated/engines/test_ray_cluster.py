"""The Ray engine on a real two-node cluster started with ``ray start``, on this machine.

A head (``ray start --head --num-cpus=1``) and a second node (``ray start --address=HEAD
--num-cpus=1``) join one cluster; ``RayEngine(address=HEAD)`` connects to it as a user does on
real machines. The run must equal the sequential engine within 1e-5, and the records must show
clients on both nodes.

Both ``ray start`` commands run with ``--block`` in a process group of their own, which the
teardown ends by its id: ``ray stop`` would stop every Ray process on the machine, other users'
too. Token authentication uses a fresh random token for this cluster only; the driver runs in a
subprocess (this file run as a script), since Ray reads its authentication settings when it is
imported.

Starting and stopping two nodes takes about a minute on a small machine, so this test runs in
``make test-cluster`` (``INTERLEARN_TEST_CLUSTER=1``), not in ``make test``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

ray = pytest.importorskip("ray", reason="the ray engine needs the federated extra (ray)")

from interlearn.federated.client import LocalSGD  # noqa: E402
from interlearn.federated.engines.ray_engine import RayEngine  # noqa: E402
from interlearn.federated.server.simulation import SimulationConfig, simulate  # noqa: E402
from interlearn.federated.strategies import get_strategy  # noqa: E402
from interlearn.federated.synthetic import SyntheticPopulation  # noqa: E402

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("INTERLEARN_TEST_CLUSTER") != "1",
        reason="starts a two-node Ray cluster (about a minute): run `make test-cluster`",
    ),
]

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a ``ray start --block`` and everything it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="interlearn-ray-")
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
        "OMP_NUM_THREADS": "1",
    }
    common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        head = [RAY, "start", "--head", f"--port={port}", f"--temp-dir={tmp}", "--include-dashboard=false", *common]
        with open(Path(tmp) / "head.log", "wb") as log:
            procs.append(subprocess.Popen(head, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 120
        while True:  # the head's GCS listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    pytest.fail(f"the Ray head did not start: {(Path(tmp) / 'head.log').read_text()[-2000:]}")
                time.sleep(0.5)
        worker = [RAY, "start", f"--address=127.0.0.1:{port}", *common]
        with open(Path(tmp) / "node.log", "wb") as log:
            procs.append(
                subprocess.Popen(worker, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        yield f"127.0.0.1:{port}", env
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(60, 16), nn.ReLU(), nn.Linear(16, 10))


POP = dict(num_clients=10_000, seed=0, size_mu=2.0, size_sigma=1.0, min_size=5, max_size=40)
UPDATE = LocalSGD(epochs=1, batch_size=10, lr=0.05)
CONFIG = SimulationConfig(rounds=2, clients_per_round=6, client_eval=False, seed=1, progress=False)


def drive(address: str, out: str) -> None:
    """The driver: join the cluster, wait for both nodes, run the simulation, save params and records."""
    engine = RayEngine(address=address, init_kwargs={"runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1"}}})
    try:
        engine.start()
        deadline = time.monotonic() + 120
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:  # the second node joins
            if time.monotonic() > deadline:
                raise RuntimeError(f"the second node never joined: {ray.nodes()}")
            time.sleep(0.5)
        pop = SyntheticPopulation(**POP)  # type: ignore[arg-type]
        got = simulate(_model(), pop, UPDATE, get_strategy("fedavg"), CONFIG, engine=engine)
    finally:
        engine.shutdown()
    torch.save({"params": got.params, "history": got.history}, out)


def test_clients_spread_over_two_nodes_and_the_run_equals_sequential(cluster, tmp_path):
    address, env = cluster
    out = tmp_path / "driver.pt"
    proc = subprocess.run(
        [sys.executable, __file__, address, str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = torch.load(out)
    pop = SyntheticPopulation(**POP)  # type: ignore[arg-type]
    ref = simulate(_model(), pop, UPDATE, get_strategy("fedavg"), CONFIG, engine="sequential")
    assert max(float((ref.params[k] - got["params"][k]).abs().max()) for k in ref.params) < 1e-5
    nodes: set[str] = set()
    for h in got["history"]:
        assert sum(h["engine_nodes"].values()) == h["reported"] == 6
        nodes |= set(h["engine_nodes"])
    assert len(nodes) == 2, f"every client ran on one node: {[h['engine_nodes'] for h in got['history']]}"


if __name__ == "__main__":
    drive(sys.argv[1], sys.argv[2])
