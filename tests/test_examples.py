"""Every script in examples/ runs, with tiny arguments, in a fresh interpreter."""

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [  # the scripts, and those in example folders (examples/custom_algorithm/feddyn.py)
    pytest.param(name, marks=[pytest.mark.flower] if name.startswith("flower") else [])
    for name in sorted(p.relative_to(ROOT / "examples").as_posix() for p in (ROOT / "examples").glob("**/*.py"))
]


def _fake_mnist(root: Path, n_train: int = 80, n_test: int = 40) -> Path:
    rng = np.random.default_rng(0)
    d = root / "mnist"
    d.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        for kind, arr, magic in (
            ("images-idx3", rng.integers(0, 256, (n, 28, 28)), 0x803),
            ("labels-idx1", rng.integers(0, 10, n), 0x801),
        ):
            header = struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape)
            with gzip.open(d / f"{split}-{kind}-ubyte.gz", "wb") as fh:
                fh.write(header + arr.astype(np.uint8).tobytes())
    return root


def _args(name: str, data: Path) -> list[str]:
    tiny = {
        "custom_algorithm/feddyn.py": ["--rounds", "1"],
        "custom_algorithm/fednova.py": ["--rounds", "1"],
        "distill.py": ["--teacher-epochs", "1", "--student-epochs", "1"],
        "finetune.py": ["--pretrain-epochs", "1", "--epochs", "1", "--out", "runs/ft"],
        "multitask.py": ["--epochs", "1", "--methods", "equal,pcgrad", "--out", "runs/mt"],
        "keyboard.py": [
            "--data-dir",
            str(data),
            "--source",
            "tiny",
            "--max-users",
            "3",
            "--vocab-size",
            "40",
            "--embed-dim",
            "16",
            "--hidden",
            "64",
            "--rounds",
            "1",
            "--clients",
            "2",
            "--local-steps",
            "1",
            "--personalize-users",
            "2",
            "--personalize-steps",
            "0,1",
            "--test-users",
            "3",
            "--prefix",
            "to be or not to ",
        ],
        "flower_deploy.py": [
            "--data-dir",
            str(data),
            "--rounds",
            "1",
            "--clients",
            "2",
            "--examples-per-client",
            "20",
            "--test-examples",
            "20",
            "--run-dir",
            "runs/flower",
        ],
    }
    if name not in tiny:
        raise AssertionError(f"examples/{name} has no tiny arguments in tests/test_examples.py; add them so CI runs it")
    return tiny[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path, tiny_shakespeare_dir):
    if name == "flower_deploy.py":
        pytest.importorskip("flwr", reason="the Flower example needs interlearn[federated]")
        _fake_mnist(tiny_shakespeare_dir)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *_args(name, tiny_shakespeare_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"examples/{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    if name == "keyboard.py":
        assert "after personalizing" in proc.stdout and "on-device" in proc.stdout
        assert "with a local memory" in proc.stdout and "never uploaded" in proc.stdout
