"""``engine="auto"``: the fastest engine for this model, client update and machine, by a rule.

The rule (validated on the matrix of ``benchmarks/fl_matrix.py``: the MNIST 2NN, LEAF's FEMNIST
CNN and the Shakespeare character LSTM, on this repository's 2-core machine):

0. A client update that is not a :class:`~interlearn.federated.client.StepUpdate` (a plain
   callable, e.g. Opacus' DP-SGD, which keeps each client's accountant in the object) runs
   ``sequential`` in process: its state would split across worker processes.
1. **How one core trains a share of the cohort.** Linear/ReLU MLPs trained with
   :class:`~interlearn.federated.client.LocalSGD` and cross-entropy batch well: the
   ``vectorized`` engine with closed-form gradients trains a cohort several times faster than
   one client after another. Everything else (convolutions, LSTMs, custom layers or updates)
   runs ``sequential``: per-client weights give batching no arithmetic reuse on a CPU, PyTorch's
   fused kernels (``nn.LSTM``, oneDNN convolutions) do not run under ``vmap``, and ragged
   clients make batched steps wait for the longest client.
2. **How many cores.** When more than one core is available, the cohort has at least two
   clients and a round is worth more than the cost of handing work to worker processes (an
   estimate from two timed local steps taken at start-up, times the steps a round takes), the
   cohort is split across ``multicore`` workers, each running the engine of step 1. Models on
   an accelerator stay in process.

The choice and its reason are logged at start (and returned by :meth:`AutoEngine.describe`, which
the round loop writes into the run's log and ``metrics.jsonl``).
"""

from __future__ import annotations

import logging
import time

import torch

from interlearn.federated.api import CohortOutcome, CohortTask, EngineSetup
from interlearn.federated.client.step import StepContext, StepUpdate, client_rng, trainable_keys
from interlearn.federated.engines.base import EngineBase
from interlearn.federated.engines.closed_form import closed_form_reason
from interlearn.federated.engines.multicore import MultiCoreEngine, available_cores
from interlearn.federated.engines.sequential import SequentialEngine
from interlearn.federated.engines.vectorized import VectorizedEngine
from interlearn.federated.params import model_params

__all__ = ["AutoEngine", "choose_engine"]

log = logging.getLogger(__name__)

MIN_ROUND_SECONDS = 0.05
"""A round estimated below this on one core stays in process (worker hand-off costs ~1 ms per
client and message; below 50 ms of work the split gains little)."""


def _round_seconds(setup: EngineSetup) -> float | None:
    """One core's seconds for a round of the mean client, from two timed local steps (after a
    warm-up step); ``None`` when the update is not a StepUpdate or the data is empty."""
    update, model, pop = setup.client_update, setup.model, setup.population
    if not isinstance(update, StepUpdate) or len(pop) == 0:
        return None
    sizes = pop.sizes.float()
    cid = int(torch.argmax(sizes))
    data = pop.client(cid)
    if len(data) == 0:
        return None
    try:
        params = model_params(model)
        ctx = StepContext(params, {}, trainable_keys(model, params))
        gen = torch.Generator().manual_seed(0)
        batches = update.schedule(len(data), gen)
        local = update.begin(params, None, ctx)
        state = update.init_state(local, None, ctx)
        model.train()
        times = []
        with client_rng(gen):
            for t, idx in enumerate((batches * 3)[:3], start=1):
                t0 = time.perf_counter()
                local, state, _ = update.step(model, local, state, data.x[idx], data.y[idx], ctx, t)
                times.append(time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001  (the round itself will report problems)
        log.debug("auto: step probe failed (%s)", exc)
        return None
    per_step = min(times[1:])
    mean_steps = len(update.schedule(max(1, int(sizes.mean().round())), torch.Generator().manual_seed(0)))
    return per_step * mean_steps * max(1, setup.max_cohort)


def choose_engine(setup: EngineSetup, cores: int | None = None) -> tuple[EngineBase, str]:
    """The engine the rule picks (not started) and the reason, in words."""
    if not isinstance(setup.client_update, StepUpdate):
        # a plain callable may keep per-client state in itself (Opacus' accountants do): the
        # state would split across worker processes, so it stays in this process
        return (
            SequentialEngine(),
            f"{type(setup.client_update).__name__} is not a StepUpdate: one client after another, in process",
        )
    reason = closed_form_reason(setup.model, setup.client_update)
    inner = "vectorized" if reason is None else "sequential"
    why = (
        "Linear/ReLU MLP with LocalSGD: batched closed-form steps"
        if reason is None
        else f"{reason}: one client after another"
    )
    cores = available_cores() if cores is None else cores
    on_cpu = all(p.device.type == "cpu" for p in setup.model.parameters())
    if not on_cpu or cores < 2 or setup.max_cohort < 2:
        why += (
            "; "
            + ("model on an accelerator" if not on_cpu else f"{cores} core(s), cohort {setup.max_cohort}")
            + ": in process"
        )
        return (VectorizedEngine() if inner == "vectorized" else SequentialEngine()), why
    est = _round_seconds(setup)
    if est is not None and est < MIN_ROUND_SECONDS:
        why += f"; a round is ~{est * 1000:.0f} ms of work: in process"
        return (VectorizedEngine() if inner == "vectorized" else SequentialEngine()), why
    workers = min(cores, setup.max_cohort)
    why += f"; {workers} cores" + (f", a round is ~{est:.2f} s of work" if est is not None else "")
    return MultiCoreEngine(workers=workers, inner=inner), why


class AutoEngine(EngineBase):
    """Picks and runs the engine :func:`choose_engine` names for the run (see the module docstring).

    Args:
        cores: cores to plan for (``None``: every core this process may use).

    Example:
        >>> engine = AutoEngine()
    """

    name = "auto"

    def __init__(self, cores: int | None = None) -> None:
        super().__init__()
        self.cores = cores
        self.engine: EngineBase | None = None
        self.reason = ""

    def start(self, setup: EngineSetup) -> None:
        """Choose (once per setup) and start the chosen engine."""
        same = self.setup is not None and self.setup.same_run(setup)
        if self.engine is None or not same:
            if self.engine is not None:
                self.engine.stop()
            self.engine, self.reason = choose_engine(setup, self.cores)
        super().start(setup)
        self.engine.start(setup)
        log.info("engine=auto chose %s: %s", self.engine.describe(), self.reason)

    def run_cohort(self, task: CohortTask) -> CohortOutcome:
        if self.engine is None:
            self.bound()
        assert self.engine is not None  # internal: bound() raised otherwise
        return self.engine.run_cohort(task)

    def describe(self) -> str:
        inner = self.engine.describe() if self.engine is not None else "not started"
        return f"auto -> {inner} ({self.reason})" if self.reason else f"auto -> {inner}"

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
        self.engine = None
        self.reason = ""
        super().stop()
