"""Checks for the fl_matrix benchmark's own pieces: weight-name conversions between interlearn's
models and the peers' plain PyTorch ones, and the ratio/target summary."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
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


def test_summary_ratios_and_targets() -> None:
    import fl_matrix

    res = {
        "mnist_2nn": {
            "auto": {"s_per_round": 0.1, "end_to_end_s": 4.0},
            "sequential": {"s_per_round": 0.4, "end_to_end_s": 9.0},
            "multicore": {"s_per_round": 0.095, "end_to_end_s": 4.0},
            "flower": {"s_per_round": 1.0, "end_to_end_s": 40.0},
            "pfl": {"s_per_round": 0.5, "end_to_end_s": 12.0},
        },
        "femnist_cnn": {"auto": {"s_per_round": 4.0, "end_to_end_s": 50.0}, "flower": {"error": "exit 1"}},
    }
    out = fl_matrix.summarize(res, {"mnist_2nn": 0.05, "femnist_cnn": 3.0}, {"s_per_round": 0.9, "end_to_end_s": 38.0})
    t = out["targets"]
    assert out["auto_vs_best"]["mnist_2nn"] == {"ratio": pytest.approx(0.1 / 0.095), "best": "multicore", "met": True}
    assert t["mnist_2nn: auto <= 1.5x floor (2 cores)"] == {"value": pytest.approx(2.0), "met": False}
    assert t["mnist_2nn: >= 5x Flower end to end"] == {"value": pytest.approx(9.5), "met": True}  # the faster Flower
    assert t["mnist_2nn: >= 3x pfl per round"] == {"value": pytest.approx(5.0), "met": True}
    assert t["femnist_cnn: auto <= 1.5x floor (2 cores)"]["met"] is True
    assert "femnist_cnn: faster than flower per round" not in t  # a failed peer is not a ratio
    assert t["flower harness within 20% of `flwr run`"] == {"value": pytest.approx(1.0 / 0.9), "met": True}
    assert res["mnist_2nn"]["auto"]["speedup_vs_pfl_per_round"] == pytest.approx(5.0)
    # Flower at its best: the faster of the harness (1.0 s, 40 s) and `flwr run` (0.9 s, 38 s)
    assert out["vs_flower_at_its_best"]["mnist_2nn"] == {
        "per_round": pytest.approx(9.0),
        "end_to_end": pytest.approx(9.5),
    }
    assert "femnist_cnn" not in out["vs_flower_at_its_best"]


def test_first_round_is_judged_per_example() -> None:
    """A first round with twice the examples of the others is not a warm-up tax."""
    import fl_matrix

    parts = [list(range(n)) for n in (4, 2, 2, 8)]
    assert fl_matrix.round_examples(parts, np.array([[0, 3], [1, 2], [1, 2]])) == [12, 4, 4]
    res = {"w": {"auto": {"round_s": [3.0, 1.0, 1.0]}, "pfl": {"round_s": [6.0, 1.0, 1.0]}}}
    warm = fl_matrix.first_round(res, {"w": {"examples_per_round": [12, 4, 4]}})
    assert warm["w"]["auto"] == {"time": pytest.approx(3.0), "per_example": pytest.approx(1.0)}
    assert warm["w"]["pfl"]["per_example"] == pytest.approx(2.0)
    out = fl_matrix.summarize(res, {}, None, {"w": {"examples_per_round": [12, 4, 4]}})
    assert out["targets"]["w: auto first round <= 1.2x steady (per example)"] == {
        "value": pytest.approx(1.0),
        "met": True,
    }
