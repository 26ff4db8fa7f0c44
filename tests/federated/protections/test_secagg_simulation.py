"""Secure aggregation inside the real round loop, on the sequential and vectorized engines."""

from __future__ import annotations

import pytest
import torch
from protection_helpers import toy_problem

from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate
from interlearn.federated.protections.privacy import ClipUpdates
from interlearn.federated.protections.secagg import SecureAggregation
from interlearn.federated.protections.validation import ValidateUpdates

pytest.importorskip("cryptography")


def _run(engine, steps, rounds=3, dropout=0.0):
    model, pop, test = toy_problem()
    return simulate(
        model,
        pop,
        LocalSGD(epochs=1, batch_size=10, lr=0.2),
        get_strategy("fedavg"),
        SimulationConfig(rounds=rounds, clients_per_round=6, seed=0, progress=False, dropout=dropout),
        engine=engine,
        steps=steps,
        test=test,
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sequential", "vectorized"])
def test_secure_aggregation_gives_the_same_model_as_plain_fedavg(engine):
    plain = _run(engine, [])
    model, _, _ = toy_problem()
    ref = {k: v.detach() for k, v in model.named_parameters()}
    secure = _run(engine, [ValidateUpdates(reference=ref), SecureAggregation()])
    for k in plain.params:
        assert torch.allclose(plain.params[k], secure.params[k], atol=1e-4)
    assert all(h["secagg/survivors"] == 6 for h in secure.history)
    assert all(h["secagg/bytes_up"] > 0 for h in secure.history)
    assert all(h["bytes_up"] == h["secagg/bytes_up"] for h in secure.history)  # real bytes, not placeholders


def test_validation_takes_its_reference_from_the_round_loop():
    res = _run("sequential", [ValidateUpdates(max_norm=1e6)], rounds=2)
    assert all(h["reported"] == 6 and "skipped" not in h for h in res.history)


@pytest.mark.slow
def test_protocol_dropouts_are_recovered_in_the_loop_and_below_threshold_skips():
    res = _run("sequential", [ClipUpdates(5.0), SecureAggregation(dropout=0.3, threshold=3)], rounds=4)
    assert any(h.get("log") for h in res.history)  # some dropouts happened and were unmasked
    assert all("skipped" not in h for h in res.history)
    model, _, _ = toy_problem()
    init = {k: v.detach().clone() for k, v in model.named_parameters()}
    failed = _run("sequential", [SecureAggregation(dropout=0.9, threshold=6)], rounds=2)
    assert all("secure aggregation failed" in h["skipped"] for h in failed.history)
    for k in init:  # nothing was aggregated
        assert torch.equal(failed.params[k], init[k])
