"""Update validation: keys, shapes, dtypes, finite values, norm bound; rejection and skipping."""

from __future__ import annotations

import logging

import pytest
import torch
from protection_helpers import ctx, result, round_trip, template

from interlearn.errors import ConfigError, RoundSkipped
from interlearn.federated.api import ClientResult, UpdateStep
from interlearn.federated.protections.validation import ValidateUpdates


def _bad_results():
    ok = result(0)
    return [
        ok,
        ClientResult(1, {"w": torch.zeros(4, 3)}, 1.0),  # missing key
        ClientResult(2, {**ok.update, "extra": torch.zeros(1)}, 1.0),  # unexpected key
        ClientResult(3, {"w": torch.zeros(3, 4), "b": torch.zeros(3)}, 1.0),  # wrong shape
        ClientResult(4, {"w": torch.zeros(4, 3, dtype=torch.float64), "b": torch.zeros(3)}, 1.0),  # dtype
        ClientResult(5, {"w": torch.full((4, 3), float("nan")), "b": torch.zeros(3)}, 1.0),  # NaN
        ClientResult(6, {"w": torch.full((4, 3), float("inf")), "b": torch.zeros(3)}, 1.0),  # Inf
        ClientResult(7, {"w": torch.full((4, 3), 100.0), "b": torch.zeros(3)}, 1.0),  # norm
        ClientResult(8, ok.update, float("nan")),  # weight
        result(9),
    ]


def test_each_kind_of_bad_update_is_rejected_with_a_reason(caplog):
    step = ValidateUpdates(reference=template(), max_norm=50.0)
    c = ctx(round_=3)
    with caplog.at_level(logging.WARNING, logger="interlearn.federated.protections.validation"):
        valid = step.server(_bad_results(), c)
    assert [r.client_id for r in valid] == [0, 9]
    reasons = {e["client"]: e["reason"] for e in c.notes["rejected"]}
    assert "missing ['b']" in reasons[1]
    assert "unexpected ['extra']" in reasons[2]
    assert "shape (3, 4)" in reasons[3]
    assert "dtype torch.float64" in reasons[4]
    assert "non-finite" in reasons[5] and "non-finite" in reasons[6]
    assert "exceeds the bound 50" in reasons[7]
    assert "weight" in reasons[8]
    assert any("client 7" in line and "round 3" in line for line in c.log)
    assert any("update of client 5 rejected" in rec.message for rec in caplog.records)


def test_too_few_valid_skips_the_round_and_keeps_params():
    step = ValidateUpdates(reference=template(), min_valid=4)
    params = {k: torch.ones_like(v) for k, v in template().items()}
    with pytest.raises(RoundSkipped, match="only 3 of 10 updates are valid, 4 needed"):
        round_trip([step], params, _bad_results(), ctx())
    # a later good round proceeds from the untouched params
    new = round_trip([step], params, [result(i) for i in range(4)], ctx(1))
    assert not torch.equal(new["w"], params["w"])


def test_reference_from_round_notes_or_refreshed_after_a_round():
    step = ValidateUpdates()
    c = ctx()
    with pytest.raises(ConfigError, match="reference"):
        step.server([result(0)], c)
    c.global_params = template()
    assert len(step.server([result(0)], c)) == 1
    step.after(template(), template(), c)
    assert step.reference is not None and step.server([result(1)], ctx()) != []


def test_config_errors():
    with pytest.raises(ConfigError, match="min_valid"):
        ValidateUpdates(min_valid=0)
    with pytest.raises(ConfigError, match="max_norm"):
        ValidateUpdates(max_norm=-1.0)


class _Corrupt(UpdateStep):
    """A test step that makes some clients upload NaN."""

    name = "corrupt"

    def __init__(self, bad):
        self.bad = set(bad)

    def client(self, r, c):
        if r.client_id in self.bad:
            return ClientResult(
                r.client_id, {k: torch.full_like(v, float("nan")) for k, v in r.update.items()}, r.weight
            )
        return r

    def server(self, results, c):
        return list(results)

    def after(self, old, new, c):
        return new


@pytest.mark.slow
def test_in_the_round_loop_bad_updates_are_dropped_and_empty_rounds_skipped():
    from protection_helpers import toy_problem

    from interlearn.federated import LocalSGD, SimulationConfig, get_strategy, simulate

    model, pop, test = toy_problem()
    ref = {k: v.detach().clone() for k, v in model.named_parameters()}
    cfg = SimulationConfig(rounds=3, fraction=1.0, seed=0, progress=False)
    res = simulate(
        model,
        pop,
        LocalSGD(lr=0.2),
        get_strategy("fedavg"),
        cfg,
        steps=[_Corrupt({0, 5}), ValidateUpdates(reference=ref)],
        test=test,
    )
    assert all("skipped" not in h for h in res.history)
    assert all(sum("client 0 rejected" in line for line in h["log"]) == 1 for h in res.history)
    assert res.final_accuracy > 0.8
    model, pop, test = toy_problem()
    res = simulate(
        model,
        pop,
        LocalSGD(lr=0.2),
        get_strategy("fedavg"),
        cfg,
        steps=[_Corrupt(range(12)), ValidateUpdates(reference=ref)],
        test=test,
    )
    assert all("0 of 12 updates are valid" in h["skipped"] for h in res.history)
    assert all(torch.equal(res.params[k], ref[k]) for k in ref)
