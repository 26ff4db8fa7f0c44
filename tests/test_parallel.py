"""Data-parallel fit: one process vs two CPU processes launched by ``accelerate launch`` (gloo on
loopback) train the same model; checkpoints are written by process 0 only; resume works."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interlearn.parallel import Replicas

WORKER = Path(__file__).parent / "parallel" / "fit_worker.py"


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env["ACCELERATE_USE_CPU"] = "1"  # CPU processes (gloo) even on a GPU machine
    return env


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out: Path, processes: int) -> None:
    out.mkdir()
    if processes == 1:
        cmd = [sys.executable, str(WORKER), str(out)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            str(_port()),
            str(WORKER),
            str(out),
        ]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("parallel")
    _run(base / "one", 1)
    _run(base / "two", 2)
    return base


def test_replicas_single_process_is_identity():
    par = Replicas("cpu")
    idx = torch.arange(5)
    local, n, w = par.shard(idx)
    assert (par.world, par.rank, n, w) == (1, 0, 5, 1.0) and torch.equal(local, idx)


@pytest.mark.slow
def test_two_processes_train_the_same_model_as_one(runs):
    one, two = load_file(str(runs / "one" / "full.safetensors")), load_file(str(runs / "two" / "full.safetensors"))
    assert json.loads((runs / "two" / "writes.1.json").read_text())["processes"] == 2
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5
    h1, h2 = (json.loads((runs / d / "report.json").read_text())["full"] for d in ("one", "two"))
    for a, b in zip(h1, h2, strict=True):  # losses and validation metrics reduced over both processes
        for k in a:
            assert a[k] == pytest.approx(b[k], abs=1e-5), k


@pytest.mark.slow
def test_checkpoints_are_written_by_process_zero_only(runs):
    w0, w1 = (json.loads((runs / "two" / f"writes.{r}.json").read_text())["writes"] for r in (0, 1))
    assert w0 == 2 + 2 and w1 == 0  # part: epochs 0-1; resumed: epochs 2-3


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["one", "two"])
def test_resume_equals_uninterrupted(runs, mode):
    full, resumed = (load_file(str(runs / mode / f"{n}.safetensors")) for n in ("full", "resumed"))
    assert max(float((full[k] - resumed[k]).abs().max()) for k in full) < 1e-6
    rep = json.loads((runs / mode / "report.json").read_text())
    assert [h["train_loss"] for h in rep["full"]] == pytest.approx([h["train_loss"] for h in rep["resumed"]], abs=1e-6)
