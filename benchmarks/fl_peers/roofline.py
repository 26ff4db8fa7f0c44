"""The roofline floor of fl_matrix.py's workloads: the least time one training example can take
on this machine.

Per training example, ``max(compute, memory)``:

* **compute**: the multiply-add FLOPs of every matrix product and convolution of one training
  step (forward, weight gradient, input gradient; the LSTM's recurrence one time step at a
  time), each divided by the faster of two single-thread rates measured on this machine: the
  product's own shapes at the workload's batch (a convolution may beat the GEMM peak through
  oneDNN's algorithms) and the peak of a 1024 x 1024 x 1024 GEMM (a small product may reach
  it inside a fused kernel); per example, halved for 2 cores. Elementwise ops are left out.
* **memory**: the bytes one SGD step must move through main memory, per example, divided by
  the measured memory bandwidth: the weights
  read by the forward pass and again by the input gradient, the weight gradient written, and
  the optimizer step reading weights and gradient and writing the weights back (6 passes of
  4 bytes per parameter), divided by the batch, over the bandwidth of a one-thread ``copy_``
  whose working set is one core's weights and gradient (a model that fits in cache gets the
  cache's bandwidth, one that does not gets main memory's), times the cores. Cores share main
  memory, so this overstates the bandwidth of 2 cores and understates the floor: a lower bound.
  (A multi-threaded ``copy_`` was tried and rejected: OpenMP's barrier makes it slower than one
  thread at these sizes.) Activations are left out (a
  few per cent of the weight traffic on these models at batch 10).

No implementation reaches the floor (both terms leave work out); a ratio to it says how much of
the machine a tool leaves unused. Only the standard library, NumPy and torch are imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

__all__ = ["floor", "bandwidth", "parameter_count"]

Op = tuple[str, Callable[[], object], float, float]  # name, timed call, FLOPs per call, calls per example


def _best(fn: Callable[[], object], min_s: float = 0.3) -> float:
    """The best wall time of ``fn`` over repeated calls for ``min_s`` seconds (after 3 warm-ups)."""
    for _ in range(3):
        fn()
    best = float("inf")
    t_end = time.perf_counter() + min_s
    while time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _mm(m: int, k: int, n: int) -> tuple[Callable[[], object], float]:
    """A timed ``(m, k) @ (k, n)`` product and its FLOPs."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    return (lambda: a @ b), 2.0 * m * k * n


def _linear(name: str, rows: int, i: int, o: int, per_example: float, input_grad: bool = True) -> list[Op]:
    """Forward, weight-gradient and input-gradient products of a Linear applied to ``rows`` rows
    per call (``per_example`` calls per example)."""
    out = [(f"{name}.forward", *_mm(rows, i, o), per_example), (f"{name}.weight_grad", *_mm(o, rows, i), per_example)]
    if input_grad:
        out.append((f"{name}.input_grad", *_mm(rows, o, i), per_example))
    return out


def _conv(name: str, b: int, cin: int, cout: int, size: int, input_grad: bool) -> list[Op]:
    conv = torch.nn.Conv2d(cin, cout, 5, padding=2)
    x = torch.randn(b, cin, size, size)
    g = torch.randn(b, cout, size, size)
    flops = 2.0 * b * cin * 25 * cout * size * size
    weight = conv.weight.detach()

    def backward() -> None:
        torch.ops.aten.convolution_backward(
            g, x, weight, [cout], [1, 1], [2, 2], [1, 1], False, [0, 0], 1, [input_grad, True, True]
        )

    return [
        (f"{name}.forward", lambda: conv(x), flops, 1 / b),
        (f"{name}.backward", backward, flops * (2 if input_grad else 1), 1 / b),
    ]


