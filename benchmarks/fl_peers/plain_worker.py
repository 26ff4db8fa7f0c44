"""A plain PyTorch FedAvg loop for fl_matrix.py: the floor a user's own code sets.

Usage (fl_matrix.py launches it): python plain_worker.py PREP_DIR OUT_DIR

What a user writes without a framework, on one thread: for every client of the round, load the
global weights into one ``nn.Module`` (common.py's models: ``nn.Linear``, ``nn.Conv2d`` and the
fused ``nn.LSTM``), shuffle its examples, take ``torch.optim.SGD`` steps on batches, keep the
weight delta; then average the deltas weighted by examples. Same data, cohorts, initial weights
and hyper-parameters as every other tool of the matrix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from common import Clock, build_model, load_prep, loss_fn, train_arrays, write_result


def local_sgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: dict,
    g: torch.Generator,
) -> None:
    """One client's local epochs of batch SGD on ``model`` (in place)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg["lr"])
    b = cfg["batch_size"]
    for _ in range(cfg["local_epochs"]):
        order = torch.randperm(len(y), generator=g)
        for s in range(0, len(y), b):
            idx = order[s : s + b]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()


def main() -> None:
    prep, out = sys.argv[1], sys.argv[2]
    start = Clock.now()
    torch.set_num_threads(1)
    cfg = load_prep(prep)
    x, y = train_arrays(cfg)
    parts = [torch.from_numpy(p) for p in cfg["partition"]]
    model = build_model(cfg)
    glob = {k: v.detach().clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(cfg["seed"])
    marks: list[float] = []
    t0 = Clock.now()
    for row in cfg["schedule"].tolist():
        total = {k: torch.zeros_like(v) for k, v in glob.items()}
        n = 0
        for c in row:
            model.load_state_dict(glob)
            local_sgd(model, x[parts[c]], y[parts[c]], cfg, g)
            w = len(parts[c])
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    total[k].add_(v - glob[k], alpha=w)
            n += w
        glob = {k: glob[k] + total[k] / n for k in glob}
        marks.append(Clock.now())
    write_result(out, glob, marks, start, round_start=t0, engine="plain PyTorch loop (1 thread)")


if __name__ == "__main__":
    main()
