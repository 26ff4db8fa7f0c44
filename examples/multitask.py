"""Multi-task learning in a few lines: one trunk, three heads, several ways to combine the tasks.

The embedded 8x8 digits carry three labels (digit, parity, >=5). We train one shared model per
method and three independent models, then print accuracy, Δm% and parameters; then train with
partial labels (each task labelled on 30% of the rows only).

    python examples/multitask.py [--epochs 30] [--methods equal,uncertainty,pcgrad,upgrad] [--out runs/examples]
"""

import argparse
from pathlib import Path

import torch

from interlearn.config import FitConfig
from interlearn.data.tensors import TensorData
from interlearn.multitask import MultiTaskModel, evaluate_multitask, heads_for, list_methods, mlp_trunk, train_multitask
from interlearn.multitask.compare import compare_methods, comparison_table, plot_comparison
from interlearn.multitask.data import DIGITS_TASKS, load_digits_multitask

ap = argparse.ArgumentParser(description="multi-task methods on the embedded digits")
ap.add_argument("--epochs", type=int, default=30)
ap.add_argument("--methods", default="equal,uncertainty,pcgrad,upgrad")
ap.add_argument("--out", default="runs/examples")
args = ap.parse_args()
torch.set_num_threads(1)
train, test = load_digits_multitask()
config = FitConfig(epochs=args.epochs, batch_size=64, lr=3e-3, amp=False)


def build(tasks):
    """Any trunk + a head per task; the independent baselines get the same trunk, one head."""
    return MultiTaskModel(mlp_trunk(64, 64, 32), heads_for(tasks.tasks, 32))


print("methods:", ", ".join(list_methods()))
rows = compare_methods(build, train, test, DIGITS_TASKS, args.methods.split(","), config)
print(
    comparison_table(
        rows, ["digit_accuracy", "parity_accuracy", "ge5_accuracy", "delta_m_pct", "trainable_params", "train_seconds"]
    )
)
print("plot:", plot_comparison(rows, DIGITS_TASKS, Path(args.out) / "multitask.png"))

# Partial labels: NaN marks a missing label; a task without labels in a batch contributes nothing.
g = torch.Generator().manual_seed(0)
y = train.y.clone()
for cols in DIGITS_TASKS.columns.values():
    y[torch.rand(len(y), generator=g) > 0.3, cols] = float("nan")
model = build(DIGITS_TASKS)
train_multitask(model, TensorData(train.x, y), DIGITS_TASKS, "upgrad", config)
print(
    "30% labels per task, upgrad:",
    {t: round(m["accuracy"], 3) for t, m in evaluate_multitask(model, test, DIGITS_TASKS).items()},
)
