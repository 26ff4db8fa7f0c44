"""The fused MLP engine: a cohort's local SGD on a Linear/ReLU network with a closed-form backward.

The cohort trains as one batched computation, like the ``vectorized`` engine, but without
autograd or ``vmap``: for a network made only of ``Flatten``, ``Linear`` and ``ReLU`` layers
trained with mean cross-entropy, the gradient of every layer is written out by hand, and the
SGD step of each weight matrix is fused into one in-place batched GEMM,
``W.baddbmm_(dZᵀ, H, alpha=-lr)``. No per-client gradient tensor, autograd graph or vmap
dispatch exists in the plain-SGD case; on McMahan et al. 2017's MNIST 2NN this roughly halves
the per-round time of the vmap engine (benchmarks/fl_speed.py). The batched-cohort idea is the
one of FedJAX (Ro, Suresh & Wu 2021) and pfl-research's vectorized local training.

Why the closed form is exact. For a client with a batch of ``n`` real examples, logits ``Z``
and labels ``y``, the mean cross-entropy ``L = -1/n Σ log softmax(Z)[y]`` has
``dL/dZ = (softmax(Z) - onehot(y)) / n``. Through ``Z = H Wᵀ + b``: ``dL/dW = (dL/dZ)ᵀ H``,
``dL/db = Σ_rows dL/dZ`` and ``dL/dH = (dL/dZ) W``; through ``H = relu(A)``:
``dL/dA = dL/dH · 1[A > 0]`` (torch's ReLU backward also gives 0 at exactly 0). These are the
gradients autograd computes, so results equal the ``sequential`` engine up to float rounding
(tested within 1e-5). Padded examples (clients of unequal size) get weight 0 in ``dL/dZ``;
clients that have finished their steps are frozen by a per-client "active" mask, exactly as in
the ``vectorized`` engine, and batches come from :func:`~interlearn.federated.client.batch_schedule`
with each client's own generator.

What qualifies (:func:`unsupported_reason` says why not):

* the model: an ``nn.Sequential`` (nested ones are flattened) of ``nn.Linear``, ``nn.ReLU``,
  ``nn.Flatten`` (default dims), ``nn.Identity`` and ``nn.Dropout(p=0)``, with at least one
  Linear, no hooks, every parameter trainable, no buffers;
* the client update: exactly :class:`~interlearn.federated.client.LocalSGD` with
  ``optimizer="sgd"`` and the default cross-entropy loss. Momentum, weight decay and FedProx's
  ``prox_mu`` are supported (they need the explicit gradient, so only plain SGD gets the fully
  fused update); Adam, SCAFFOLD and custom losses are not: use ``vectorized`` or ``sequential``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from interlearn.errors import ConfigError, DataError, ShapeError
from interlearn.federated.api import ClientData, ClientResult, ClientUpdate
from interlearn.federated.client.local_sgd import LocalSGD, cross_entropy
from interlearn.types import ClientId, Params

__all__ = ["FusedMLPEngine", "supports", "unsupported_reason", "vectorized_fast_path"]

_PREGATHER_ELEMENTS = 1 << 26  # 256 MB of float32 batches gathered up front, at most


def _leaves(module: nn.Module, name: str, out: list[tuple[str, nn.Module]]) -> str | None:
    """Flatten nested ``nn.Sequential`` containers into ``out``; a reason string if impossible."""
    if module._forward_hooks or module._forward_pre_hooks:
        return f"module {name or 'model'!r} has forward hooks"
    if type(module) is nn.Sequential:
        for child_name, child in module.named_children():
            reason = _leaves(child, f"{name}.{child_name}" if name else child_name, out)
            if reason:
                return reason
        return None
    out.append((name, module))
    return None


def _layers(model: nn.Module) -> tuple[list[tuple[str, nn.Linear, bool]], bool] | str:
    """``([(name, linear, relu_after)], flattens_input)`` or the reason the model does not qualify."""
    if type(model) is not nn.Sequential:
        return f"the model is a {type(model).__name__}, not an nn.Sequential of Linear/ReLU layers"
    leaves: list[tuple[str, nn.Module]] = []
    reason = _leaves(model, "", leaves)
    if reason:
        return reason
    layers: list[tuple[str, nn.Linear, bool]] = []
    flatten_first = False
    for name, m in leaves:
        t = type(m)
        if t is nn.Linear:
            layers.append((name, m, False))
        elif t is nn.ReLU:
            if not layers or layers[-1][2]:
                return f"module {name!r} (ReLU) must directly follow a Linear layer"
            layers[-1] = (layers[-1][0], layers[-1][1], True)
        elif t is nn.Flatten:
            if (m.start_dim, m.end_dim) != (1, -1):
                return f"module {name!r} is Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}); only the default dims are supported"
            flatten_first = flatten_first or not layers
        elif t is nn.Dropout and m.p == 0:
            continue
        elif t is nn.Identity:
            continue
        else:
            return f"module {name!r} is {t.__name__}; only Linear, ReLU, Flatten, Identity and Dropout(p=0) are supported"
    if not layers:
        return "the model has no Linear layer"
    if any(not p.requires_grad for p in model.parameters()):
        return "the model has frozen parameters"
    if any(True for _ in model.buffers()):
        return "the model has buffers"
    return layers, flatten_first


def unsupported_reason(model: nn.Module, client_update: Any) -> str | None:
    """Why :class:`FusedMLPEngine` cannot run ``model`` with ``client_update``; ``None`` if it can.

    Example:
        >>> from interlearn.models.mlp import mlp
        >>> unsupported_reason(mlp(4, [8], 2), LocalSGD()) is None
        True
    """
    if type(client_update) is not LocalSGD:
        return f"the client update is {type(client_update).__name__}, not LocalSGD"
    if client_update.optimizer != "sgd":
        return f"LocalSGD(optimizer={client_update.optimizer!r}): only 'sgd' has a fused update"
    if client_update.loss is not cross_entropy:
        return "LocalSGD has a custom loss: the closed-form backward is for the default cross-entropy"
    layers = _layers(model)
    return layers if isinstance(layers, str) else None


def supports(model: nn.Module, client_update: Any) -> bool:
    """True when :class:`FusedMLPEngine` can run ``model`` with ``client_update`` (see the module docstring)."""
    return unsupported_reason(model, client_update) is None


def vectorized_fast_path(model: nn.Module, client_update: Any, chunk_size: int | None = None) -> FusedMLPEngine | None:
    """A :class:`FusedMLPEngine` when it supports this model and client update, else ``None``
    (the ``vectorized`` engine uses it to dispatch to the fused path automatically)."""
    return FusedMLPEngine(chunk_size=chunk_size) if supports(model, client_update) else None


class FusedMLPEngine:
    """Runs a cohort's :class:`LocalSGD` on a Linear/ReLU ``nn.Sequential`` with a fused backward.

    Args:
        chunk_size: clients per batched computation (``None``: the whole cohort); lower it to
            bound memory for large cohorts or models.

    Raises:
        ConfigError: ``chunk_size < 1``.

    Example:
        >>> engine = FusedMLPEngine()
    """

    name = "fused_mlp"

    def __init__(self, chunk_size: int | None = None) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"chunk_size={chunk_size}: must be >= 1 or None (whole cohort)")
        self.chunk_size = chunk_size

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
        """Results in cohort order, equal to the ``sequential`` engine's up to float rounding.

        Raises:
            ConfigError: a model or client update this engine does not support (the message
                says why and suggests ``vectorized``/``sequential``), or one generator per
                client missing.
            ShapeError: params or inputs that do not fit the model.
            DataError: a client without examples, or labels out of range.
        """
        reason = unsupported_reason(model, client_update)
        if reason is not None:
            raise ConfigError(f"the fused_mlp engine cannot run this: {reason}; use engine='vectorized' or 'sequential'")
        if len(cohort) != len(generators):
            raise ConfigError(f"{len(cohort)} clients but {len(generators)} generators: pass one generator per client")
        layers, flatten = _layers(model)  # type: ignore[misc]
        keys = [(f"{n}.weight", f"{n}.bias" if lin.bias is not None else None, relu) for n, lin, relu in layers]
        expected = {k for w, b, _ in keys for k in (w, b) if k is not None}
        if set(params) != expected:
            raise ShapeError(f"params keys {sorted(params)[:4]} do not match the model's {sorted(expected)[:4]}; build params with model_params(model)")
        for w, b, _ in keys:
            out_f, in_f = params[w].shape
            if b is not None and params[b].shape != (out_f,):
                raise ShapeError(f"params {b!r} has shape {tuple(params[b].shape)}, expected ({out_f},)")
        for d in cohort:
            if len(d) == 0:
                raise DataError(f"client {d.client_id} has no training examples; drop empty clients from the partition")
        step = len(cohort) if self.chunk_size is None else self.chunk_size
        out: list[tuple[ClientResult, Params | None]] = []
        for s in range(0, len(cohort), step):
            out.extend(_run_chunk(keys, flatten, client_update, params, cohort[s : s + step], client_states, generators[s : s + step]))  # type: ignore[arg-type]
        return out

    def __repr__(self) -> str:
        return f"FusedMLPEngine(chunk_size={self.chunk_size})"


def _check_inputs(cohort: Sequence[ClientData], flatten: bool, in_features: int, classes: int) -> list[torch.Tensor]:
    """Each client's inputs as (n, features) views; raise on inputs or labels the model cannot take."""
    xs = []
    for d in cohort:
        x = d.x.reshape(len(d), -1) if flatten else d.x
        if x.dim() != 2 or x.shape[1] != in_features:
            hint = "" if flatten else " (the model has no leading nn.Flatten)"
            raise ShapeError(f"client {d.client_id}: inputs of shape {tuple(d.x.shape)} do not fit the first Linear's {in_features} features{hint}")
        if not x.is_floating_point():
            raise DataError(f"client {d.client_id}: inputs have dtype {x.dtype}; convert them to floats")
        if d.y.dim() != 1:
            raise ShapeError(f"client {d.client_id}: labels of shape {tuple(d.y.shape)}; expected (N,) class indices")
        lo, hi = int(d.y.min()), int(d.y.max())
        if lo < 0 or hi >= classes:
            raise DataError(f"client {d.client_id}: labels range over [{lo}, {hi}] but the model has {classes} outputs")
        xs.append(x)
    return xs


