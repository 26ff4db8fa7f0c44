"""benchmarks/gpu_check.py on a machine without CUDA: it skips with its reason and exits 0; with
the CPU standing in for the GPU its checks run end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run, not skip")
def test_without_cuda_it_skips_and_says_why(tmp_path, capsys):
    import gpu_check

    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["skipped"] is True and "CUDA" in got["reason"] and "machine with a CUDA GPU" in got["reason"]
    assert got["equality"] == {} and got["rates"] == {}
    assert "skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_on_the_cpu_as_a_stand_in_every_step_runs(tmp_path):
    import gpu_check

    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--models", "mnist_2nn", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["skipped"] is False and got["all_equal"] is True and got["left_out"] == []
    row = got["equality"]["mnist_2nn"]
    assert {e: row[e]["status"] for e in row} == {
        "sequential": "equal",
        "vectorized": "equal",
        "auto": "equal",
        "multicore": "equal",  # on the CPU it runs; on CUDA it says it cannot
        "ray": "not run",
    }
    rates = got["rates"]["mnist_2nn"]
    assert rates["federated"]["sequential"]["examples_per_s"] > 0
    assert rates["fit"]["10@fp32"]["us_per_example"] > 0 and "CUDA only" in rates["fit"]["10@amp"]["status"]


def test_a_bad_model_name_is_refused(tmp_path):
    import gpu_check

    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "cpu", "--models", "resnet", "--json", str(tmp_path / "g.json")])
