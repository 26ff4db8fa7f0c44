import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import load_digits
from interlearn.distill import compare_models, cpu_latency, distill, kd_loss, teacher_logits
from interlearn.errors import ConfigError, ShapeError
from interlearn.ondevice.quantize import model_bytes
from interlearn.schema import build
from interlearn.tasks import classification, regression
from interlearn.training import evaluate, fit

CPU = dict(device="cpu", progress=False)


def _mlp(d_in, hidden, out=10, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, out))


def test_kd_loss_matches_the_formula():
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    T, a = 3.0, 0.7
    p_t = F.softmax(t / T, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / T, -1))).sum(-1).mean()
    want = a * T * T * kl + (1 - a) * F.cross_entropy(s, y)
    assert torch.allclose(kd_loss(s, t, y, T, a), want, atol=1e-6)
    assert torch.allclose(kd_loss(s, t, y, T, 0.0), F.cross_entropy(s, y))
    assert float(kd_loss(t, t, None, T, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_kd_loss_on_sequences_is_the_loss_of_every_position():
    """(batch, classes, time) logits with (batch, time) targets: one row per predicted token."""
    torch.manual_seed(0)
    s, t, y = torch.randn(3, 5, 4), torch.randn(3, 5, 4), torch.randint(0, 5, (3, 4))
    rows = lambda z: z.transpose(1, 2).reshape(-1, 5)
    torch.testing.assert_close(kd_loss(s, t, y, 2.0, 0.6), kd_loss(rows(s), rows(t), y.reshape(-1), 2.0, 0.6))
    torch.testing.assert_close(kd_loss(s, t, y, 2.0, 0.0), F.cross_entropy(s, y))
    assert float(kd_loss(t, t, y, 2.0, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_t_squared_scaling_keeps_gradients_at_logit_matching_scale():
    # Hinton et al. eq. (4): at high T the soft gradient is (z - v) / (N T^2) per example; the T^2
    # factor makes it (z - v) / N, independent of T (logits with zero mean).
    torch.manual_seed(0)
    z = torch.randn(4, 10)
    v = torch.randn(4, 10)
    z, v = z - z.mean(-1, keepdim=True), v - v.mean(-1, keepdim=True)
    grads = []
    for T in (200.0, 2000.0):
        zz = z.clone().requires_grad_(True)
        kd_loss(zz, v, None, T, 1.0).backward()
        grads.append(zz.grad)
    want = (z - v) / 10 / 4  # / classes / batch
    for g in grads:
        assert torch.allclose(g, want, atol=1e-3)


def test_kd_loss_rejects_bad_input():
    s = torch.randn(2, 3)
    with pytest.raises(ConfigError, match="temperature"):
        kd_loss(s, s, None, 0.0, 1.0)
    with pytest.raises(ConfigError, match="alpha"):
        kd_loss(s, s, None, 2.0, 1.5)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(2, 4\)"):
        kd_loss(s, torch.randn(2, 4), None, 2.0, 1.0)
    with pytest.raises(ConfigError, match="targets=None"):
        kd_loss(s, s, None, 2.0, 0.5)


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def teacher(digits):
    train, _ = digits
    torch.manual_seed(0)
    t = _mlp(64, 128)
    fit(t, train, classification(10), FitConfig(epochs=15, batch_size=64, lr=3e-3, **CPU))
    return t


def test_alpha_zero_is_training_alone_with_the_same_batches(digits, teacher):
    # Same init + same seed => same batch order: with alpha=0 distillation must equal plain training.
    train, _ = digits
    cfg = FitConfig(epochs=2, batch_size=32, lr=1e-2, schedule="constant", seed=3, **CPU)
    init = _mlp(64, 8, seed=5)
    alone, dist = copy.deepcopy(init), copy.deepcopy(init)
    fit(alone, train, classification(10), cfg)
    distill(teacher, dist, train, classification(10), cfg, temperature=4.0, alpha=0.0)
    for a, b in zip(alone.parameters(), dist.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_cached_logits_equal_live_teacher(digits, teacher):
    train, _ = digits
    small = train.subset(range(200))
    cfg = FitConfig(epochs=2, batch_size=32, lr=1e-2, **CPU)
    init = _mlp(64, 8, seed=1)
    a, b = copy.deepcopy(init), copy.deepcopy(init)
    distill(teacher, a, small, classification(10), cfg, temperature=4.0, alpha=0.9, cache=True)
    distill(teacher, b, small, classification(10), cfg, temperature=4.0, alpha=0.9, cache=False)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-5)


def test_student_learns_from_soft_targets_alone(digits, teacher):
    # alpha=1: the student never sees a label, only the teacher's softened outputs.
    train, test = digits
    student = _mlp(64, 32, seed=2)
    task = classification(10)
    before = evaluate(student, test, task)["accuracy"]
    distill(
        teacher, student, train, task, FitConfig(epochs=15, batch_size=64, lr=3e-3, **CPU), temperature=4.0, alpha=1.0
    )
    after = evaluate(student, test, task)["accuracy"]
    assert before < 0.3 and after > 0.85


def test_distill_checks_its_inputs(digits, teacher):
    train, _ = digits
    with pytest.raises(ShapeError, match="teacher outputs"):
        distill(teacher, _mlp(64, 8, out=5), train, classification(10), FitConfig(epochs=1, **CPU))
    with pytest.raises(ConfigError, match="cache=True with augment"):
        distill(
            teacher,
            _mlp(64, 8),
            train,
            classification(10),
            FitConfig(epochs=1, **CPU),
            cache=True,
            augment=lambda x, g: x,
        )
    with pytest.raises(ConfigError, match="classification"):
        distill(teacher, _mlp(64, 8), train, regression(10), FitConfig(epochs=1, **CPU))


def test_teacher_is_left_frozen_and_logits_are_eval_mode(digits):
    train, _ = digits
    t = nn.Sequential(nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, 10))
    t.train()
    a = teacher_logits(t, train.x[:50], device="cpu")
    b = teacher_logits(t, train.x[:50], device="cpu")
    assert torch.equal(a, b) and t.training  # deterministic (dropout off), mode restored
    distill(t, _mlp(64, 8), train.subset(range(64)), classification(10), FitConfig(epochs=1, **CPU))
    assert not any(p.requires_grad for p in t.parameters())


def test_compare_models_reports_size_accuracy_and_latency(digits, teacher):
    _train, test = digits
    small = _mlp(64, 8)
    rows = compare_models(
        {"teacher": teacher, "student": small}, test, classification(10), repeats=3, extra={"student": {"note": "x"}}
    )
    t, s = rows["teacher"], rows["student"]
    assert t["params"] == sum(p.numel() for p in teacher.parameters())
    assert t["bytes"] > 4 * t["params"] > 4 * s["params"]  # float32 + a small header
    assert s["bytes"] == model_bytes(small)
    assert t["errors"] == round((1 - t["accuracy"]) * len(test))
    assert t["latency_ms_b1"] > 0 and t["latency_ms_b256"] > 0 and s["note"] == "x"
    with pytest.raises(ConfigError):
        cpu_latency(small, test.x[:1], repeats=0)


def test_recipe_config_validates_field_paths():
    from interlearn.recipes.distill import Config

    with pytest.raises(ConfigError, match=r"distill.teacher: 'resnet' is not allowed"):
        build(Config, {"teacher": "resnet"}, "distill")
    with pytest.raises(ConfigError, match="temperature"):
        build(Config, {"temperature": -1}, "distill")


@pytest.mark.slow
def test_recipe_runs_end_to_end(tmp_path):
    from interlearn.recipes.distill import Config, run

    cfg = Config(
        teacher_hidden=(32,),
        student_hidden=(8,),
        teacher_fit=FitConfig(epochs=2, **CPU),
        student_fit=FitConfig(epochs=2, **CPU),
        latency_repeats=2,
    )
    rows = run(cfg, tmp_path, progress=False)
    assert set(rows) == {"teacher", "student_alone", "distilled"}
    for r in rows.values():
        assert 0 <= r["accuracy"] <= 1 and r["trainable_params"] > 0 and r["bytes"] > 0
    assert rows["student_alone"]["params"] == rows["distilled"]["params"] < rows["teacher"]["params"]
