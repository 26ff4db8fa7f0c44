"""Local fine-tuning and FedPer on a tiny model whose users disagree about the labels."""

import pytest
import torch
from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData, ClientResult, ClientUpdate
from interlearn.federated.personalization.local import (
    FedPerUpdate,
    PersonalizeConfig,
    finetune_params,
    personalize,
    plot_personalization,
)
from interlearn.federated.server.evaluate import params_accuracy


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.trunk(x)))


def _user(shift: int, n: int, seed: int) -> TensorData:
    """Class = argmax of the first 3 features, relabelled by a per-user cyclic shift."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorData(x, (x[:, :3].argmax(1) + shift) % 3)


def _global_params(model):
    # "global" training on pooled data of shift 0 users
    data = _user(0, 400, 99)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(data.x), data.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_finetune_head_only_changes_head():
    model = Tiny()
    params = {k: v.detach() for k, v in model.state_dict().items()}
    new = finetune_params(
        model, params, _user(1, 32, 0), ["head.weight", "head.bias"], 5, 0.1, 8, torch.Generator().manual_seed(0)
    )
    assert torch.equal(new["trunk.weight"], params["trunk.weight"])
    assert not torch.equal(new["head.weight"], params["head.weight"])
    # pure: the module's own tensors are untouched
    assert torch.equal(model.head.weight, params["head.weight"])
    with pytest.raises(DataError):
        finetune_params(
            model,
            params,
            TensorData(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)),
            ["head.bias"],
            1,
            0.1,
            8,
            torch.Generator(),
        )


@pytest.mark.parametrize("scope", ["head", "all"])
def test_personalization_helps_users_unlike_the_global_population(tmp_path, scope):
    torch.manual_seed(0)
    model = Tiny()
    gp = _global_params(model)
    users = [(f"u{s}", _user(s, 120, 10 + s), _user(s, 200, 20 + s)) for s in (0, 1, 2)]
    report, personal = personalize(model, gp, users, PersonalizeConfig(scope=scope, steps=60, lr=0.5, batch_size=32))
    by = {u.user: u for u in report.users}
    assert by["u0"].global_acc > 0.8  # the global model fits the majority style
    for name in ("u1", "u2"):  # relabelled users: the global model is wrong, fine-tuning fixes it
        assert by[name].global_acc < 0.3
        assert by[name].personal_acc > by[name].global_acc + 0.4
    s = report.summary()
    assert s["personal_median"] > s["global_median"] and s["users"] == 3
    assert params_accuracy(model, personal["u1"], users[1][2]) == by["u1"].personal_acc
    png = plot_personalization(report, tmp_path / "p.png")
    assert png.stat().st_size > 1000


def test_config_validation():
    with pytest.raises(ConfigError, match="scope"):
        PersonalizeConfig(scope="body")
    with pytest.raises(ConfigError):
        PersonalizeConfig(steps=-1)
    with pytest.raises(ConfigError, match=r"parameter pattern .classifier.\*. matches nothing"):
        personalize(
            Tiny(),
            dict(Tiny().state_dict()),
            [("u", _user(0, 8, 0), _user(0, 8, 1))],
            PersonalizeConfig(head_patterns=("classifier.*",)),
        )


def test_fedper_keeps_head_private():
    torch.manual_seed(0)
    model = Tiny()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    update = FedPerUpdate(epochs=2, batch_size=8, lr=0.2)
    assert isinstance(update, ClientUpdate)
    data = _user(1, 40, 3)
    result, state = update(model, params, ClientData(7, data.x, data.y), None, {}, torch.Generator().manual_seed(0))
    assert isinstance(result, ClientResult) and result.client_id == 7 and result.weight == 40
    assert set(state) == {"head.weight", "head.bias"}
    assert torch.count_nonzero(result.update["head.weight"]) == 0  # the head never leaves the client
    assert torch.count_nonzero(result.update["trunk.weight"]) > 0
    assert not torch.equal(state["head.weight"], params["head.weight"])
    # next round starts from the client's own head, not the global one
    result2, _state2 = update(model, params, ClientData(7, data.x, data.y), state, {}, torch.Generator().manual_seed(1))
    assert result2.metrics["loss"] < result.metrics["loss"]


def test_fedper_rounds_personalize_conflicting_users():
    """A few FedPer rounds (trunk averaged by hand, heads private) fit users with opposite
    labellings, which one shared model cannot."""
    torch.manual_seed(0)
    model = Tiny()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    users = [_user(s, 90, s) for s in (0, 1, 2)]
    tests = [_user(s, 200, 50 + s) for s in (0, 1, 2)]
    update = FedPerUpdate(epochs=1, batch_size=10, lr=0.2)
    states: dict[int, dict] = {}
    for r in range(15):
        results = []
        for c, d in enumerate(users):
            res, states[c] = update(
                model, params, ClientData(c, d.x, d.y), states.get(c), {}, torch.Generator().manual_seed(r * 10 + c)
            )
            results.append(res)
        total = sum(res.weight for res in results)
        params = {k: params[k] + sum(res.update[k] * res.weight for res in results) / total for k in params}
    accs = [params_accuracy(model, {**params, **states[c]}, tests[c]) for c in range(3)]
    assert min(accs) > 0.75


def test_fedper_through_the_round_loop(tmp_path):
    """FedPer on the federated core's simulate(): the server only ever holds the shared trunk
    (the global head stays at its initial value), each client's head persists across rounds,
    and trunk + own head fits users whose labellings conflict."""
    from interlearn.federated.personalization.local import personal_heads
    from interlearn.federated.population import Population
    from interlearn.federated.server.simulation import SimulationConfig, simulate
    from interlearn.federated.strategies import get_strategy

    torch.manual_seed(0)
    model = Tiny()
    init_head = model.head.weight.detach().clone()
    users = [_user(s, 90, s) for s in (0, 1, 2)]
    pop = Population.from_clients([(u.x, u.y) for u in users])
    cfg = SimulationConfig(rounds=15, clients_per_round=3, eval_every=0, checkpoint_every=15, progress=False)
    res = simulate(
        model, pop, FedPerUpdate(epochs=1, batch_size=10, lr=0.2), get_strategy("fedavg"), cfg, run_dir=tmp_path
    )
    assert torch.equal(res.params["head.weight"], init_head)
    heads = personal_heads(res, tmp_path)
    assert set(heads) == {0, 1, 2}
    tests = [_user(s, 200, 50 + s) for s in (0, 1, 2)]
    accs = [params_accuracy(model, {**res.params, **heads[c]}, tests[c]) for c in range(3)]
    assert min(accs) > 0.75
    shared = [params_accuracy(model, res.params, tests[c]) for c in range(3)]
    assert max(shared) < 0.75  # the shared model with the untouched global head fits no one
