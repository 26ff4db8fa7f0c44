"""Distil a large teacher into a small student (Hinton et al. 2015) and compare them.

Train a 2x256 MLP teacher on the embedded digits, then a 16-unit student twice from the same
initial weights and batch order: alone, and distilled (temperature 4, alpha 0.9). Print
parameters, size on disk, accuracy and CPU latency of all three.

    python examples/distill.py [--teacher-epochs 30] [--student-epochs 60]
"""

import argparse
import copy

import torch

from interlearn import FitConfig, classification, fit, load_digits
from interlearn.distill import compare_models, distill
from interlearn.recipes.distill import mlp

ap = argparse.ArgumentParser(description="teacher -> student distillation on the embedded digits")
ap.add_argument("--teacher-epochs", type=int, default=30)
ap.add_argument("--student-epochs", type=int, default=60)
args = ap.parse_args()
torch.set_num_threads(1)
train, test = load_digits()
task = classification(10)

torch.manual_seed(0)
teacher = mlp(64, (256, 256), 10, dropout=0.2)
fit(
    teacher,
    train,
    task,
    FitConfig(epochs=args.teacher_epochs, batch_size=64, lr=1e-3, weight_decay=1e-4, progress=False),
)

torch.manual_seed(1)
init = mlp(64, (16,), 10)
alone, student = copy.deepcopy(init), copy.deepcopy(init)
cfg = FitConfig(epochs=args.student_epochs, batch_size=64, lr=3e-3, progress=False)  # same seed -> same batch order
fit(alone, train, task, cfg)
distill(teacher, student, train, task, cfg, temperature=4.0, alpha=0.9)

rows = compare_models({"teacher": teacher, "student alone": alone, "distilled": student}, test, task, repeats=10)
print(f"{'model':<14} {'accuracy':>8} {'params':>8} {'bytes':>9} {'b1 ms':>7} {'b256 ms':>8}")
for name, r in rows.items():
    print(
        f"{name:<14} {r['accuracy']:>8.3f} {r['params']:>8,} {r['bytes']:>9,} {r['latency_ms_b1']:>7.3f} {r['latency_ms_b256']:>8.2f}"
    )
