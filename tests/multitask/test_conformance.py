"""One conformance suite over every registered multi-task method (STYLE.md #15)."""

import pytest
import torch
from mtl_toy import TOY_A, TOY_B, toy_problem

from interlearn.errors import ConfigError
from interlearn.multitask import MTLContext, list_methods, make_method, method_kind
from interlearn.multitask.gradients import TORCHJD_AGGREGATORS

ALL = list_methods()
EXPECTED = {
    "equal",
    "static",
    "uncertainty",
    "dwa",
    "gradnorm",
    "rlw",
    "famo",
    "mgda",
    "mgda_ub",
    "pcgrad",
    "cagrad",
    "imtl_g",
    "aligned_mtl",
    "upgrad",
    "nash_mtl",
}


def test_registry_has_every_method_of_the_issue():
    assert set(ALL) >= EXPECTED
    assert set(list_methods("gradient")) == set(TORCHJD_AGGREGATORS) | {"mgda_ub"}


def test_unknown_method_lists_known_ones():
    with pytest.raises(ConfigError, match="known methods:.*upgrad"):
        make_method("pcgrd", ["a", "b"])
    with pytest.raises(ConfigError, match="bad options"):
        make_method("cagrad", ["a", "b"], nonsense=1)


def _distance_to_segment(p: torch.Tensor) -> float:
    a, b = torch.tensor(TOY_A), torch.tensor(TOY_B)
    t = torch.clamp(torch.dot(p - a, b - a) / torch.dot(b - a, b - a), 0, 1)
    return float((p - (a + t * (b - a))).norm())


def _stationarity(theta: torch.Tensor) -> float:
    """min over convex combinations of the two task gradients (closed form for two vectors)."""
    g_a, g_b = theta - torch.tensor(TOY_A), theta - torch.tensor(TOY_B)
    alpha = torch.clamp(torch.dot(g_b - g_a, g_b) / (g_b - g_a).pow(2).sum(), 0, 1)
    return float((alpha * g_a + (1 - alpha) * g_b).norm())


def _toy_trajectory(name: str, steps: int = 150) -> list[float]:
    model, data, tasks = toy_problem()
    method = make_method(name, tasks.names)
    params = list(model.parameters()) + (list(method.parameters()) if method.optimizer_params else [])
    opt = torch.optim.SGD(params, lr=0.1)
    recompute = lambda x, y: dict(tasks.losses(model(x), y)[0].items())
    out = [_stationarity(model.trunk.theta.detach()[0])]
    for step in range(steps):
        method.on_epoch_start(step)
        features = model.shared(data.x)
        losses, _ = tasks.losses(model.task_outputs(features, data.x), data.y)
        opt.zero_grad(set_to_none=True)
        method.backward(losses, MTLContext(model, features, data.x, data.y, recompute))
        opt.step()
        out.append(_stationarity(model.trunk.theta.detach()[0]))
    theta = model.trunk.theta.detach()[0]
    assert (
        torch.dot(theta - torch.tensor(TOY_A), theta - torch.tensor(TOY_B)) < 0 or out[-1] > 1e-3
    )  # conflict at the solution
    return out


# Stationarity to reach, relative to the start. Nash-MTL gets 2%: torchjd warns that its
# adaptation of the official implementation "has some flaws"; with nearly antiparallel gradients
# the ECOS sub-problem stops improving and the iterate creeps at ~1.2% of the starting value.
TOLERANCE = {"nash_mtl": 2e-2}


@pytest.mark.parametrize("name", ALL)
def test_reaches_a_pareto_stationary_point(name):
    """Conflicting gradients (a pulls right, b pulls left): every method reaches the Pareto set
    (the segment [a, b], where a convex combination of the two task gradients vanishes)."""
    traj = _toy_trajectory(name)
    assert min(traj) < TOLERANCE.get(name, 1e-2) * traj[0], (name, traj[-1])


_STAYS_XFAIL = {
    "imtl_g": "torchjd 0.18 IMTLGWeighting: pinv of the near-singular float32 Gramian of almost antiparallel "
    "gradients gives spurious negative weights, which throw the iterate off the Pareto set after reaching it",
    "nash_mtl": "torchjd's Nash-MTL (adapted from the official code, 'has some flaws' per its docs): near the Pareto set "
    "the ECOS sub-problem is ill-posed and the iterate oscillates around it (stationarity 0.02-0.08 from 2.0)",
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=_STAYS_XFAIL[n])) if n in _STAYS_XFAIL else n
        for n in ALL
    ],
)
def test_stays_pareto_stationary(name):
    traj = _toy_trajectory(name)
    assert max(traj[-20:]) < TOLERANCE.get(name, 1e-2) * traj[0], (name, traj[-1])


def _batch(model, data, tasks):
    features = model.shared(data.x)
    losses, present = tasks.losses(model.task_outputs(features, data.x), data.y)
    ctx = MTLContext(model, features, data.x, data.y, lambda x, y: {})
    return {t: losses[t] for t in present}, ctx