def _update(p: torch.Tensor, glob: torch.Tensor, buf: torch.Tensor | None, cu: LocalSGD, full: bool,
            act: torch.Tensor, grad: torch.Tensor | None, gemm: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """One SGD step of a stacked parameter ``p`` (clients, ...) in place, as ``torch.optim.SGD``:
    ``g = grad + (wd + mu) p - mu glob``; ``buf = m buf + g``; ``p -= lr buf``. The loss gradient
    is ``grad``, or ``gemm = (dZᵀ, H)`` whose product is the weight gradient (plain SGD folds it
    into one ``baddbmm_``). Clients with ``act`` off keep ``p`` and ``buf`` unchanged."""
    lr, mom, mu = cu.lr, cu.momentum, cu.prox_mu
    reg = cu.weight_decay + mu
    if not mom and (not reg or full):
        # padded/finished clients have dZ = 0, so without regularization they are left unchanged
        if gemm is not None:
            p.baddbmm_(*gemm, beta=1.0 - lr * reg, alpha=-lr)
        else:
            if reg:
                p.mul_(1.0 - lr * reg)
            p.sub_(grad, alpha=lr)  # type: ignore[arg-type]
        if mu:
            p.add_(glob, alpha=lr * mu)
        return
    g = torch.bmm(*gemm) if gemm is not None else grad.clone()  # type: ignore[union-attr]
    if reg:
        g.add_(p, alpha=reg)
    if mu:
        g.sub_(glob, alpha=mu)
    gate = act.reshape(-1, *([1] * (p.dim() - 1)))
    if mom:
        assert buf is not None  # internal: allocated whenever momentum is on
        if full:
            buf.mul_(mom).add_(g)
        else:
            buf.copy_(torch.where(gate, buf * mom + g, buf))
        g = buf
    if full:
        p.sub_(g, alpha=lr)
    else:
        p.addcmul_(g, gate.to(p.dtype), value=-lr)


def _run_chunk(
    keys: list[tuple[str, str | None, bool]],
    flatten: bool,
    cu: LocalSGD,
    params: Params,
    cohort: Sequence[ClientData],
    client_states: dict[ClientId, Params | None],
    generators: Sequence[torch.Generator],
) -> list[tuple[ClientResult, Params | None]]:
    c = len(cohort)
    w0 = params[keys[0][0]]
    dev, dtype = w0.device, w0.dtype
    classes = int(params[keys[-1][0]].shape[0])
    xs = _check_inputs(cohort, flatten, int(w0.shape[1]), classes)
    sizes = [len(d) for d in cohort]
    # ---- every client's batch schedule, padded: local row indices (C, S, B) and a 0/1 mask
    schedules = [cu.schedule(n, g) for n, g in zip(sizes, generators)]
    num_steps = [len(s) for s in schedules]
    s_max = max(num_steps)
    b_max = max(int(sch[0].shape[0]) for sch in schedules)  # an epoch's first batch is its largest
    idx = torch.zeros(c, s_max, b_max, dtype=torch.long)  # padding reads example 0, with weight 0
    mask = torch.zeros(c, s_max, b_max, dtype=dtype)
    cols = torch.arange(b_max)
    for i, sch in enumerate(schedules):
        padded = pad_sequence(sch, batch_first=True)  # (S_i, B_i)
        idx[i, : len(sch), : padded.shape[1]] = padded
        mask[i, : len(sch)] = cols < torch.tensor([b.shape[0] for b in sch]).unsqueeze(1)
    # per-example weight 1/n_batch (the mean in the loss); zero for padding and finished clients
    counts = mask.sum(2)  # (C, S)
    scale = (mask / counts.clamp_min(1.0).unsqueeze(2)).to(dev)
    active = (counts > 0).to(dev)  # (C, S)
    all_active = (counts > 0).all(0).tolist()  # steps where no client has finished
    # Every step's batch gathered up front, client by client (one index_select each, written in
    # place): with E local epochs that is E copies of the cohort's data, so past a budget the
    # batches are gathered step by step instead.
    pre = idx.numel() * xs[0].shape[1] <= _PREGATHER_ELEMENTS
    xb_all = torch.empty(c, s_max, b_max, xs[0].shape[1], dtype=dtype, device=dev) if pre else None
    yb_all = torch.empty(c, s_max, b_max, 1, dtype=torch.long, device=dev)
    for i, d in enumerate(cohort):
        local = idx[i].reshape(-1).to(d.x.device)
        if xb_all is not None:
            rows = xb_all[i].view(s_max * b_max, -1)
            if xs[i].dtype == dtype and xs[i].device == dev:
                torch.index_select(xs[i], 0, local, out=rows)  # straight into the buffer, no temporary
            else:
                rows.copy_(xs[i].index_select(0, local))  # converts dtype/device
        yb_all[i] = d.y.index_select(0, local).long().to(dev).view(s_max, b_max, 1)
    if xb_all is None:
        xs = [x.to(device=dev, dtype=dtype) for x in xs]
        idx = idx.to(dev)

    # ---- stacked params (C, out, in) / (C, out); biases None when a Linear has none
    W = [params[w].unsqueeze(0).repeat(c, 1, 1) for w, _, _ in keys]
    bias = [params[b].unsqueeze(0).repeat(c, 1) if b is not None else None for _, b, _ in keys]
    glob = [(params[w].unsqueeze(0), params[b].unsqueeze(0) if b is not None else None) for w, b, _ in keys]
    mom = cu.momentum
    bufW = [torch.zeros_like(t) if mom else None for t in W]
    bufb = [torch.zeros_like(t) if (mom and t is not None) else None for t in bias]
    loss_sum = torch.zeros(c, dtype=dtype, device=dev)
    n_layers = len(W)
    with torch.no_grad():
        for j in range(s_max):
            full = all_active[j]
            act = active[:, j]
            # layer inputs, hs[l]: (C, B, in_l)
            hs = [xb_all[:, j] if xb_all is not None else torch.stack([x.index_select(0, idx[i, j]) for i, x in enumerate(xs)])]
            z = hs[0]
            for li in range(n_layers):
                z = torch.baddbmm(bias[li].unsqueeze(1), z, W[li].transpose(1, 2)) if bias[li] is not None else torch.bmm(z, W[li].transpose(1, 2))
                if keys[li][2]:
                    z = z.clamp_min_(0.0)
                if li < n_layers - 1:
                    hs.append(z)
            logp = torch.log_softmax(z, -1)  # (C, B, classes)
            yb = yb_all[:, j]  # (C, B, 1)
            sc = scale[:, j].unsqueeze(-1)  # (C, B, 1)
            # mean NLL over each client's real examples (0 for finished clients)
            loss_sum -= (logp.gather(2, yb) * sc).sum((1, 2))
            dz = logp.exp_().mul_(sc).scatter_add_(2, yb, -sc)  # dL/dZ = (softmax - onehot) * sc
            for li in range(n_layers - 1, -1, -1):
                if keys[li][2]:  # through the ReLU: zero where its output is 0
                    dz = dz * (hs[li + 1] > 0) if li < n_layers - 1 else dz * (z > 0)
                # dL/dH of the layer below, from this layer's weights before their update
                dh = torch.bmm(dz, W[li]) if li > 0 else None
                _update(W[li], glob[li][0], bufW[li], cu, full, act, None, (dz.transpose(1, 2), hs[li]))
                if bias[li] is not None:
                    _update(bias[li], glob[li][1], bufb[li], cu, full, act, dz.sum(1), None)  # type: ignore[arg-type]
                dz = dh  # type: ignore[assignment]

    # ---- updates: one batched subtraction; each client's update is a view of its slice
    for li, (w, b, _) in enumerate(keys):
        W[li].sub_(glob[li][0])
        if b is not None:
            bias[li].sub_(glob[li][1])  # type: ignore[union-attr]
    losses = loss_sum.tolist()
    results: list[tuple[ClientResult, Params | None]] = []
    for i, data in enumerate(cohort):
        update: Params = {}
        for li, (w, b, _) in enumerate(keys):
            update[w] = W[li][i]
            if b is not None:
                update[b] = bias[li][i]  # type: ignore[index]
        update = {k: update[k] for k in params}  # the params' key order
        metrics = {"loss": losses[i] / num_steps[i], "steps": float(num_steps[i]), "examples": float(sizes[i])}
        results.append((ClientResult(data.client_id, update, float(sizes[i]), metrics), client_states.get(data.client_id)))
    return results
