"""The ClientApp: a plain PyTorch loop (DataLoader, shuffle, SGD), as in Flower's quickstart."""

from __future__ import annotations

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from torch.utils.data import DataLoader, TensorDataset

from flower_app.task import build_model, load, loss_fn, partition

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    config = msg.content["config"]
    prep = str(config["prep"])
    pid, rnd, seed = int(config["partition-id"]), int(config["server-round"]), int(config["seed"])
    x, y = partition(prep, pid)
    cfg = load(prep)["cfg"]
    model = build_model(cfg)  # type: ignore[arg-type]
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    gen = torch.Generator().manual_seed(seed * 1_000_003 + rnd * 1_009 + pid)
    loader = DataLoader(TensorDataset(x, y), batch_size=int(config["batch-size"]), shuffle=True, generator=gen)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=float(config["lr"]))
    model.train()
    total, steps = 0.0, 0
    for _ in range(int(config["local-epochs"])):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
    reply = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord({"train_loss": total / max(1, steps), "num-examples": len(x)}),
        }
    )
    return Message(content=reply, reply_to=msg)
