"""The recorded fl_privacy benchmark: every point says which mechanism its epsilon is for, and the
canary audit never exceeds the accountant's bound by more than its stated confidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "fl_privacy.json"


def _load() -> dict:
    if not RESULTS.exists():
        pytest.skip(f"{RESULTS} not written yet (python benchmarks/fl_privacy.py --data-dir D --json {RESULTS})")
    return json.loads(RESULTS.read_text())


def test_points_carry_mechanism_accountant_and_both_epsilons():
    data = _load()
    assert data["points"], "no DP points"
    for p in data["points"]:
        assert p["sampling"] == "poisson" and "rdp" in p["accountant"]
        assert p["epsilon"] > 0 and p["empirical_epsilon"] >= 0
        assert p["empirical_epsilon_low"] <= p["empirical_epsilon"] <= p["empirical_epsilon_high"]
        assert 0 < p["confidence"] < 1


def test_audit_stays_within_the_accountants_bound_up_to_its_interval():
    data = _load()
    for p in data["points"]:
        # the lower end of the audit's interval (either observer) never exceeds the bound
        assert p["empirical_epsilon_low"] <= p["epsilon"], p
        assert p["empirical_epsilon_final_low"] <= p["epsilon"], p
        assert p["exceeds_bound"] is False
    assert data["audit_within_bound"] is True
    # and it is not blind: with (practically) no noise the canaries are found
    assert data["no_noise_audit"]["empirical_epsilon_low"] > 5
