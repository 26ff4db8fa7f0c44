"""Run by tests/test_parallel.py, alone or under ``accelerate launch``: the same fit three ways.

1. ``full``: 4 epochs uninterrupted;
2. ``part``: the same run stopped at the start of epoch 2 (its checkpoint holds epochs 0-1);
3. ``resumed``: a fresh model resuming that checkpoint to epoch 4.

101 training examples in global batches of 32 give a last batch of 5 (3 + 2 on two processes);
the validation set of 33 splits 17 + 16. Process 0 writes ``OUT/<name>.safetensors`` and
``OUT/report.json``; every process counts its checkpoint writes.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

import interlearn.training as training
from interlearn.config import FitConfig
from interlearn.data import TensorData
from interlearn.tasks import classification

out = Path(sys.argv[1])
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
x = torch.randn(134, 8, generator=g)
y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 0.8).long()
train, val = TensorData(x[:101], y[:101]), TensorData(x[101:], y[101:])

writes = {"n": 0}
_save = training.save_checkpoint


def counting_save(*args, **kwargs):
    writes["n"] += 1
    return _save(*args, **kwargs)


training.save_checkpoint = counting_save


def model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


class Stop(Exception):
    pass


def stop_at_2(epoch, m):
    if epoch == 2:
        raise Stop


cfg = dict(
    epochs=4, batch_size=32, optimizer="sgd", lr=0.1, momentum=0.9, schedule="cosine", warmup=0.1, device="cpu", seed=3
)
runs = {}
full = model(0)
runs["full"] = training.fit(full, train, classification(3), FitConfig(**cfg), val=val)
part = model(0)
try:
    training.fit(
        part,
        train,
        classification(3),
        FitConfig(**cfg, checkpoint_dir=str(out / "ck")),
        val=val,
        on_epoch_start=stop_at_2,
    )
except Stop:
    pass
resumed = model(99)
runs["resumed"] = training.fit(
    resumed, train, classification(3), FitConfig(**cfg, checkpoint_dir=str(out / "ck"), resume=True), val=val
)

from accelerate import PartialState  # noqa: E402  (after fit: fit set up the processes)

state = PartialState()
(out / f"writes.{state.process_index}.json").write_text(
    json.dumps({"writes": writes["n"], "processes": state.num_processes})
)
if state.process_index == 0:
    for name, m in (("full", full), ("resumed", resumed)):
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(out / f"{name}.safetensors"))
    (out / "report.json").write_text(json.dumps({k: r.history for k, r in runs.items()}))
