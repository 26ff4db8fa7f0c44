"""benchmarks/personalization.py end to end in its smoke mode (tiny data, tiny models, 2 rounds):
it trains its own global models into a cache, writes the issue's JSON keys, and reuses the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "weighted_mean_acc",
    "mean_gain",
    "median_gain",
    "improved_fraction",
    "hurt_fraction",
    "unchanged_fraction",
    "bottom_decile_acc",
    "bytes_per_user",
    "ms_per_prediction",
}


def _run(data: Path, out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src")}
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "personalization.py"),
        "--data-dir",
        str(data),
        "--smoke",
        "--datasets",
        "shakespeare_chars,shakespeare_words",
        "--steps",
        "1,2",
        "--latency-repeats",
        "2",
        "--cache-dir",
        str(cache),
        "--json",
        str(out),
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_personalization_benchmark_smoke(tmp_path, tiny_shakespeare_dir):
    out, cache = tmp_path / "results" / "p.json", tmp_path / "cache"
    proc = _run(tiny_shakespeare_dir, out, cache)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    for dataset in ("shakespeare_chars", "shakespeare_words"):
        methods = res["results"][dataset]
        assert {"global", "finetune", "fedrep_head", "ditto", "memory", "best"} <= set(methods)
        for m, row in methods.items():
            assert set(row) >= KEYS, (dataset, m)
        assert methods["global"]["mean_gain"] == 0 and methods["global"]["bytes_per_user"] == 0
        info = res["datasets"][dataset]
        assert info["global_model"]["rounds"] == 2 and info["users"]["evaluated"] >= 1
        assert (out.parent / f"personalization_{dataset}.png").is_file()
    assert res["seeds"]["global_model"] == 0
    assert (cache / "shakespeare_chars" / "global").is_dir()
    again = _run(tiny_shakespeare_dir, tmp_path / "again.json", cache)  # the cached global models are reused
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((tmp_path / "again.json").read_text())["results"]

    def timeless(r: dict) -> dict:
        return {
            d: {m: {k: v for k, v in row.items() if k != "ms_per_prediction"} for m, row in ms.items()}
            for d, ms in r.items()
        }

    assert timeless(rerun) == timeless(res["results"])  # deterministic, from the same cached models
