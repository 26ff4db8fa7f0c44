"""Data-parallel training for :func:`interlearn.fit`, through Hugging Face Accelerate.

Every process holds a replica of the model and works on its share of each *global* batch; the
gradients are averaged across processes before the optimizer step, so the processes stay in
lockstep (Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating Data Parallel
Training", VLDB; DDP underneath). Accelerate starts the processes (``accelerate launch``), sets
up the process group (gloo on CPUs, NCCL on GPUs, across machines), picks each process's device,
wraps the model in DDP and provides the collectives; nothing here opens a process group.

What this module adds is what makes N processes train *the same model* as one:

- the batch order is the single-process order (same seed, same global batch); each process
  takes a contiguous slice of every global batch (:meth:`Replicas.shard`);
- a slice's mean loss is weighted by its share of the global batch before the gradients are
  averaged, so an uneven last batch (5 examples on 2 processes: 3 + 2) still gives the gradient
  of the mean over all 5; a process whose slice is empty (a last batch smaller than the number
  of processes) runs one example with weight 0 so that every process joins every collective;
- losses, validation metrics and the divergence check are reduced across processes, so every
  process sees the same history and stops (early, or on a NaN) at the same step.

Gradient combination (a custom ``backward`` in ``fit``, e.g. multi-task PCGrad/UPGrad) calls
autograd itself, outside DDP's hooks: those steps run without DDP and average the combined
gradients with Accelerate's ``reduce`` after the hook (:meth:`Replicas.average_grads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from interlearn.config import resolve_device
from interlearn.errors import ConfigError

__all__ = ["Replicas", "is_main_process"]


def is_main_process() -> bool:
    """Whether this is process 0 of a launch (always true in a plain single process)."""
    from accelerate import PartialState  # deferred heavy import: only fit() needs Accelerate

    # the same `cpu` flag as Replicas: whichever is created first sets up the process for both
    return bool(PartialState(cpu=not torch.cuda.is_available()).is_main_process)


class Replicas:
    """The processes of one :func:`interlearn.fit` call (one process when not launched).

    Args:
        device: ``FitConfig.device``. In a single process it is honoured as given; in a
            multi-process launch the device of each process comes from ``accelerate launch``
            (``"auto"``, or the same device type, is accepted).

    Attributes:
        world: number of processes.
        rank: this process's index (0 is the main process: checkpoints, progress, tracking).
        device: where this process trains.
        precision: the launcher's mixed precision (``"no"``, ``"fp16"``, ``"bf16"``).

    Raises:
        ConfigError: a multi-process launch whose devices do not match ``device``.
    """

    def __init__(self, device: str) -> None:
        from accelerate import Accelerator  # deferred heavy import (see is_main_process)

        # A CPU-only machine launched with `accelerate launch --multi_gpu` gets LOCAL_RANK from
        # torchrun; cpu=True is what turns that into MULTI_CPU (gloo) instead of N lone processes.
        # On a GPU machine Accelerate's state is process-wide and may already be on CUDA, so
        # `cpu` is only forced where no GPU exists (device="cpu" is then honoured below).
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(), device_placement=False)
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        self.precision = str(self.accelerator.mixed_precision)
        if self.world == 1:
            self.device = resolve_device(device)
        else:
            self.device = self.accelerator.device
            if device != "auto" and torch.device(device).type != self.device.type:
                raise ConfigError(
                    f"device={device!r}, but this {self.world}-process launch gave process {self.rank} the device {self.device}; "
                    "set device='auto' (each process's device comes from accelerate launch; add --cpu or "
                    "ACCELERATE_USE_CPU=1 to train on CPUs)"
                )

    @property
    def is_main(self) -> bool:
        """Whether this is the process that writes checkpoints, shows progress and tracks."""
        return self.rank == 0

    # ---- batches
    def shard(self, idx: torch.Tensor) -> tuple[torch.Tensor, int, float]:
        """This process's slice of the global batch ``idx``.

        Returns:
            ``(local, n, weight)``: the indices to run, how many of them count (0 when the
            slice is empty and one placeholder example runs with weight 0), and the factor that
            turns the slice's mean loss into its share of the global mean (``n * world / len(idx)``).
        """
        if self.world == 1:
            return idx, len(idx), 1.0
        local = idx.tensor_split(self.world)[self.rank]
        if len(local) == 0:
            return idx[:1], 0, 0.0
        return local, len(local), len(local) * self.world / len(idx)

    def shard_of(self, n: int) -> torch.Tensor:
        """Indices of this process's share of ``n`` examples (for evaluation)."""
        return torch.arange(self.rank, n, self.world)

    # ---- model
    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DDP (through ``Accelerator.prepare_model``) when several processes train."""
        if self.world == 1 or not any(p.requires_grad for p in model.parameters()):
            return model
        return self.accelerator.prepare_model(model, device_placement=False)

    def unwrap(self, net: nn.Module) -> nn.Module:
        """The model inside ``net`` (DDP and any forward wrapper Accelerate added removed)."""
        return net if net is None or self.world == 1 else self.accelerator.unwrap_model(net, keep_fp32_wrapper=False)

    def no_sync(self, net: nn.Module) -> contextlib.AbstractContextManager[Any]:
        """Turn off DDP's gradient averaging (a custom backward averages afterwards)."""
        return self.accelerator.no_sync(net) if self.world > 1 else contextlib.nullcontext()

    def average_grads(self, params: Sequence[nn.Parameter], weight: float) -> None:
        """Weight this process's gradients by its share and average them across processes.

        Parameters without a gradient on some process count as zero there, so every process
        reduces tensors of the same shapes.
        """
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads]) * weight
        flat = self.accelerator.reduce(flat, reduction="mean")
        for p, chunk in zip(params, flat.split([g.numel() for g in grads])):
            p.grad = chunk.view_as(p).to(p.dtype)

    # ---- collectives
    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over processes (returned as is in one process)."""
        return values if self.world == 1 else self.accelerator.reduce(values, reduction="sum")

    def gather(self, obj: Any) -> list[Any]:
        """One picklable object from every process, in rank order."""
        if self.world == 1:
            return [obj]
        from accelerate.utils import gather_object  # deferred heavy import (see is_main_process)

        return gather_object([obj])

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.world > 1:
            self.accelerator.wait_for_everyone()


def sum_metric_dicts(parts: Sequence[dict[str, float]]) -> dict[str, float]:
    """Key-wise sum of per-process metric sums."""
    out: dict[str, float] = {}
    for d in parts:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + float(v)
    return out
