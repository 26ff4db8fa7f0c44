"""Checks for the fl_matrix benchmark's own pieces: weight-name conversions between interlearn's
models and the peers' plain PyTorch ones, and the ratio/target summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "fl_peers"))


@pytest.mark.parametrize("model", ["2nn", "femnist_cnn", "char_lstm"])
def test_peer_models_compute_what_interlearns_compute(model):
    from common import MODELS
    from interlearn_worker import from_peer, interlearn_model, to_peer

    from interlearn.federated.params import model_params

    cfg = {"model": model, "model_kwargs": {"vocab": 11} if model == "char_lstm" else {}}
    torch.manual_seed(0)
    ours = interlearn_model(cfg)
    peer = MODELS[model](**cfg["model_kwargs"])
    peer.load_state_dict(to_peer(model, model_params(ours)))
    x = torch.randint(0, 11, (3, 7)) if model == "char_lstm" else torch.rand(3, 784)
    ours.eval()
    torch.testing.assert_close(peer(x), ours(x), atol=1e-5, rtol=1e-5)
    back = from_peer(ours, model, peer.state_dict())
    assert all(torch.equal(back[k], v) for k, v in model_params(ours).items())


def _runs(*rates: float) -> dict:
    return {
        "us_per_example": {
            "median": sorted(rates)[len(rates) // 2],
            "min": min(rates),
            "max": max(rates),
            "runs": list(rates),
        }
    }


def test_rates_are_pooled_per_example_over_the_same_rounds() -> None:
    import fl_matrix

    # round 1 (the warm-up) is left out; rounds 2..3 hold 4 + 12 examples in 1 + 2 seconds
    assert fl_matrix.us_per_example([9.0, 1.0, 2.0], [10, 4, 12]) == pytest.approx(1e6 * 3 / 16)
    pooled = fl_matrix.pool(
        [
            {"round_s": [9.0, 1.0, 2.0], "end_to_end_s": 20.0, "final_acc": 0.5, "engine": "e"},
            {"error": "exit 1"},
            {"round_s": [9.0, 2.0, 4.0], "end_to_end_s": 30.0, "final_acc": 0.5, "engine": "e"},
        ],
        [10, 4, 12],
    )
    assert pooled["us_per_example"]["runs"] == pytest.approx([1e6 * 3 / 16, 1e6 * 6 / 16])
    assert pooled["repeats"] == 2 and pooled["failed_repeats"] == 1
    assert pooled["first_round_us_per_example"]["median"] == pytest.approx(1e6 * 9 / 10)


def test_targets_need_the_whole_range_and_ratios_pair_repeats() -> None:
    import fl_matrix

    res = {
        "mnist_2nn": {
            "auto": _runs(10.0, 11.0, 12.0) | {"engine": "auto -> multicore (2 workers x vectorized) (why)"},
            "multicore": _runs(10.0, 10.5, 12.0),
            "sequential": _runs(20.0, 20.0, 20.0),
            "plain": _runs(19.0, 19.0, 19.0),
            "pfl": _runs(40.0, 33.0, 36.0),
            "flower": {"error": "exit 1"},
        }
    }
    out = fl_matrix.summarize(res, {"mnist_2nn": {"us_per_example": 8.0}}, None)
    t = out["targets"]
    picked = t["mnist_2nn: auto within 2% of the engine it picks (multicore)"]
    assert picked["value"] == pytest.approx(1.0) and picked["max"] == pytest.approx(11 / 10.5) and not picked["met"]
    assert t["mnist_2nn: auto <= 1.5x roofline floor"]["max"] == pytest.approx(1.5)
    assert t["mnist_2nn: auto <= 1.5x roofline floor"]["met"]  # the whole range is at or below 1.5
    assert t["mnist_2nn: sequential <= 1.1x plain PyTorch loop"]["met"]  # 20 / 19 = 1.05
    vs_pfl = t["mnist_2nn: auto >= 3x pfl per example"]
    assert vs_pfl["min"] == pytest.approx(3.0) and vs_pfl["met"]  # 40/10, 33/11, 36/12
    assert not any("flower" in k for k in t)  # a failed peer is not a ratio
    assert fl_matrix.picked_tool("sequential") == "sequential" and fl_matrix.picked_tool(None) is None