def _ops(model: str, batch: int, vocab: int) -> list[Op]:
    """Every product of one training step of ``model`` at ``batch``."""
    b = batch
    if model == "2nn":
        return (
            _linear("fc1", b, 784, 200, 1 / b, input_grad=False)
            + _linear("fc2", b, 200, 200, 1 / b)
            + _linear("fc3", b, 200, 10, 1 / b)
        )
    if model == "femnist_cnn":
        ops = _conv("conv1", b, 1, 32, 28, input_grad=False) + _conv("conv2", b, 32, 64, 14, input_grad=True)
        return ops + _linear("fc", b, 3136, 2048, 1 / b) + _linear("head", b, 2048, 62, 1 / b)
    h, t = 256, 80
    ops = []
    for k, i in enumerate((8, h)):  # per layer: the input projection of all steps at once, the recurrence step by step
        ops += _linear(f"lstm{k}.input", b * t, i, 4 * h, 1 / b, input_grad=k > 0)
        ops += [
            (f"lstm{k}.recurrent.forward", *_mm(b, h, 4 * h), t / b),
            (f"lstm{k}.recurrent.input_grad", *_mm(b, 4 * h, h), t / b),
            (f"lstm{k}.recurrent.weight_grad", *_mm(4 * h, b * t, h), 1 / b),
        ]
    return ops + _linear("head", b * t, h, vocab, 1 / b)


def parameter_count(model: str, vocab: int) -> int:
    """Trainable parameters of the workload's model (the LSTM with one bias per gate)."""
    if model == "2nn":
        return 784 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10
    if model == "femnist_cnn":
        return 1 * 32 * 25 + 32 + 32 * 64 * 25 + 64 + 3136 * 2048 + 2048 + 2048 * 62 + 62
    h = 256
    lstm = (8 + h) * 4 * h + 4 * h + (h + h) * 4 * h + 4 * h
    return vocab * 8 + lstm + h * vocab + vocab


@torch.no_grad()
def bandwidth(threads: int, nbytes: int = 256 * 2**20) -> float:
    """Bytes per second of a ``copy_`` of ``nbytes`` (read + write) with ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.ones(max(nbytes // 4, 1024))
        b = torch.empty_like(a)
        return 2 * a.numel() * 4 / _best(lambda: b.copy_(a), min_s=1.0)
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def floor(model: str, batch: int, vocab: int = 0, cores: int = 2) -> dict:
    """Microseconds per training example at the roofline (see the module docstring), with its parts."""
    products = {}
    compute_1 = 0.0
    peak_fn, peak_flops = _mm(1024, 1024, 1024)
    peak = peak_flops / _best(peak_fn)
    for name, fn, call_flops, calls_per_example in _ops(model, batch, vocab):
        rate = call_flops / _best(fn)
        used = max(rate, peak)  # a small product may run at the peak inside a fused kernel: a floor takes the faster
        compute_1 += calls_per_example * call_flops / used
        products[name] = {
            "gflop_per_example": calls_per_example * call_flops / 1e9,
            "gflop_per_s_own_shape": rate / 1e9,
            "gflop_per_s_used": used / 1e9,
        }
    params = parameter_count(model, vocab)
    bytes_per_example = 6 * 4 * params / batch
    working_set = 2 * 4 * params  # one core's weights and gradient
    bw = cores * bandwidth(1, working_set // 2)  # a copy reads and writes: its working set is twice its size
    compute = compute_1 / cores
    memory = bytes_per_example / bw
    return {
        "us_per_example": 1e6 * max(compute, memory),
        "bound": "compute" if compute >= memory else "memory",
        "compute_us_per_example": 1e6 * compute,
        "memory_us_per_example": 1e6 * memory,
        "gflop_per_example": sum(p["gflop_per_example"] for p in products.values()),
        "peak_gemm_gflop_per_s": peak / 1e9,
        "bytes_per_example": bytes_per_example,
        "parameters": params,
        "bandwidth_gb_s": bw / 1e9,
        "working_set_bytes": working_set,
        "cores": cores,
        "products": products,
    }
