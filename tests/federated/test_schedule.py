"""Schedules indexed by round: the helpers, and a scheduled run that is killed and resumed."""

import pytest
import torch
from fl_helpers import KillAt, blobs, tiny_mlp

from interlearn.errors import ConfigError
from interlearn.federated import LocalSGD, Population, SimulationConfig, get_strategy, simulate
from interlearn.federated.partition import shards
from interlearn.federated.protections import ClipUpdates, GaussianNoise, PrivacyAccountant
from interlearn.federated.schedule import constant, cosine, piecewise, step_decay
from interlearn.federated.server.sampling import CohortSampling


def test_the_helpers_give_a_value_per_round():
    assert constant(0.3)(7) == 0.3
    lr = piecewise({1: 0.1, 3: 0.01})
    assert [lr(r) for r in (1, 2, 3, 9)] == [0.1, 0.1, 0.01, 0.01]
    assert [step_decay(1.0, every=2, factor=0.5)(r) for r in (1, 2, 3, 5)] == [1.0, 1.0, 0.5, 0.25]
    c = cosine(1.0, 0.0, rounds=5)
    assert c(1) == pytest.approx(1.0) and c(3) == pytest.approx(0.5) and c(5) == pytest.approx(0.0) and c(9) == c(5)
    with pytest.raises(ConfigError, match="first one 1"):
        piecewise({2: 0.1})


def _population():
    x, y = blobs(120)
    return Population(x, y, shards(y, 8, 2, seed=0)), (x, y)


def _cfg(**kw):
    return SimulationConfig(**{"rounds": 6, "clients_per_round": 4, "seed": 3, "progress": False, **kw})


def test_a_scheduled_learning_rate_equals_a_run_restarted_with_the_new_rate(tmp_path):
    """What the keyboard recipe did by restarting simulate is one run with a schedule."""
    pop, _ = _population()
    scheduled = LocalSGD(epochs=piecewise({1: 1, 4: 2}), lr=piecewise({1: 0.1, 4: 0.02}))
    one = simulate(tiny_mlp(), pop, scheduled, get_strategy("fedavg"), _cfg(), engine="sequential")
    seg = tmp_path / "seg"
    first, then = LocalSGD(epochs=1, lr=0.1), LocalSGD(epochs=2, lr=0.02)
    simulate(
        tiny_mlp(),
        pop,
        first,
        get_strategy("fedavg"),
        _cfg(rounds=3, checkpoint_every=3),
        run_dir=seg,
        engine="sequential",
    )
    two = simulate(
        tiny_mlp(),
        pop,
        then,
        get_strategy("fedavg"),
        _cfg(checkpoint_every=3),
        run_dir=seg,
        resume=True,
        engine="sequential",
    )
    constant_lr = simulate(tiny_mlp(), pop, first, get_strategy("fedavg"), _cfg(), engine="sequential")
    for k in one.params:
        assert torch.equal(one.params[k], two.params[k]), k
    assert any(not torch.equal(one.params[k], constant_lr.params[k]) for k in one.params)


@pytest.mark.parametrize("engine", ["vectorized", "multicore"])
def test_every_engine_follows_the_schedule(engine):
    pop, _ = _population()
    update = LocalSGD(epochs=piecewise({1: 1, 3: 2}), lr=cosine(0.2, 0.02, rounds=4))
    ref = simulate(tiny_mlp(), pop, update, get_strategy("fedavg"), _cfg(rounds=4), engine="sequential")
    other = simulate(tiny_mlp(), pop, update, get_strategy("fedavg"), _cfg(rounds=4), engine=engine)
    for k in ref.params:
        torch.testing.assert_close(ref.params[k], other.params[k], atol=1e-5, rtol=1e-5)


def test_a_scheduled_run_killed_and_resumed_is_bit_exact(tmp_path):
    pop, (x, y) = _population()
    update = LocalSGD(lr=step_decay(0.2, every=2, factor=0.5), epochs=piecewise({1: 1, 3: 2}))
    cfg = _cfg(checkpoint_every=2, clients_per_round=piecewise({1: 3, 3: 5}))
    full = simulate(tiny_mlp(), pop, update, get_strategy("fedadam", lr=0.05), cfg, test=(x, y), run_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        simulate(
            tiny_mlp(), pop, update, get_strategy("fedadam", lr=0.05), cfg, steps=[KillAt(5)], run_dir=tmp_path / "b"
        )
    resumed = simulate(
        tiny_mlp(seed=9),
        pop,
        update,
        get_strategy("fedadam", lr=0.05),
        cfg,
        test=(x, y),
        run_dir=tmp_path / "b",
        resume=True,
    )
    for k in full.params:
        assert torch.equal(full.params[k], resumed.params[k]), k
    assert [h["cohort"] for h in full.history] == [3, 3, 5, 5, 5, 5]
    assert [h["cohort"] for h in resumed.history] == [3, 3, 5, 5, 5, 5]


def test_a_cohort_schedule_is_checked_in_every_round():
    with pytest.raises(ConfigError, match="round 3"):
        _cfg(clients_per_round=piecewise({1: 4, 3: 0}))
    pop, _ = _population()
    with pytest.raises(ConfigError, match="min_survivors"):
        simulate(
            tiny_mlp(),
            pop,
            LocalSGD(),
            get_strategy("fedavg"),
            _cfg(clients_per_round=piecewise({1: 4, 3: 1}), min_survivors=2),
        )


def test_a_scheduled_noise_multiplier_accounts_each_round_with_its_own_z():
    sampling = CohortSampling.build("poisson", population=100, clients_per_round=8)
    z = piecewise({1: 4.0, 3: 1.0})
    noise = GaussianNoise(ClipUpdates(1.0), noise_multiplier=z, sampling=sampling, accountant=PrivacyAccountant())
    assert noise.event_at(1).noise_multiplier == 4.0 and noise.event_at(3).noise_multiplier == 1.0
    reference = PrivacyAccountant()
    for r in (1, 2, 3):
        reference.step_event(noise.event_at(r))
    from protection_helpers import ctx, result, run_steps

    for r in (1, 2, 3):
        c = ctx(r)
        run_steps([noise.clip, noise], [result(i) for i in range(4)], c)
        assert c.notes["dp/noise_std"] == pytest.approx(z(r) / 8)
    assert noise.accountant.epsilon() == pytest.approx(reference.epsilon())
