"""The vectorized engine: a whole cohort's local training as one batched computation.

The cohort's parameters are stacked along a new leading "client" dimension, and every local
step computes all clients' gradients at once: the forward is ``torch.func.vmap`` over
``torch.func.functional_call`` with the stacked params, the backward is one autograd pass
over the sum of the clients' losses (see ``grads_of`` for why not ``torch.func.grad``); then applies the client optimizer (SGD with momentum, Adam,
FedProx's proximal term, SCAFFOLD's correction) as batched tensor arithmetic. This replaces
``clients x steps`` small kernel launches and Python iterations by ``steps`` batched ones: the
idea behind JAX-based simulators such as FedJAX (Ro, Suresh & Wu 2021, "FedJAX: Federated
learning simulation with JAX") and pfl-research's vectorized local training.

Clients with different data sizes are handled by masking: each client's minibatches come from
:func:`~interlearn.federated.client.batch_schedule` with its own generator (exactly the
batches the sequential engine visits); batches are padded to the largest one with zero-weight
examples, and clients that have finished their steps are frozen by a per-client "active" mask.
The result equals the sequential engine's up to float rounding (tested within 1e-5).

Only per-example models vectorize: layers that mix examples in a batch or update state in
place (BatchNorm), fused recurrent kernels (``nn.LSTM``/``GRU``/``RNN``) and random layers
(dropout) raise a ConfigError that suggests the ``sequential`` engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
import torch.nn.functional as F

from interlearn.errors import ConfigError, DataError
from interlearn.federated.api import ClientData, ClientResult, ClientUpdate
from interlearn.federated.client.local_sgd import LocalSGD, cross_entropy
from interlearn.federated.client.scaffold import ScaffoldClient
from interlearn.federated.engines.fused_mlp import vectorized_fast_path
from interlearn.types import ClientId, Params

__all__ = ["VectorizedEngine", "check_vectorizable"]

_SUGGEST = "use engine='sequential' (it runs any model and client update)"


def check_vectorizable(model: nn.Module, client_update: Any) -> None:
    """Raise ConfigError when the vectorized engine cannot run ``model``/``client_update``.

    Raises:
        ConfigError: a BatchNorm, fused RNN or active dropout layer, or a client update other
            than :class:`LocalSGD` / :class:`ScaffoldClient`.
    """
    if type(client_update) not in (LocalSGD, ScaffoldClient):
        raise ConfigError(
            f"the vectorized engine runs LocalSGD and ScaffoldClient client updates, not {type(client_update).__name__}; {_SUGGEST}"
        )
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise ConfigError(f"module {name!r} is {type(m).__name__}, which mixes examples and updates running stats in place: it cannot be vectorized; {_SUGGEST} (or use GroupNorm/LayerNorm)")
        if isinstance(m, nn.RNNBase):
            raise ConfigError(f"module {name!r} is {type(m).__name__}, a fused kernel vmap cannot batch; {_SUGGEST} or write the cell with explicit gates (see interlearn.models.char_lstm)")
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            raise ConfigError(f"module {name!r} is {type(m).__name__}(p={m.p}): random layers cannot match per-client randomness under vmap; {_SUGGEST}")


class VectorizedEngine:
    """Runs the cohort's :class:`LocalSGD` updates as one ``vmap``-ed computation.

    Args:
        chunk_size: clients per batched computation (``None``: the whole cohort); lower it to
            bound memory for large cohorts or models.
        fast_path: run plain Linear/ReLU MLPs trained with SGD through the fused closed-form
            engine (:mod:`~interlearn.federated.engines.fused_mlp`, same results, ~2-3x less
            CPU); ``False`` always uses ``vmap``.

    Raises:
        ConfigError: ``chunk_size < 1``.

    Example:
        >>> engine = VectorizedEngine()
    """

    name = "vectorized"

    def __init__(self, chunk_size: int | None = None, fast_path: bool = True) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"chunk_size={chunk_size}: must be >= 1 or None (whole cohort)")
        self.chunk_size = chunk_size
        self.fast_path = fast_path

    def run_cohort(
        self,
        model: nn.Module,
        client_update: ClientUpdate,
        params: Params,
        cohort: Sequence[ClientData],
        client_states: dict[ClientId, Params | None],
        server_extras: Params,
        generators: Sequence[torch.Generator],
    ) -> list[tuple[ClientResult, Params | None]]:
        """Results in cohort order (see the module docstring).

        Raises:
            ConfigError: a model or client update that cannot be vectorized (use ``sequential``).
            DataError: a client without examples.
        """
        if self.fast_path and (fast := vectorized_fast_path(model, client_update, self.chunk_size)) is not None:
            return fast.run_cohort(model, client_update, params, cohort, client_states, server_extras, generators)
        check_vectorizable(model, client_update)
        if len(cohort) != len(generators):
            raise ConfigError(f"{len(cohort)} clients but {len(generators)} generators: pass one generator per client")
        step = len(cohort) if self.chunk_size is None else self.chunk_size
        out: list[tuple[ClientResult, Params | None]] = []
        for s in range(0, len(cohort), step):
            chunk = _run_chunk(model, client_update, params, cohort[s : s + step], client_states, server_extras, generators[s : s + step])  # type: ignore[arg-type]
            out.extend(chunk)
        return out

    def __repr__(self) -> str:
        return f"VectorizedEngine(chunk_size={self.chunk_size})"


def _expand(t: torch.Tensor, c: int) -> torch.Tensor:
    return t.unsqueeze(0).expand(c, *t.shape).clone()


def _gate(active: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Keep ``old`` for clients whose ``active`` flag is off. active: (C,)."""
    return torch.where(active.reshape(-1, *([1] * (new.dim() - 1))), new, old)


