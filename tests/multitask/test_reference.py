"""Loss-weighting methods agree with torchjd's scalarizers on fully labelled batches."""

import pytest
import torch

from interlearn.multitask import MTLContext, make_method

NAMES = ["a", "b", "c"]


def _losses(values):
    params = torch.tensor(values, requires_grad=True)
    return params, {n: params[i] for i, n in enumerate(NAMES)}


def _ctx(recompute=lambda x, y: {}):
    return MTLContext(None, torch.zeros(1), torch.zeros(1), torch.zeros(1), recompute)


def test_uncertainty_matches_torchjd_uw():
    from torchjd.scalarization import UW

    ours = make_method("uncertainty", NAMES)
    ref = UW(3)
    with torch.no_grad():
        ours.log_var.copy_(torch.tensor([0.3, -0.2, 0.1]))
        ref.log_var.copy_(torch.tensor([0.3, -0.2, 0.1]))
    p1, l1 = _losses([0.5, 1.5, 2.0])
    p2, _ = _losses([0.5, 1.5, 2.0])
    a, b = ours.combine(l1, _ctx()), ref(p2)
    assert torch.allclose(a, b)
    a.backward()
    b.backward()
    assert torch.allclose(p1.grad, p2.grad) and torch.allclose(ours.log_var.grad, ref.log_var.grad)


def test_static_matches_torchjd_constant():
    from torchjd.scalarization import Constant

    w = {"a": 0.2, "b": 1.0, "c": 3.0}
    _, l1 = _losses([0.5, 1.5, 2.0])
    p2, _ = _losses([0.5, 1.5, 2.0])
    assert torch.allclose(
        make_method("static", NAMES, weights=w).combine(l1, _ctx()), Constant(torch.tensor(list(w.values())))(p2)
    )


def test_dwa_matches_torchjd_dwa():
    from torchjd.scalarization import DWA

    ours, ref = make_method("dwa", NAMES, temperature=2.0), DWA(temperature=2.0)
    g = torch.Generator().manual_seed(0)
    for epoch in range(4):
        ours.on_epoch_start(epoch)
        for _ in range(3):
            vals = (torch.rand(3, generator=g) + 0.5).tolist()
            _p, l1 = _losses(vals)
            a = ours.combine(l1, _ctx())
            b = ref(torch.tensor(vals))
            assert torch.allclose(a.double(), b.double(), atol=1e-6), epoch
        ref.step()
    assert len({round(w, 6) for w in ours.last_weights.values()}) > 1  # weights moved off uniform


def test_famo_matches_torchjd_famo():
    from torchjd.scalarization import FAMO

    ours, ref = make_method("famo", NAMES), FAMO(3)
    g = torch.Generator().manual_seed(0)
    after = {}
    for step in range(5):
        before = (torch.rand(3, generator=g) + 0.5).tolist()
        nxt = [v * float(torch.rand(1, generator=g) + 0.5) for v in before]
        p1, l1 = _losses(before)
        p2, _ = _losses(before)
        ctx = _ctx(lambda x, y: dict(after))  # noqa: B023  (used by this step's backward only)
        ours.backward(l1, ctx)  # updates from the previous step's "after" losses first
        r = ref(p2)
        r.backward()
        assert torch.allclose(p1.grad, p2.grad, atol=1e-6), step
        ref.update(torch.tensor(nxt))
        after = {n: torch.tensor(v) for n, v in zip(NAMES, nxt)}
    ours.backward(_losses(before)[1], _ctx(lambda x, y: dict(after)))
    assert torch.allclose(ours.logits, ref._w, atol=1e-6)


def test_rlw_weights_are_random_convex_and_seeded():
    a, b = make_method("rlw", NAMES, seed=3), make_method("rlw", NAMES, seed=3)
    seen = []
    for _ in range(3):
        _, l1 = _losses([1.0, 1.0, 1.0])
        _, l2 = _losses([1.0, 1.0, 1.0])
        a.combine(l1, _ctx())
        b.combine(l2, _ctx())
        assert a.last_weights == b.last_weights
        assert sum(a.last_weights.values()) == pytest.approx(1.0) and min(a.last_weights.values()) > 0
        seen.append(tuple(a.last_weights.values()))
    assert len(set(seen)) == 3
