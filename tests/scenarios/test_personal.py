"""The tour's personalization part: per-user gains of the local memory over the federated model."""

from interlearn.scenarios import personal


def test_the_memory_beats_the_global_model_on_skewed_clients_and_is_deterministic():
    users = personal.personalize_users(0.1, seed=0)
    again = personal.personalize_users(0.1, seed=0)
    assert users == again
    assert len(users.global_acc) == len(users.memory_acc) == len(users.sizes) == 16
    # strong label skew: the memory of one's own examples pays (tour: about +12 points at alpha 0.1)
    assert users.weighted(users.memory_acc) > users.weighted(users.global_acc) + 0.03
    assert max(users.memory_bytes) < 2_000_000


def test_the_section_has_a_per_user_plot_and_a_boundary(tmp_path):
    scenario = personal.run(tmp_path, seed=0)
    (section,) = scenario.sections
    assert (tmp_path / section.plot).stat().st_size > 1000
    assert section.boundary and section.stops and len(section.table) == len(personal.ALPHAS)
    row = scenario.rows["alpha0.3"]
    assert 0 <= row["hurt_fraction"] <= row["improved_fraction"] <= 1 and len(row["gain_per_seed"]) == 3
