"""Checks for the fl_speed benchmark's own pieces: the ratio/target summary. (The fused MLP
engine it benchmarks is library code, tested in tests/federated/test_fused_mlp.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "fl_peers"))


def test_summary_ratios_and_targets() -> None:
    import fl_speed

    tools = {
        "interlearn_vectorized": {"wall_s": 10.0, "per_round_s": 0.5, "cpu_per_round_s": 0.4, "final_acc": 0.90},
        "interlearn_fused_mlp": {"wall_s": 7.5, "per_round_s": 0.25, "cpu_per_round_s": 0.2, "final_acc": 0.90},
        "pfl": {"wall_s": 30.0, "per_round_s": 1.5, "cpu_per_round_s": 0.6, "final_acc": 0.895},
        "flower": {"wall_s": 150.0, "per_round_s": 5.0, "cpu_per_round_s": None, "final_acc": 0.85},
    }
    out = fl_speed.summarize(tools, rounds=20, seed=0)
    assert out["speedup_vs_flower"] == pytest.approx(15.0)
    assert out["speedup_vs_pfl_per_round"] == pytest.approx(3.0)
    assert out["speedup_vs_pfl_cpu_per_round"] == pytest.approx(1.5)
    assert "speedup_vs_flower_cpu_per_round" not in out
    assert out["fused_mlp_speedup_vs_flower"] == pytest.approx(20.0)
    assert out["fused_mlp_speedup_vs_pfl_per_round"] == pytest.approx(6.0)
    assert out["targets"]["2x_pfl_per_round"]["met"] is True
    # 15x < 20x, and a 5-point accuracy gap: not met on both counts
    assert out["targets"]["20x_flower_end_to_end"]["met"] is False
    assert out["targets"]["20x_flower_end_to_end"]["accuracy_gap_points"] == pytest.approx(5.0)
