"""The local memory (kNN-Per): datastore, search, mixture, per-user choice with its do-no-harm
fallback, determinism, and a memory that never leaves the device."""

import math

import pytest
import torch

from interlearn.checkpoint import load_checkpoint
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, DataError
from interlearn.federated.client import LocalSGD
from interlearn.federated.personalization.memory import (
    Datastore,
    Encoded,
    MemoryConfig,
    MemoryUpdate,
    build_datastore,
    choose_setting,
    encode,
    grid_scores,
    knn_log_probs,
    mix_log_probs,
    personalize_memory,
    population_setting,
    setting_for,
)
from interlearn.federated.population import Population
from interlearn.federated.server.simulation import SimulationConfig, simulate
from interlearn.federated.strategies import get_strategy
from interlearn.models.char_lstm import char_lstm
from interlearn.models.mlp import mlp

C = 4


def _clusters(n: int, flip: bool, seed: int) -> Encoded:
    """Points around C centres; the label is the centre (``flip``: the next class instead). The
    'global model' predicts class 0 with probability 0.4 and the rest evenly."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.arange(n) % C
    keys = torch.eye(C)[centre] * 5 + 0.1 * torch.randn(n, C, generator=g)
    labels = (centre + 1) % C if flip else centre
    logp = torch.full((n, C), 0.2).log()
    logp[:, 0] = math.log(0.4)
    return Encoded(keys, logp, labels)


def test_memory_that_helps_on_validation_is_used() -> None:
    train, val, test = _clusters(40, False, 0), _clusters(20, False, 1), _clusters(20, False, 2)
    mem, _ = personalize_memory(train, val, C, MemoryConfig())
    assert mem.setting.lam > 0
    assert mem.accuracy(test) == 1.0  # the global model alone gets the class-0 quarter
    assert len(mem.store) == 60  # validation added once chosen


def test_memory_that_hurts_on_validation_falls_back_to_the_global_model() -> None:
    """Do no harm: this user's memory points at the wrong class (their training data disagrees
    with their validation data), so the validation grid keeps lam = 0."""
    train, val, test = _clusters(40, True, 0), _clusters(20, False, 1), _clusters(20, False, 2)
    for select_by in ("accuracy", "loss"):
        mem, grid = personalize_memory(train, val, C, MemoryConfig(select_by=select_by))
        assert mem.setting.lam == 0.0
        assert all(h < grid[0][1] or loss > grid[0][2] for _, h, loss in grid[1:])  # no setting helped
        assert torch.equal(mem.log_probs(test), test.log_probs)  # exactly the global model
        assert mem.nbytes == 12  # nothing stored but the setting


def test_ties_keep_the_global_model() -> None:
    """A memory that changes nothing on validation (all its neighbours agree with the global
    model's top class and the loss is no better) leaves lam = 0."""
    val = Encoded(
        torch.zeros(5, 2), torch.log(torch.tensor([[1.0 - 1e-6, 1e-6]] * 5)), torch.zeros(5, dtype=torch.long)
    )
    store = build_datastore(Encoded(torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([1, 1, 1])), 2, MemoryConfig())
    assert choose_setting(store, val, MemoryConfig()).lam == 0.0


def test_search_is_exact_against_cdist() -> None:
    g = torch.Generator().manual_seed(0)
    keys, q = torch.randn(700, 8, generator=g), torch.randn(600, 8, generator=g)  # > one query block
    store = Datastore(keys, torch.arange(700) % 5, 5)
    d, lab = store.search(q, 3)
    ref = torch.cdist(q, keys).pow(2).topk(3, largest=False)
    torch.testing.assert_close(d, ref.values, atol=1e-3, rtol=1e-4)
    assert torch.equal(lab, (ref.indices % 5))
    cos = Datastore(keys, torch.arange(700) % 5, 5, metric="cosine")
    _, lab_c = cos.search(q, 1)
    sims = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(keys, dim=-1).t()
    assert torch.equal(lab_c[:, 0], sims.argmax(-1) % 5)


def test_knn_probabilities_and_mixture() -> None:
    dist = torch.tensor([[0.0, 1.0, 1.0]])
    labels = torch.tensor([[2, 0, 2]])
    p = knn_log_probs(dist, labels, 3, 1.0, 3).exp()
    w = torch.softmax(-dist, -1)[0]
    torch.testing.assert_close(p[0], torch.tensor([w[1], 0.0, w[0] + w[2]]), atol=1e-6, rtol=0)
    g = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    mixed = mix_log_probs(g, p.clamp_min(1e-30).log(), 0.3).exp()
    torch.testing.assert_close(mixed, 0.3 * p + 0.7 * g.exp(), atol=1e-6, rtol=0)
    assert torch.equal(mix_log_probs(g, p.log(), 0.0), g)


def test_datastore_bytes_and_dtype() -> None:
    enc = _clusters(10, False, 0)
    s16 = build_datastore(enc, C, MemoryConfig())
    s32 = build_datastore(enc, C, MemoryConfig(key_dtype="float32"))
    assert s16.keys.dtype == torch.float16
    assert s16.nbytes == 10 * C * 2 + 10 and s32.nbytes == 10 * C * 4 + 10  # labels in one byte each
    with pytest.raises(DataError, match="no training examples"):
        build_datastore(
            Encoded(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)), 2, MemoryConfig()
        )


