"""Knowledge distillation on MNIST: a CNN teacher -> a small MLP student (Hinton et al. 2015).

Three models, all evaluated on the 10,000 MNIST test images:
- teacher: a CNN (two 3x3 conv blocks with 32/64 channels, a 512-unit hidden layer, dropout
  0.3) trained with inputs jittered by up to +-2 pixels, the kind of strong teacher the paper's
  "2x1200 with dropout and jittered inputs" stands for;
- student alone: an MLP (784-400-400-10 by default) trained on the hard labels only;
- distilled student: the same MLP, from the *same initial weights* and with the *same batch
  order* (same seed for the init and for fit()'s per-epoch permutation), trained with
  kd_loss(T, alpha) against the teacher.

Neither student sees augmentation, so the teacher's logits are fixed: they are computed once
(eval mode) and cached, which the script reports as ``teacher_logits_cached``. T and alpha come
from the literature, not from the test set: Hinton et al. report that for students with 300 or
more units per layer all temperatures above 8 work about equally well, and use T=20 for their
2x800 student with a much lower weight on the hard targets (alpha=0.9 on the soft term here).

Usage:
    python benchmarks/distill.py --data-dir ../shared/data --json benchmarks/results/distill.json
    (--holdout 10000: score on the last 10,000 *training* images instead of the test set,
    for development without looking at the test set.)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from torch import nn

from interlearn.config import FitConfig
from interlearn.data import TensorData, load_mnist
from interlearn.distill import compare_models, distill
from interlearn.models.small_cnn import small_cnn
from interlearn.tasks import classification
from interlearn.training import evaluate, fit


def jitter(max_shift: int = 2):
    """Random translation of each image by up to ``max_shift`` pixels (zero padding)."""

    def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        padded = nn.functional.pad(x, (max_shift,) * 4)
        dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
        rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (n, h, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (n, 1, w)
        return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)

    return augment


def mlp_student(hidden: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"))
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--teacher-epochs", type=int, default=6)
    ap.add_argument("--student-epochs", type=int, default=20)
    ap.add_argument("--student-hidden", type=int, default=400)
    ap.add_argument("--temperature", type=float, default=20.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--holdout", type=int, default=0, help="score on the last N training images instead of the test set"
    )
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (smoke tests)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()

    train = load_mnist("train", args.data_dir)
    test = load_mnist("test", args.data_dir)
    if args.holdout:
        n = len(train) - args.holdout
        train, test = TensorData(train.x[:n], train.y[:n]), TensorData(train.x[n:], train.y[n:])
    if args.limit:
        train = TensorData(train.x[: args.limit], train.y[: args.limit])
    task = classification(10)

    # -- teacher: CNN, dropout, jittered inputs
    teacher = small_cnn(10, channels=(32, 64), hidden=512, dropout=0.3, seed=args.seed)
    t_cfg = FitConfig(
        epochs=args.teacher_epochs,
        batch_size=128,
        lr=2e-3,
        schedule="onecycle",
        weight_decay=1e-4,
        seed=args.seed,
        progress=False,
        device="cpu",
    )
    t0 = time.perf_counter()
    t_res = fit(teacher, train, task, t_cfg, augment=jitter(2))
    t_sec = time.perf_counter() - t0
    print(f"teacher: {evaluate(teacher, test, task)['accuracy']:.4f} in {t_sec:.0f}s", flush=True)

    # -- students: same init, same batch order, same budget
    s_cfg = FitConfig(
        epochs=args.student_epochs,
        batch_size=128,
        lr=1e-3,
        schedule="onecycle",
        seed=args.seed,
        progress=False,
        device="cpu",
    )
    init = mlp_student(args.student_hidden, args.seed + 1)
    alone, distilled = copy.deepcopy(init), copy.deepcopy(init)
    t0 = time.perf_counter()
    a_res = fit(alone, train, task, s_cfg)
    a_sec = time.perf_counter() - t0
    print(f"student alone: {evaluate(alone, test, task)['accuracy']:.4f} in {a_sec:.0f}s", flush=True)
    t0 = time.perf_counter()
    d_res = distill(
        teacher, distilled, train, task, s_cfg, temperature=args.temperature, alpha=args.alpha, cache="auto"
    )
    d_sec = time.perf_counter() - t0
    print(f"distilled student: {evaluate(distilled, test, task)['accuracy']:.4f} in {d_sec:.0f}s", flush=True)

    rows = compare_models(
        {"teacher": teacher, "student_alone": alone, "distilled_student": distilled},
        test,
        task,
        extra={
            "teacher": {"train_seconds": t_sec, "final_train_loss": t_res.history[-1]["train_loss"]},
            "student_alone": {"train_seconds": a_sec, "final_train_loss": a_res.history[-1]["train_loss"]},
            "distilled_student": {"train_seconds": d_sec, "final_train_loss": d_res.history[-1]["train_loss"]},
        },
    )
    te, se, de = (rows[k]["errors"] for k in ("teacher", "student_alone", "distilled_student"))
    reduction = 1.0 - de / se if se else 0.0
    result = {
        "teacher_errors": te,
        "student_errors": se,
        "distilled_errors": de,
        "error_reduction": reduction,
        "target_error_reduction": 0.25,
        "target_met": reduction >= 0.25,
        "models": rows,
        "temperature": args.temperature,
        "alpha": args.alpha,
        "teacher_epochs": args.teacher_epochs,
        "student_epochs": args.student_epochs,
        "student_hidden": [args.student_hidden, args.student_hidden],
        "teacher_logits_cached": True,
        "scored_on": f"last {args.holdout} training images (holdout)" if args.holdout else "MNIST test set (10,000)",
        "seed": args.seed,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "total_seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time(),  # this process's CPU time: what a quiet machine would take
        "paper_hinton2015": {"teacher_errors": 67, "student_errors": 146, "distilled_errors": 74},
    }
    print()
    print(
        f"{'model':<18} {'errors':>6} {'accuracy':>8} {'params':>10} {'bytes':>10} {'b1 ms':>7} {'b256 ms':>8} {'train s':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<18} {r['errors']:>6} {r['accuracy']:>8.4f} {r['params']:>10,} {r['bytes']:>10,} "
            f"{r['latency_ms_b1']:>7.3f} {r['latency_ms_b256']:>8.2f} {r['train_seconds']:>8.0f}"
        )
    print(
        f"error reduction by distillation: {reduction:.1%} (target >= 25%: {'met' if reduction >= 0.25 else 'NOT met'}); "
        f"total {result['total_seconds']:.0f}s wall, {result['cpu_seconds']:.0f}s CPU"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
