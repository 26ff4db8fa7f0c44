"""Closed-form gradients of a Linear/ReLU network under mean cross-entropy, for a stack of clients.

The ``vectorized`` engine normally gets a cohort's gradients from autograd (a ``vmap``-ed
forward, one backward); for the commonest federated model, an ``nn.Sequential`` of Linear and
ReLU layers (McMahan et al. 2017's MNIST 2NN), this module writes the backward out by hand as
batched GEMMs into preallocated buffers: no autograd graph, no ``vmap`` dispatch. Measured on
the 2NN (benchmarks/fl_matrix.py) this is several times cheaper per step than autograd on this
CPU, so the engine takes it whenever a model and client update qualify. Only the gradient is
computed here: the client update's own ``apply`` (its optimizer math) then takes the step.

Why it is exact. For a batch of ``n`` examples with logits ``Z`` and labels ``y``, the mean
cross-entropy ``L = -1/n Σ log softmax(Z)[y]`` has ``dL/dZ = (softmax(Z) - onehot(y)) / n``.
Through ``Z = H Wᵀ + b``: ``dL/dW = (dL/dZ)ᵀ H``, ``dL/db = Σ_rows dL/dZ`` and
``dL/dH = (dL/dZ) W``; through ``H = relu(A)``: ``dL/dA = dL/dH · 1[A > 0]`` (torch's ReLU
backward also gives 0 at exactly 0). These are the gradients autograd computes, so the engine's
results equal the ``sequential`` engine's up to float rounding (tested within 1e-5).

What qualifies (:func:`closed_form_reason` says why not): an ``nn.Sequential`` (nested ones are
flattened) of ``nn.Linear``, ``nn.ReLU``, ``nn.Flatten`` (default dims), ``nn.Identity`` and
``nn.Dropout(p=0)`` with at least one Linear, no hooks, every parameter trainable and no
buffers; a client update that is :class:`~interlearn.federated.client.LocalSGD` (or a subclass)
with its default objective and step and the default cross-entropy loss.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from interlearn.errors import DataError, ShapeError
from interlearn.federated.client.local_sgd import LocalSGD, cross_entropy
from interlearn.federated.client.step import StepUpdate
from interlearn.types import Params

__all__ = ["MLPGradients", "closed_form_reason"]

Layer = tuple[str, nn.Linear, bool]  # (module name, the Linear, followed by a ReLU)


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


def _layers(model: nn.Module) -> tuple[list[Layer], bool] | str:
    """``(layers, flattens_input)`` or the reason the model does not qualify."""
    if type(model) is not nn.Sequential:
        return f"the model is a {type(model).__name__}, not an nn.Sequential of Linear/ReLU layers"
    leaves: list[tuple[str, nn.Module]] = []
    reason = _leaves(model, "", leaves)
    if reason:
        return reason
    layers: list[Layer] = []
    flatten_first = False
    for name, m in leaves:
        t = type(m)
        if t is nn.Linear and isinstance(m, nn.Linear):
            layers.append((name, m, False))
        elif t is nn.ReLU:
            if not layers or layers[-1][2]:
                return f"module {name!r} (ReLU) must directly follow a Linear layer"
            layers[-1] = (layers[-1][0], layers[-1][1], True)
        elif t is nn.Flatten and isinstance(m, nn.Flatten):
            if (m.start_dim, m.end_dim) != (1, -1):
                return f"module {name!r} is Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}); only the default dims are supported"
            flatten_first = flatten_first or not layers
        elif (t is nn.Dropout and m.p == 0) or t is nn.Identity:
            continue
        else:
            return (
                f"module {name!r} is {t.__name__}; only Linear, ReLU, Flatten, Identity and Dropout(p=0) are supported"
            )
    if not layers:
        return "the model has no Linear layer"
    if any(not p.requires_grad for p in model.parameters()):
        return "the model has frozen parameters"
    if any(True for _ in model.buffers()):
        return "the model has buffers"
    return layers, flatten_first


def closed_form_reason(model: nn.Module, client_update: Any) -> str | None:
    """Why :class:`MLPGradients` cannot stand in for autograd here; ``None`` if it can.

    Example:
        >>> from interlearn.models.mlp import mlp
        >>> closed_form_reason(mlp(4, [8], 2), LocalSGD()) is None
        True
    """
    if not isinstance(client_update, LocalSGD):
        return f"the client update is {type(client_update).__name__}, not LocalSGD"
    cls = type(client_update)
    if cls.objective is not LocalSGD.objective or cls.step is not StepUpdate.step:
        return f"{cls.__name__} overrides objective or step"
    if client_update.loss is not cross_entropy:
        return "LocalSGD has a custom loss: the closed form is for the default cross-entropy"
    layers = _layers(model)
    return layers if isinstance(layers, str) else None


class MLPGradients:
    """Per-client gradients of a qualifying MLP (see the module docstring), written into
    buffers this object owns and reuses: ``grads(params, x, y) -> (losses, grads)``.

    Args:
        model: the qualifying ``nn.Sequential``.

    Raises:
        ShapeError: the model does not qualify (the message says why).
    """

    def __init__(self, model: nn.Module) -> None:
        layers = _layers(model)
        if isinstance(layers, str):
            raise ShapeError(f"closed-form gradients need a Linear/ReLU nn.Sequential: {layers}")
        self.layers, self.flatten = layers
        self.keys = [
            (f"{n}.weight", f"{n}.bias" if lin.bias is not None else None, relu) for n, lin, relu in self.layers
        ]
        self._buf: Params = {}

    def _out(self, key: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        buf = self._buf.get(key)
        if (
            buf is None
            or buf.shape[1:] != shape[1:]
            or buf.shape[0] < shape[0]
            or buf.dtype != like.dtype
            or buf.device != like.device
        ):
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._buf[key] = buf
        return buf[: shape[0]]

    @torch.no_grad()
    def __call__(self, params: Params, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Params]:
        """Mean cross-entropy of each client's batch and its gradients.

        Args:
            params: stacked params, (clients, ...) per entry.
            x: (clients, batch, ...) inputs; y: (clients, batch) class indices.

        Returns:
            ``(losses, grads)``: (clients,) losses and gradients keyed like ``params`` (views of
            reused buffers: valid until the next call).

        Raises:
            ShapeError: inputs that do not fit the first layer.
            DataError: labels outside the output range.
        """
        c, b = int(x.shape[0]), int(x.shape[1])
        h = x.reshape(c, b, -1) if self.flatten else x
        w0 = params[self.keys[0][0]]
        if h.dim() != 3 or h.shape[2] != w0.shape[2]:
            hint = "" if self.flatten else " (the model has no leading nn.Flatten)"
            raise ShapeError(
                f"inputs of shape {tuple(x.shape[1:])} per client do not fit the first Linear's {w0.shape[2]} features{hint}"
            )
        classes = int(params[self.keys[-1][0]].shape[1])
        if int(y.min()) < 0 or int(y.max()) >= classes:
            raise DataError(f"labels range over [{int(y.min())}, {int(y.max())}] but the model has {classes} outputs")
        hs = [h]
        z = h
        n_layers = len(self.keys)
        for li, (wk, bk, relu) in enumerate(self.keys):
            wt = params[wk].transpose(1, 2)
            z = torch.baddbmm(params[bk].unsqueeze(1), z, wt) if bk is not None else torch.bmm(z, wt)
            if relu:
                z = z.clamp_min_(0.0)
            if li < n_layers - 1:
                hs.append(z)
        logp = torch.log_softmax(z, -1)  # (C, B, classes)
        yi = y.long().unsqueeze(-1)
        losses = -logp.gather(2, yi).squeeze(-1).mean(1)
        dz = logp.exp_().scatter_add_(2, yi, torch.full_like(logp[..., :1], -1.0)).div_(b)  # (softmax - onehot) / n
        grads: Params = {}
        for li in range(n_layers - 1, -1, -1):
            wk, bk, relu = self.keys[li]
            if relu:  # through the ReLU: zero where its output is 0
                dz = dz * ((hs[li + 1] if li < n_layers - 1 else z) > 0)
            w = params[wk]
            grads[wk] = torch.bmm(dz.transpose(1, 2), hs[li], out=self._out(wk, tuple(w.shape), w))
            if bk is not None:
                grads[bk] = torch.sum(dz, 1, out=self._out(bk, tuple(params[bk].shape), w))
            if li > 0:
                dz = torch.bmm(dz, w)
        return losses, grads
