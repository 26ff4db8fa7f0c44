"""Gradient combination on the shared parameters, through torchjd's aggregators.

Per-task gradients of the shared parameters form a Jacobian (tasks x parameters) that an
aggregator turns into one update; task-specific parameters get their own task's gradient.
``torchjd.autojac.mtl_backward`` computes the Jacobian in one batched (vmapped) backward through
the trunk, and ``jac_to_grad`` applies the aggregator. Methods and papers:

* mgda: Désidéri 2012; Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization".
* mgda_ub: Sener & Koltun's upper bound — MGDA weights from the gradients w.r.t. the shared
  *representation* (cheap: only the heads are differentiated per task), then one weighted backward.

Every method takes ``level="representation"`` to use that same cheap route: the aggregator's
weighting is applied to the tasks' gradients w.r.t. the representation (one vmapped pass through
the heads), then one backward of the weighted loss sum (like LibMTL's ``rep_grad``). ``mgda_ub``
is ``mgda`` at that level. The default ``level="parameters"`` is the exact method.
* pcgrad: Yu et al. 2020, "Gradient Surgery for Multi-Task Learning".
* cagrad: Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning" (c=0.5).
* imtl_g: Liu et al. 2021, "Towards Impartial Multi-task Learning".
* aligned_mtl: Senushkin et al. 2023, "Independent Component Alignment for Multi-Task Learning".
* upgrad: Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization".
* nash_mtl: Navon et al. 2022, "Multi-Task Learning as a Bargaining Game" (needs cvxpy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from interlearn.errors import ConfigError
from interlearn.multitask.base import MTLContext, MTLMethod, register_method

__all__ = ["JacobianMethod", "MGDAUB", "TORCHJD_AGGREGATORS"]


def _aggregators() -> dict[str, Callable[..., Any]]:
    from torchjd import aggregation as A

    return {
        "mgda": lambda n, **kw: A.MGDA(**kw),
        "pcgrad": lambda n, **kw: A.PCGrad(**kw),
        "cagrad": lambda n, c=0.5, **kw: A.CAGrad(c=c, **kw),
        "imtl_g": lambda n, **kw: A.IMTLG(**kw),
        "aligned_mtl": lambda n, **kw: A.AlignedMTL(**kw),
        "upgrad": lambda n, **kw: A.UPGrad(**kw),
        "nash_mtl": lambda n, **kw: A.NashMTL(n_tasks=n, **kw),
    }


TORCHJD_AGGREGATORS = ("mgda", "pcgrad", "cagrad", "imtl_g", "aligned_mtl", "upgrad", "nash_mtl")


class JacobianMethod(MTLMethod):
    """Aggregate the shared-parameter Jacobian with torchjd's aggregator ``aggregator``.

    Args:
        tasks: task names.
        aggregator: a name in :data:`TORCHJD_AGGREGATORS`.
        parallel_chunk_size: passed to ``mtl_backward`` (``None``: all tasks in one vmapped pass).
        **options: the aggregator's own options (e.g. ``c`` for CAGrad).
    """

    kind = "gradient"
    aggregator_name = ""

    def __init__(
        self, tasks: Sequence[str], level: str = "parameters", parallel_chunk_size: int | None = None, **options: Any
    ) -> None:
        super().__init__(tasks)
        if level not in ("parameters", "representation"):
            raise ConfigError(
                f"level={level!r}: choose 'parameters' (exact) or 'representation' (cheap, MGDA-UB style)"
            )
        self.level = level
        self.parallel_chunk_size = parallel_chunk_size
        self.options = options
        self._build = _aggregators()[self.aggregator_name]
        self.aggregator(len(self.tasks))  # fail early on bad options
        self._by_subset: dict[tuple[str, ...], Any] = {}

    # torchjd's stateful weightings (Nash-MTL) have reset() but no state_dict, so the state that
    # carries from step to step (the step count, which sets the update schedule, and the last
    # solution, the solver's warm start) is read from their attributes for fit's checkpoints.
    _CARRIED = ("step", "prvs_alpha", "normalization_factor")

    def get_extra_state(self) -> dict[str, Any]:
        """The stateful aggregators' step counts and warm starts, per set of labelled tasks."""
        out: dict[str, Any] = {}
        for key, agg in self._by_subset.items():
            w = getattr(agg, "weighting", None)
            if w is not None and all(hasattr(w, a) for a in self._CARRIED):
                out["|".join(key)] = {
                    "step": torch.tensor(float(w.step), dtype=torch.float64),
                    "prvs_alpha": torch.as_tensor(w.prvs_alpha).clone(),
                    "normalization_factor": torch.as_tensor(w.normalization_factor).clone(),
                }
        return {"weightings": out}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for joined, saved in state.get("weightings", {}).items():
            key = tuple(joined.split("|"))
            agg = self._by_subset.setdefault(key, self.aggregator(len(key)))
            w = agg.weighting
            w.step = float(saved["step"])
            w.prvs_alpha = saved["prvs_alpha"].numpy().copy()
            w.normalization_factor = saved["normalization_factor"].numpy().copy()
            if w.step > 0:  # the solver's problem is built on the first step; rebuild it
                w._init_optim_problem()

    def aggregator(self, n: int) -> Any:
        """A fresh torchjd aggregator for ``n`` tasks."""
        try:
            return self._build(n, **self.options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"method {self.aggregator_name!r}: bad options {self.options} ({exc})") from exc

    def backward(self, losses: dict[str, torch.Tensor], ctx: MTLContext) -> None:
        from torchjd.autojac import jac_to_grad, mtl_backward

        if not losses:
            return
        names = list(losses)
        if len(names) == 1:  # nothing to combine
            self.last_weights = {names[0]: 1.0}
            losses[names[0]].backward()
            return
        # stateful aggregators (Nash-MTL) keep one state per set of labelled tasks
        key = tuple(names)
        if key not in self._by_subset:
            self._by_subset[key] = self.aggregator(len(names))
        if self.level == "representation":
            self._representation_backward(losses, names, ctx, self._by_subset[key])
            return
        shared = ctx.model.shared_parameters()
        mtl_backward(
            [losses[t] for t in names],
            features=ctx.features,
            tasks_params=[ctx.model.task_parameters(t) for t in names],
            shared_params=shared,
            parallel_chunk_size=self.parallel_chunk_size,
        )
        weights = jac_to_grad(shared, self._by_subset[key])
        if isinstance(weights, torch.Tensor):
            self.last_weights = {t: float(w) for t, w in zip(names, weights.detach().cpu())}

    def _representation_backward(
        self, losses: dict[str, torch.Tensor], names: list[str], ctx: MTLContext, aggregator: Any
    ) -> None:
        values = torch.stack([losses[t] for t in names])
        # (tasks, batch, ...) gradients of each loss w.r.t. the representation, one vmapped pass
        eye = torch.eye(len(names), device=values.device, dtype=values.dtype)
        (jac,) = torch.autograd.grad(values, ctx.features, grad_outputs=eye, is_grads_batched=True, retain_graph=True)
        w = aggregator.weighting(jac.reshape(len(names), -1)).detach().to(values.dtype)
        self.last_weights = {t: float(x) for t, x in zip(names, w.cpu())}
        (w * values).sum().backward()


def _register(name: str) -> None:
    cls = type(
        f"JacobianMethod_{name}",
        (JacobianMethod,),
        {"aggregator_name": name, "__doc__": f"torchjd's {name} aggregator on the shared parameters."},
    )
    register_method(name)(cls)


for _name in TORCHJD_AGGREGATORS:
    _register(_name)


@register_method("mgda_ub")
class MGDAUB(JacobianMethod):
    """MGDA-UB: torchjd's MGDA weighting on the Gramian of the representation gradients."""

    aggregator_name = "mgda"

    def __init__(self, tasks: Sequence[str], epsilon: float = 1e-3, max_iters: int = 100) -> None:
        super().__init__(tasks, level="representation", epsilon=epsilon, max_iters=max_iters)
