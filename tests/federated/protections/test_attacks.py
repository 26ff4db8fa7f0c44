"""Attack simulations: sign flip, scaling, Gaussian noise, label flip; attacker selection."""

from __future__ import annotations

import pytest
import torch
from protection_helpers import ctx, result, run_steps

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData
from interlearn.federated.protections.attacks import (
    AttackStep,
    choose_attackers,
    flip_labels,
    gaussian_update,
    poison_labels,
    scale_update,
    sign_flip,
)


def test_choose_attackers_fraction_and_determinism():
    a = choose_attackers(100, 0.3, seed=1)
    assert len(a) == 30 and all(0 <= i < 100 for i in a)
    assert a == choose_attackers(100, 0.3, seed=1)
    assert a != choose_attackers(100, 0.3, seed=2)
    assert choose_attackers(10, 0.0) == frozenset()
    with pytest.raises(ConfigError, match="fraction"):
        choose_attackers(10, 1.5)


def test_pure_attacks():
    u = {"w": torch.tensor([1.0, -2.0])}
    assert torch.equal(sign_flip(u)["w"], torch.tensor([-1.0, 2.0]))
    assert torch.equal(sign_flip(u, 3.0)["w"], torch.tensor([-3.0, 6.0]))
    assert torch.equal(scale_update(u, 10.0)["w"], torch.tensor([10.0, -20.0]))
    big = {"w": torch.zeros(10000)}
    noise = gaussian_update(big, 2.0, torch.Generator().manual_seed(0))["w"]
    assert float(noise.std()) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("kind", ["sign_flip", "scaling", "gaussian"])
def test_attack_step_changes_only_attackers(kind):
    res = [result(i) for i in range(5)]
    step = AttackStep(kind, attackers={1, 3})
    c = ctx()
    out = run_steps([step], res, c)
    for before, after in zip(res, out):
        same = torch.equal(before.update["w"], after.update["w"])
        assert same == (before.client_id not in {1, 3})
    assert c.notes["attack/count"] == 2
    if kind == "sign_flip":
        assert torch.equal(out[1].update["w"], -res[1].update["w"])
    if kind == "scaling":
        assert torch.allclose(out[3].update["w"], 10 * res[3].update["w"])


def test_label_flip_poisons_only_attackers_data():
    clients = [ClientData(i, torch.zeros(4, 2), torch.tensor([0, 1, 2, 9])) for i in range(3)]
    out = flip_labels(clients, {2}, num_classes=10)
    assert torch.equal(out[2].y, torch.tensor([9, 8, 7, 0]))
    assert torch.equal(out[0].y, clients[0].y)
    with pytest.raises(ConfigError, match="labels outside"):
        flip_labels(clients, {0}, num_classes=5)


def test_unknown_attack_is_explained():
    with pytest.raises(ConfigError, match="flip_labels"):
        AttackStep("label_flip", {0})
    with pytest.raises(ConfigError, match="did you mean"):
        AttackStep("signflip", {0})


def test_poison_labels_on_a_population():
    from interlearn.federated import Population

    pop = Population(torch.zeros(6, 2), torch.tensor([0, 1, 2, 3, 4, 5]), [[0, 1], [2, 3], [4, 5]])
    bad = poison_labels(pop, {1}, num_classes=6)
    assert torch.equal(bad.client(1).y, torch.tensor([3, 2]))
    assert torch.equal(bad.client(0).y, pop.client(0).y) and torch.equal(bad.client(2).y, pop.client(2).y)
    assert torch.equal(pop.client(1).y, torch.tensor([2, 3]))  # the original is untouched
    with pytest.raises(ConfigError, match="labels outside"):
        poison_labels(pop, {2}, num_classes=5)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 0.0, -2.0, "4"])
def test_attack_scale_must_be_a_positive_finite_number(scale):
    with pytest.raises(ConfigError, match=r"AttackStep\(scale=.*\): must be a positive finite number"):
        AttackStep("sign_flip", [0], scale=scale)
