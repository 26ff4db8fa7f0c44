"""PROTOTYPE (benchmark only, not library code): a cohort engine for Linear/ReLU MLPs with a
hand-derived batched backward, to show where interlearn's ``vectorized`` engine loses time.

For a stack ``[Flatten] Linear (ReLU Linear)*`` trained with plain SGD and mean cross-entropy,
one local step of all C clients is 3 batched forward GEMMs (``baddbmm``), 2 input-gradient
GEMMs and one weight update per layer fused into ``W.baddbmm_(d^T, h, alpha=-lr)``: no
per-client gradient tensors are materialized, no autograd graph, no ``vmap`` dispatch. Batches
come from ``LocalSGD.schedule`` with each client's generator, exactly as in the library's
engines, so results match them up to float rounding (fl_speed.py reports the difference).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from interlearn.federated.api import ClientData, ClientResult
from interlearn.federated.client import LocalSGD
from interlearn.types import ClientId, Params


class FusedMLPEngine:
    name = "fused_mlp_prototype"

    def run_cohort(self, model: nn.Module, client_update: LocalSGD, params: Params, cohort: Sequence[ClientData],
                   client_states: dict[ClientId, Params | None], server_extras: Params, generators: Sequence[torch.Generator]) -> list[tuple[ClientResult, Params | None]]:
        cu = client_update
        if type(cu) is not LocalSGD or cu.optimizer != "sgd" or cu.momentum or cu.weight_decay or cu.prox_mu:
            raise ValueError("prototype: plain SGD LocalSGD only")
        linears = [(k, m) for k, m in model.named_modules() if isinstance(m, nn.Linear)]
        c = len(cohort)
        sizes = [len(d) for d in cohort]
        schedules = [cu.schedule(n, g) for n, g in zip(sizes, generators)]
        s_max = max(len(s) for s in schedules)
        b_max = max(len(b) for s in schedules for b in s)
        idx = torch.zeros(c, s_max, b_max, dtype=torch.long)
        mask = torch.zeros(c, s_max, b_max)
        for i, sch in enumerate(schedules):
            for j, b in enumerate(sch):
                idx[i, j, : len(b)] = b
                mask[i, j, : len(b)] = 1.0
        n_max = max(sizes)
        xs = cohort[0].x.new_zeros(c, n_max, cohort[0].x[0].numel())
        ys = cohort[0].y.new_zeros(c, n_max)
        for i, d in enumerate(cohort):
            xs[i, : sizes[i]] = d.x.reshape(sizes[i], -1)
            ys[i, : sizes[i]] = d.y
        W = [params[f"{k}.weight"].unsqueeze(0).repeat(c, 1, 1) for k, _ in linears]
        bias = [params[f"{k}.bias"].unsqueeze(0).repeat(c, 1) for k, _ in linears]
        rows = torch.arange(c).unsqueeze(1)
        cols = torch.arange(b_max).unsqueeze(0)
        loss_sum = torch.zeros(c)
        lr = cu.lr
        with torch.no_grad():
            for j in range(s_max):
                m = mask[:, j]  # (C, B)
                h = [xs[rows, idx[:, j]]]
                for li in range(len(W)):
                    z = torch.baddbmm(bias[li].unsqueeze(1), h[-1], W[li].transpose(1, 2))
                    h.append(z.clamp_min(0) if li < len(W) - 1 else z)
                yb = ys[rows, idx[:, j]]
                logp = torch.log_softmax(h[-1], -1)
                count = m.sum(1, keepdim=True).clamp_min(1.0)
                loss_sum -= (logp[rows, cols, yb] * m).sum(1) / count.squeeze(1)
                d = logp.exp()
                d[rows, cols, yb] -= 1.0
                d *= (m / count).unsqueeze(-1)  # mean loss per client; padded/finished rows -> 0
                for li in range(len(W) - 1, -1, -1):
                    d_prev = torch.bmm(d, W[li]) * (h[li] > 0) if li > 0 else None
                    W[li].baddbmm_(d.transpose(1, 2), h[li], alpha=-lr)
                    bias[li].sub_(d.sum(1), alpha=lr)
                    d = d_prev
        out = []
        for i, dd in enumerate(cohort):
            upd = {}
            for li, (k, _) in enumerate(linears):
                upd[f"{k}.weight"] = W[li][i] - params[f"{k}.weight"]
                upd[f"{k}.bias"] = bias[li][i] - params[f"{k}.bias"]
            metrics = {"loss": float(loss_sum[i]) / len(schedules[i]), "steps": float(len(schedules[i])), "examples": float(sizes[i])}
            out.append((ClientResult(dd.client_id, upd, float(sizes[i]), metrics), client_states.get(dd.client_id)))
        return out
