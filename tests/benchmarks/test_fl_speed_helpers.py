"""Checks for the fl_speed benchmark's own pieces: the ratio/target summary and the
benchmark-only fused MLP prototype engine (it must train exactly like the library's engines)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "fl_peers"))

from fused_mlp_engine import FusedMLPEngine  # noqa: E402

from interlearn.federated.api import ClientData  # noqa: E402
from interlearn.federated.client import LocalSGD  # noqa: E402
from interlearn.federated.engines import get_engine  # noqa: E402
from interlearn.federated.params import model_params  # noqa: E402
from interlearn.models.mlp import mlp  # noqa: E402


def _cohort() -> list[ClientData]:
    g = torch.Generator().manual_seed(1)
    sizes = [23, 40, 17]  # unequal: exercises the padding masks
    return [ClientData(i, torch.rand(n, 12, generator=g), torch.randint(0, 5, (n,), generator=g)) for i, n in enumerate(sizes)]


@pytest.mark.parametrize("engine", ["sequential", "vectorized"])
def test_fused_prototype_matches_library_engines(engine: str) -> None:
    model = mlp(12, [16, 8], 5, seed=0)
    params = model_params(model)
    update = LocalSGD(epochs=2, batch_size=5, lr=0.1)
    cohort = _cohort()
    ref = get_engine(engine).run_cohort(model, update, params, cohort, {}, {}, [torch.Generator().manual_seed(7 + i) for i in range(3)])
    got = FusedMLPEngine().run_cohort(model, update, params, cohort, {}, {}, [torch.Generator().manual_seed(7 + i) for i in range(3)])
    for (r, _), (f, _) in zip(ref, got, strict=True):
        assert r.client_id == f.client_id and r.weight == f.weight
        for k in params:
            torch.testing.assert_close(f.update[k], r.update[k], atol=1e-5, rtol=1e-5)
        assert abs(f.metrics["loss"] - r.metrics["loss"]) < 1e-5


def test_fused_prototype_refuses_other_optimizers() -> None:
    model = mlp(12, [16], 5, seed=0)
    with pytest.raises(ValueError, match="plain SGD"):
        FusedMLPEngine().run_cohort(model, LocalSGD(momentum=0.9), model_params(model), _cohort(), {}, {}, [torch.Generator()] * 3)


def test_summary_ratios_and_targets() -> None:
    import fl_speed

    tools = {
        "interlearn_vectorized": {"wall_s": 10.0, "per_round_s": 0.5, "cpu_per_round_s": 0.4, "final_acc": 0.90},
        "pfl": {"wall_s": 30.0, "per_round_s": 1.5, "cpu_per_round_s": 0.6, "final_acc": 0.895},
        "flower": {"wall_s": 150.0, "per_round_s": 5.0, "cpu_per_round_s": None, "final_acc": 0.85},
    }
    out = fl_speed.summarize(tools, rounds=20, seed=0)
    assert out["speedup_vs_flower"] == pytest.approx(15.0)
    assert out["speedup_vs_pfl_per_round"] == pytest.approx(3.0)
    assert out["speedup_vs_pfl_cpu_per_round"] == pytest.approx(1.5)
    assert "speedup_vs_flower_cpu_per_round" not in out
    assert out["targets"]["2x_pfl_per_round"]["met"] is True
    # 15x < 20x, and a 5-point accuracy gap: not met on both counts
    assert out["targets"]["20x_flower_end_to_end"]["met"] is False
    assert out["targets"]["20x_flower_end_to_end"]["accuracy_gap_points"] == pytest.approx(5.0)
