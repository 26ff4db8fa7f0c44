"""Paired gains over seeds, the verdicts and the boundary of a learning curve."""

import math

import pytest

from interlearn.errors import ConfigError
from interlearn.scenarios.stats import boundary, gain_verdict, paired_gain


def test_the_gain_is_paired_by_seed():
    g = paired_gain([0.9, 0.8, 0.7], [0.8, 0.7, 0.6], [0, 1, 2])
    # the same +0.1 on every seed: no spread, although the accuracies differ a lot between seeds
    assert g.mean == pytest.approx(0.1) and g.se == pytest.approx(0.0, abs=1e-12)
    assert g.significant
    assert g.row()["seeds"] == [0, 1, 2] and len(g.row()["gain_per_seed"]) == 3


def test_a_gain_within_twice_its_standard_error_is_not_claimed():
    g = paired_gain([0.82, 0.78, 0.83], [0.80, 0.80, 0.80], [0, 1, 2])
    assert 0 < g.mean < 2 * g.se and not g.significant
    assert "does not help" in gain_verdict(g, "transfer")
    assert gain_verdict(paired_gain([0.9, 0.91, 0.92], [0.8, 0.8, 0.8], [0, 1, 2]), "transfer").startswith(
        "transfer helps"
    )


def test_one_seed_never_shows_a_gain():
    g = paired_gain([0.9], [0.5], [0])
    assert math.isnan(g.se) and not g.significant


def test_the_boundary_is_where_the_gain_stops_for_good():
    yes = paired_gain([0.9, 0.91, 0.92], [0.8, 0.8, 0.8], [0, 1, 2])
    no = paired_gain([0.8, 0.81, 0.79], [0.8, 0.8, 0.8], [0, 1, 2])
    assert boundary([1, 3, 10, 30], [yes, no, yes, no]) == 30
    assert boundary([1, 3, 10, 30], [yes, yes, no, no]) == 10
    assert boundary([1, 3, 10], [yes, yes, yes]) is None
    assert boundary([1, 3, 10, 30], [no, no, yes, yes], side="low") == 3
    assert boundary([1, 3], [yes, yes], side="low") is None


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="one result and one baseline per seed"):
        paired_gain([0.9], [0.8, 0.7], [0, 1])
    with pytest.raises(ConfigError, match="side"):
        boundary([1], [paired_gain([1.0, 1.0], [0.0, 0.0], [0, 1])], side="middle")
