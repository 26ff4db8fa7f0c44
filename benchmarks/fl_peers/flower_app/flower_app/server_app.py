"""The ServerApp: Flower's message-based FedAvg (weighted by "num-examples"), with one override:
``configure_train`` sends each round's cohort from the prep's shared schedule ("partition-id"),
so Flower trains the same clients in the same rounds as the other tools. It writes the final
weights and a per-round timeline (``common.write_result``) to the run config's ``out``."""

from __future__ import annotations

import os
import time

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from flower_app.task import build_model, load

app = ServerApp()


class ScheduledFedAvg(FedAvg):
    """Flower's FedAvg; the cohort of each round comes from the shared schedule."""

    def __init__(self, schedule: np.ndarray, **kw: object) -> None:
        super().__init__(**kw)
        self.schedule = schedule

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):  # type: ignore[override]
        nodes = sorted(grid.get_node_ids())
        cohort = self.schedule[server_round - 1]
        messages = []
        for node_id, pid in zip(nodes[: len(cohort)], cohort, strict=True):
            cfg = ConfigRecord({**dict(config), "server-round": server_round, "partition-id": int(pid)})
            messages.append(
                Message(
                    content=RecordDict({"arrays": arrays, "config": cfg}), message_type="train", dst_node_id=node_id
                )
            )
        return messages


@app.main()
def main(grid: Grid, context: Context) -> None:
    from common import write_result

    # `flwr run --run-config` passes the paths; run_simulation (no run config) the environment
    prep = str(context.run_config.get("prep") or os.environ["FL_MATRIX_PREP"])
    out = str(context.run_config.get("out") or os.environ["FL_MATRIX_OUT"])
    start = float(os.environ.get("FL_MATRIX_START", "0"))
    cfg = load(prep)["cfg"]
    round_end: list[float] = []
    final: dict = {}

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        round_end.append(time.time())  # round 0: just before the first round starts
        if server_round == cfg["rounds"]:
            final["state"] = arrays.to_torch_state_dict()
        return None

    strategy = ScheduledFedAvg(
        cfg["schedule"], fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=cfg["num_clients"]
    )
    train_config = ConfigRecord(
        {
            "lr": cfg["lr"],
            "batch-size": cfg["batch_size"],
            "local-epochs": cfg["local_epochs"],
            "seed": cfg["seed"],
            "prep": prep,
        }
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(build_model(cfg).state_dict()),
        num_rounds=cfg["rounds"],
        train_config=train_config,
        evaluate_fn=evaluate_fn,
    )
    if "state" not in final:
        raise SystemExit("Flower run finished without a final model")
    write_result(out, final["state"], round_end[1:], start, round_start=round_end[0])
