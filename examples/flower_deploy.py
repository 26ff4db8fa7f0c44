"""Deploy a federated recipe on Flower: a SuperLink and three SuperNodes on this machine.

Starts real ``flower-superlink`` and ``flower-supernode`` processes on loopback (insecure mode:
see the README for TLS and SuperNode authentication), submits the run with ``flwr run``, and
checks that the deployed model equals the in-process sequential engine's for the same clients
and seed. The ServerApp writes ``metrics.jsonl``, ``accuracy.png`` and the final checkpoint into
the run folder.

The Flower app is two lines pointing at ``interlearn.federated.flower.demo`` (FedAvg of an MLP on
MNIST); copy that module to start your own. On real machines you would instead run, e.g.::

    flower-superlink --ssl-ca-certfile ca.crt --ssl-certfile server.pem --ssl-keyfile server.key
    flower-supernode --superlink HOST:PORT --root-certificates ca.crt --node-config 'partition-id=0'
    flwr run ./my_app my-superlink --run-config 'num-rounds=10 run-dir="runs/fed"'

Usage:
    python examples/flower_deploy.py --data-dir ../shared/data [--rounds 2] [--clients 3] [--protect secagg]
        [--examples-per-client 500] [--test-examples 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import types
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.checkpoint import load_checkpoint
from interlearn.federated.engines import SequentialEngine
from interlearn.federated.flower import FINAL, LocalFederation, demo, run_job, write_flower_app

APP_MODULE = """from interlearn.federated.flower import demo

server_app = demo.server_app
client_app = demo.client_app
"""


def main() -> None:
    ap = argparse.ArgumentParser(description="interlearn on Flower's Deployment Engine, on loopback")
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA", "../shared/data"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--examples-per-client", type=int, default=demo.DEFAULTS["examples-per-client"])
    ap.add_argument("--test-examples", type=int, default=demo.DEFAULTS["test-examples"])
    ap.add_argument("--run-dir", default="runs/flower-deploy")
    ap.add_argument(
        "--protect",
        default="none",
        choices=demo.PROTECTIONS,
        help="update steps: local-dp (clip + noise on the nodes) or secagg (secure aggregation over Flower messages)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)

    run_config = {
        **demo.DEFAULTS,
        "data-dir": str(Path(args.data_dir).resolve()),
        "num-rounds": args.rounds,
        "num-clients": args.clients,
        "clients-per-round": args.clients,
        "examples-per-client": args.examples_per_client,
        "test-examples": args.test_examples,
        "run-dir": str(Path(args.run_dir).resolve()),
        "protect": args.protect,
    }
    with tempfile.TemporaryDirectory(prefix="interlearn-flower-") as tmp:
        app = write_flower_app(Path(tmp) / "app", APP_MODULE, demo.DEFAULTS, name="interlearndemo")
        nodes = [{"partition-id": i} for i in range(args.clients)]
        with LocalFederation(Path(tmp) / "deploy", nodes) as fed:  # every process stops on exit
            print(f"SuperLink on 127.0.0.1:{fed.port}, {len(nodes)} SuperNodes; running {args.rounds} rounds ...")
            fed.run(app, run_config, timeout_s=1800)

    deployed, meta = load_checkpoint(Path(args.run_dir) / FINAL)
    reference = run_job(
        demo.job(types.SimpleNamespace(run_config=run_config)), SequentialEngine(), demo.population(run_config), None
    )
    diff = max(float((deployed[k] - reference.params[k]).abs().max()) for k in deployed)
    print(f"deployed test accuracy {meta['final_accuracy']:.4f}; in-process {reference.final_accuracy:.4f}")
    print(f"max |deployed - in-process| = {diff:.2e} ({'equal' if diff < 1e-5 else 'DIFFERENT'} within 1e-5)")
    print(f"run folder: {args.run_dir} (metrics.jsonl, accuracy.png, final/)")


if __name__ == "__main__":
    main()