def _run_chunk(
    model: nn.Module,
    cu: LocalSGD,
    params: Params,
    cohort: Sequence[ClientData],
    client_states: dict[ClientId, Params | None],
    server_extras: Params,
    generators: Sequence[torch.Generator],
) -> list[tuple[ClientResult, Params | None]]:
    c = len(cohort)
    sizes = [len(d) for d in cohort]
    for d in cohort:
        if len(d) == 0:
            raise DataError(f"client {d.client_id} has no training examples; drop empty clients from the partition")
    # ---- the batch schedule of every client, padded: (C, S, B) indices, masks
    schedules = [cu.schedule(n, g) for n, g in zip(sizes, generators)]
    num_steps = [len(s) for s in schedules]
    s_max = max(num_steps)
    b_max = max(len(b) for sch in schedules for b in sch)
    dev = cohort[0].x.device
    idx = torch.zeros(c, s_max, b_max, dtype=torch.long)
    mask = torch.zeros(c, s_max, b_max)
    for i, sch in enumerate(schedules):
        for j, b in enumerate(sch):
            idx[i, j, : len(b)] = b
            mask[i, j, : len(b)] = 1.0
    active = torch.arange(s_max).unsqueeze(0) < torch.tensor(num_steps).unsqueeze(1)  # (C, S)
    idx, mask, active = idx.to(dev), mask.to(dev), active.to(dev)
    # ---- the cohort's data, padded to the largest client: (C, n_max, ...)
    n_max = max(sizes)
    x0, y0 = cohort[0].x, cohort[0].y
    xs = x0.new_zeros(c, n_max, *x0.shape[1:])
    ys = y0.new_zeros(c, n_max, *y0.shape[1:])
    for i, d in enumerate(cohort):
        xs[i, : sizes[i]] = d.x
        ys[i, : sizes[i]] = d.y
    rows = torch.arange(c, device=dev).unsqueeze(1)  # (C, 1)

    model.train()
    trainable = [k for k, p in model.named_parameters() if p.requires_grad]
    missing = [k for k in trainable if k not in params]
    if missing:
        raise ConfigError(f"trainable parameters {missing[:3]} are not in the global params; build params with model_params(model)")
    fixed = {k: v for k, v in params.items() if k not in trainable}  # frozen weights, float buffers
    p = {k: _expand(params[k], c).requires_grad_(True) for k in trainable}  # (C, *shape)
    glob = {k: params[k] for k in trainable}
    loss_fn = cu.loss
    mu = cu.prox_mu

    def per_example(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, C[, T]) outputs, (N[, T]) targets -> (N,) losses."""
        if loss_fn is cross_entropy:  # fast path for the default loss: no nested vmap
            le = F.cross_entropy(out, y.long(), reduction="none")
            return le.reshape(le.shape[0], -1).mean(1)
        # any mean-reduced loss, applied to one example at a time
        return vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)))(out, y)

    def forward(pc: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, {**pc, **fixed}, (x,))

    batched_forward = vmap(forward)

    def grads_of(pp: Params, xb: torch.Tensor, yb: torch.Tensor, mb: torch.Tensor) -> tuple[Params, torch.Tensor]:
        """Every client's gradient at once. The forward is vmapped over clients; the backward
        is ordinary autograd of the sum of the clients' losses: client c's loss depends only
        on its own slice of the stacked params, so d(sum)/d(params[c]) is client c's gradient.
        (torch.func.grad around the vmap gives the same numbers at about twice the per-step
        Python overhead, which dominates for small models.)"""
        out = batched_forward(pp, xb)  # (C, B, ...)
        le = per_example(out.flatten(0, 1), yb.flatten(0, 1)).reshape(mb.shape)  # (C, B)
        losses = (le * mb).sum(1) / mb.sum(1).clamp_min(1.0)  # (C,)
        total = losses.sum()
        if mu > 0:
            total = total + 0.5 * mu * sum(((pp[k] - glob[k]) ** 2).sum() for k in pp)
        gs = torch.autograd.grad(total, [pp[k] for k in trainable])
        return dict(zip(trainable, gs)), losses.detach()

    scaffold = isinstance(cu, ScaffoldClient)
    corr: Params = {}
    ci: Params = {}
    if scaffold:
        if server_extras.keys() != params.keys():
            raise ConfigError("ScaffoldClient got no server control variate: pair it with the 'scaffold' strategy")
        for k in params:
            states = [client_states.get(d.client_id) for d in cohort]
            ci[k] = torch.stack([st[k] if st is not None else torch.zeros_like(params[k]) for st in states])
        corr = {k: server_extras[k].unsqueeze(0) - ci[k] for k in trainable}

    sgd = cu.optimizer == "sgd"
    buf = {k: torch.zeros_like(v) for k, v in p.items()} if (sgd and cu.momentum) or not sgd else {}
    sq = {k: torch.zeros_like(v) for k, v in p.items()} if not sgd else {}
    t = torch.zeros(c, device=dev)
    b1, b2 = cu.betas
    loss_sum = torch.zeros(c, device=dev)
    all_active = active.all(0).tolist()  # steps where every client still trains: no gating needed
    for j in range(s_max):
        act = active[:, j]
        xb = xs[rows, idx[:, j]]  # (C, B, ...)
        yb = ys[rows, idx[:, j]]
        try:
            g, lval = grads_of(p, xb, yb, mask[:, j])
        except (RuntimeError, NotImplementedError) as exc:
            raise ConfigError(f"the vectorized engine could not batch this model under vmap ({type(exc).__name__}: {exc}); {_SUGGEST}") from exc
        full = all_active[j]
        loss_sum += lval if full else torch.where(act, lval, torch.zeros_like(lval))
        # per-client step size: -lr for active clients, 0 for finished ones, shaped (C, 1, ...)
        neg_lr = -cu.lr * act.to(xs.dtype if xs.is_floating_point() else torch.float32)
        with torch.no_grad():
            for k in trainable:
                gk = g[k]
                if scaffold:
                    gk = gk + corr[k]
                if cu.weight_decay:
                    gk = gk + cu.weight_decay * p[k]
                shape = (-1, *([1] * (gk.dim() - 1)))
                if sgd:
                    if cu.momentum:
                        buf[k] = cu.momentum * buf[k] + gk if full else _gate(act, cu.momentum * buf[k] + gk, buf[k])
                        gk = buf[k]
                    if full:
                        p[k].add_(gk, alpha=-cu.lr)
                    else:
                        p[k].addcmul_(gk, neg_lr.reshape(shape))
                else:  # Adam, as torch.optim.Adam (L2 weight decay, bias correction)
                    tk = (t + act.float()).clamp_min(1.0).reshape(shape)
                    m_new = b1 * buf[k] + (1 - b1) * gk
                    v_new = b2 * sq[k] + (1 - b2) * gk * gk
                    bc1 = 1 - b1**tk
                    bc2 = 1 - b2**tk
                    upd = (cu.lr / bc1) * m_new / (v_new.sqrt() / bc2.sqrt() + cu.eps)
                    p[k].copy_(_gate(act, p[k] - upd, p[k]))
                    buf[k] = _gate(act, m_new, buf[k])
                    sq[k] = _gate(act, v_new, sq[k])
        t = t + act.float()

    results: list[tuple[ClientResult, Params | None]] = []
    for i, d in enumerate(cohort):
        update = {k: (p[k][i].detach() - params[k]) if k in p else torch.zeros_like(v) for k, v in params.items()}
        metrics = {"loss": float(loss_sum[i]) / num_steps[i], "steps": float(num_steps[i]), "examples": float(sizes[i])}
        extras: Params = {}
        new_state = client_states.get(d.client_id)
        if scaffold:
            new_ci = {}
            for k, x in params.items():
                if k in p:
                    new_ci[k] = ci[k][i] - server_extras[k] + (x - p[k][i].detach()) / (num_steps[i] * cu.lr)
                else:
                    new_ci[k] = ci[k][i]
            extras = {k: new_ci[k] - ci[k][i] for k in params}
            new_state = new_ci
        results.append((ClientResult(d.client_id, update, float(sizes[i]), metrics, extras), new_state))
    return results