@pytest.mark.parametrize("name", ALL)
def test_missing_task_contributes_nothing(name, mixed_tasks, mixed_model, mixed_data):
    """A task without labels in the batch gets no gradient and causes no NaN."""
    y = mixed_data.y.clone()
    y[:, mixed_tasks.columns["reg"]] = float("nan")
    data = type(mixed_data)(mixed_data.x, y)
    method = make_method(name, mixed_tasks.names)
    for _ in range(3):  # stateful methods (famo, dwa, gradnorm) see several steps
        mixed_model.zero_grad(set_to_none=True)
        losses, ctx = _batch(mixed_model, data, mixed_tasks)
        assert set(losses) == {"cls", "ml"}
        method.backward(losses, ctx)
    assert (
        mixed_model.heads["reg"].weight.grad is None or float(mixed_model.heads["reg"].weight.grad.abs().sum()) == 0.0
    )
    grads = [p.grad for p in mixed_model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert float(mixed_model.trunk[0].weight.grad.abs().sum()) > 0
    assert set(method.last_weights) <= {"cls", "ml"}


def test_equal_weighting_is_exactly_the_summed_loss(mixed_tasks, mixed_model, mixed_data):
    losses, ctx = _batch(mixed_model, mixed_data, mixed_tasks)
    make_method("equal", mixed_tasks.names).backward(losses, ctx)
    ours = [p.grad.clone() for p in mixed_model.parameters()]
    mixed_model.zero_grad(set_to_none=True)
    losses, _ = _batch(mixed_model, mixed_data, mixed_tasks)
    sum(losses.values()).backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(ours, mixed_model.parameters()))


def _jacobian(model, losses):
    shared = model.shared_parameters()
    rows = [
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(v, shared, retain_graph=True)]) for v in losses.values()
    ]
    return torch.stack(rows)


@pytest.mark.parametrize("name", TORCHJD_AGGREGATORS)
def test_gradient_methods_agree_with_torchjd_on_the_same_jacobian(name, mixed_tasks, mixed_model, mixed_data):
    from torchjd import aggregation as A

    losses, ctx = _batch(mixed_model, mixed_data, mixed_tasks)
    jac = _jacobian(mixed_model, losses)
    reference = {
        "mgda": A.MGDA(),
        "pcgrad": A.PCGrad(),
        "cagrad": A.CAGrad(c=0.5),
        "imtl_g": A.IMTLG(),
        "aligned_mtl": A.AlignedMTL(),
        "upgrad": A.UPGrad(),
        "nash_mtl": A.NashMTL(n_tasks=3),
    }[name]
    torch.manual_seed(0)  # PCGrad projects in a random order
    expected = reference(jac)
    head_grads = {
        t: torch.autograd.grad(v, mixed_model.task_parameters(t), retain_graph=True) for t, v in losses.items()
    }
    torch.manual_seed(0)
    make_method(name, mixed_tasks.names).backward(losses, ctx)
    ours = torch.cat([p.grad.reshape(-1) for p in mixed_model.shared_parameters()])
    assert torch.allclose(ours, expected, atol=1e-5, rtol=1e-4)
    for t, grads in head_grads.items():  # heads get their own task's gradient
        for p, g in zip(mixed_model.task_parameters(t), grads):
            assert torch.allclose(p.grad, g, atol=1e-6)


def test_mgda_ub_uses_mgda_weights_of_the_representation(mixed_tasks, mixed_model, mixed_data):
    from torchjd.aggregation import MGDAWeighting

    losses, ctx = _batch(mixed_model, mixed_data, mixed_tasks)
    rows = torch.stack(
        [torch.autograd.grad(v, ctx.features, retain_graph=True)[0].reshape(-1) for v in losses.values()]
    )
    w = MGDAWeighting()(rows @ rows.T)
    expected = torch.autograd.grad(
        sum(wi * v for wi, v in zip(w, losses.values())), list(mixed_model.parameters()), retain_graph=True
    )
    make_method("mgda_ub", mixed_tasks.names).backward(losses, ctx)
    for p, g in zip(mixed_model.parameters(), expected):
        assert torch.allclose(p.grad, g, atol=1e-6)


def test_method_kinds():
    assert method_kind("upgrad") == "gradient" and method_kind("famo") == "weighting"


@pytest.mark.parametrize("name", ["equal", "upgrad", "gradnorm"])
def test_methods_follow_the_model_device(name, mixed_tasks, mixed_model, mixed_data):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device to check device placement")
    model = mixed_model.cuda()
    data = type(mixed_data)(mixed_data.x.cuda(), mixed_data.y.cuda())
    method = make_method(name, mixed_tasks.names).cuda()
    losses, ctx = _batch(model, data, mixed_tasks)
    method.backward(losses, ctx)
    assert all(p.grad.is_cuda for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", TORCHJD_AGGREGATORS)
def test_representation_level_weights_the_losses_by_the_feature_jacobian(name, mixed_tasks, mixed_model, mixed_data):
    """level="representation": the aggregator's weighting on the tasks' gradients w.r.t. the
    shared representation, then one backward of the weighted sum (MGDA-UB's route)."""
    from interlearn.multitask.gradients import _aggregators

    losses, ctx = _batch(mixed_model, mixed_data, mixed_tasks)
    rows = torch.stack(
        [torch.autograd.grad(v, ctx.features, retain_graph=True)[0].reshape(-1) for v in losses.values()]
    )
    torch.manual_seed(0)
    w = _aggregators()[name](3).weighting(rows)
    expected = torch.autograd.grad(
        sum(wi * v for wi, v in zip(w, losses.values())), list(mixed_model.parameters()), retain_graph=True
    )
    torch.manual_seed(0)
    make_method(name, mixed_tasks.names, level="representation").backward(losses, ctx)
    for p, g in zip(mixed_model.parameters(), expected):
        assert torch.allclose(p.grad, g, atol=1e-5), name
    with pytest.raises(ConfigError, match="level"):
        make_method(name, mixed_tasks.names, level="weights")