def test_encode_reads_the_head_input_at_every_position() -> None:
    torch.manual_seed(0)
    model = char_lstm(7, hidden=8, output="all")
    x = torch.randint(0, 7, (3, 5))
    enc = encode(model, None, TensorData(x, x), MemoryConfig(batch_size=2))
    assert enc.keys.shape == (15, 8) and enc.log_probs.shape == (15, 7) and enc.labels.shape == (15,)
    with torch.no_grad():
        feats = model.features(x).reshape(-1, 8)
        logp = model(x).transpose(1, 2).reshape(-1, 7).log_softmax(-1)
    torch.testing.assert_close(enc.keys, feats)
    torch.testing.assert_close(enc.log_probs, logp)
    masked = encode(model, None, TensorData(x, x), MemoryConfig(ignore_labels=(0,), mask_classes=(0,)))
    assert len(masked) == int((x != 0).sum()) and torch.isinf(masked.log_probs[:, 0]).all()
    with pytest.raises(ConfigError, match="heads|head"):
        encode(model, None, TensorData(x, x), MemoryConfig(layer="heads"))


def test_personalization_is_deterministic() -> None:
    torch.manual_seed(0)
    model = mlp(6, [8], 3)
    g = torch.Generator().manual_seed(1)
    data = [TensorData(torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)) for n in (30, 10, 10)]
    runs = []
    for _ in range(2):
        tr, va, te = (encode(model, None, d, MemoryConfig(layer=_last_linear(model))) for d in data)
        mem, grid = personalize_memory(tr, va, 3, MemoryConfig(layer=_last_linear(model)))
        runs.append((mem.setting, mem.log_probs(te), [h for _, h, _ in grid]))
    assert runs[0][0] == runs[1][0] and runs[0][2] == runs[1][2]
    assert torch.equal(runs[0][1], runs[1][1])


def _last_linear(model: torch.nn.Module) -> str:
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]


def test_population_setting_sums_users_and_becomes_concrete_per_user() -> None:
    cfg = MemoryConfig(lams=(0.5,), ks=(1, 3), temperatures=(1.0,))
    users = [(_clusters(30, False, s), _clusters(12, False, s + 10)) for s in range(3)]
    grids = [grid_scores(build_datastore(tr, C, cfg), va, cfg) for tr, va in users]
    index, shared = population_setting(grids)
    assert index > 0 and shared.lam == 0.5 and shared.relative_temperature == 1.0
    store = build_datastore(users[0][0], C, cfg)
    concrete = setting_for(store, users[0][1], shared)
    assert concrete.temperature == pytest.approx(grids[0][index][0].temperature)
    with pytest.raises(DataError):
        population_setting([])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lams": (1.5,)},
        {"ks": (0,)},
        {"temperatures": (0.0,)},
        {"metric": "dot"},
        {"side": "middle"},
        {"select_by": "f1"},
    ],
)
def test_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="MemoryConfig"):
        MemoryConfig(**kwargs)


def test_the_memory_never_enters_an_upload(tmp_path) -> None:
    """A simulation whose clients keep a memory sends the same bytes (and reaches the same
    model) as one without; the memory lives in the clients' private state only."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    clients = [(torch.randn(12, 5, generator=g), torch.randint(0, 3, (12,), generator=g)) for _ in range(4)]
    sim = SimulationConfig(
        rounds=2, clients_per_round=2, eval_every=0, client_eval=False, checkpoint_every=2, progress=False
    )
    inner = LocalSGD(epochs=1, batch_size=4, lr=0.1)
    results = {}
    for name, update in (("plain", inner), ("memory", MemoryUpdate(inner, MemoryConfig(layer="2")))):
        torch.manual_seed(0)
        model = mlp(5, [6], 3)
        results[name] = simulate(
            model,
            Population.from_clients(clients),
            update,
            get_strategy("fedavg"),
            sim,
            engine="sequential",
            run_dir=tmp_path / name,
        )
    plain, mem = results["plain"], results["memory"]
    assert mem.bytes_up == plain.bytes_up > 0
    assert mem.bytes_down == plain.bytes_down
    for k in plain.params:
        assert torch.equal(plain.params[k], mem.params[k])
    stored, _ = load_checkpoint(tmp_path / "memory" / "checkpoint")
    kept = [k for k in stored if k.startswith("client/") and k.endswith("memory/keys")]
    assert kept  # the participating clients hold their datastore, on their side only
    assert not any("memory" in k for k in load_checkpoint(tmp_path / "plain" / "checkpoint")[0])
