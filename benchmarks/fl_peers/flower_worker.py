"""Flower 1.42 baseline for fl_speed.py: FedAvg on the MNIST 2NN with the Message API and
``flwr.simulation.run_simulation`` on the Ray backend (the documented simulation path).

Usage (fl_speed.py launches it): python flower_worker.py PREP_DIR OUT_DIR

ServerApp: Flower's message-based ``FedAvg`` (weighted by "num-examples"), with one override:
``configure_train`` puts the prep's cohort schedule into each node's config ("partition-id"),
so Flower trains the same clients in the same rounds as interlearn and pfl. ClientApp: a plain
PyTorch loop (DataLoader, shuffle, SGD) as in Flower's quickstart. Ray is limited to 2 CPUs,
one CPU per ClientApp actor.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from common import Clock, TwoNN, init_model, load_prep, read_mnist, write_result  # noqa: E402

_CACHE: dict[str, object] = {}


def _client_data(prep: str, pid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This node's local copy of partition ``pid`` (loaded once per Ray actor)."""
    if "cfg" not in _CACHE:
        cfg = load_prep(prep)
        x, y = read_mnist(cfg["data_dir"], "train")
        _CACHE.update(cfg=cfg, x=torch.from_numpy(x), y=torch.from_numpy(y))
    idx = torch.from_numpy(_CACHE["cfg"]["partition"][pid])  # type: ignore[index]
    return _CACHE["x"][idx], _CACHE["y"][idx]  # type: ignore[index]


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    config = msg.content["config"]
    pid, rnd, seed = int(config["partition-id"]), int(config["server-round"]), int(config["seed"])
    x, y = _client_data(str(config["prep"]), pid)
    model = TwoNN()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    gen = torch.Generator().manual_seed(seed * 1_000_003 + rnd * 1_009 + pid)
    loader = DataLoader(TensorDataset(x, y), batch_size=int(config["batch-size"]), shuffle=True, generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=float(config["lr"]))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    total = 0.0
    for _ in range(int(config["local-epochs"])):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss)
    reply = RecordDict(
        {"arrays": ArrayRecord(model.state_dict()), "metrics": MetricRecord({"train_loss": total / max(1, len(loader)), "num-examples": len(x)})}
    )
    return Message(content=reply, reply_to=msg)


class ScheduledFedAvg(FedAvg):
    """Flower's FedAvg; the cohort of each round comes from the shared schedule (see module doc)."""

    def __init__(self, schedule: np.ndarray, **kw: object) -> None:
        super().__init__(**kw)
        self.schedule = schedule

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):  # type: ignore[override]
        nodes = sorted(grid.get_node_ids())
        cohort = self.schedule[server_round - 1]
        messages = []
        for node_id, pid in zip(nodes[: len(cohort)], cohort, strict=True):
            cfg = ConfigRecord({**dict(config), "server-round": server_round, "partition-id": int(pid)})
            messages.append(Message(content=RecordDict({"arrays": arrays, "config": cfg}), message_type="train", dst_node_id=node_id))
        return messages


def main() -> None:
    prep, out = sys.argv[1], sys.argv[2]
    start = Clock.now()
    torch.set_num_threads(1)
    cfg = load_prep(prep)
    round_end: list[float] = []
    final: dict[str, list[torch.Tensor]] = {}

    server_app = ServerApp()

    @server_app.main()
    def server_main(grid: Grid, context: Context) -> None:
        strategy = ScheduledFedAvg(cfg["schedule"], fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=cfg["num_clients"])

        def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            round_end.append(Clock.now())  # round 0 = just before the first round starts
            if server_round == cfg["rounds"]:
                final["params"] = list(arrays.to_torch_state_dict().values())
            return None

        train_config = ConfigRecord(
            {"lr": cfg["lr"], "batch-size": cfg["batch_size"], "local-epochs": cfg["local_epochs"], "seed": cfg["seed"], "prep": str(Path(prep).resolve())}
        )
        strategy.start(grid=grid, initial_arrays=ArrayRecord(init_model(cfg).state_dict()), num_rounds=cfg["rounds"], train_config=train_config, evaluate_fn=evaluate_fn)

    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=cfg["num_clients"],
        backend_name="ray",
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": 2, "num_gpus": 0, "include_dashboard": False}},
    )
    if "params" not in final:
        raise SystemExit("Flower run finished without a final model (see the log above)")
    write_result(out, final["params"], round_end[1:], start, round_start=round_end[0])


if __name__ == "__main__":
    main()
