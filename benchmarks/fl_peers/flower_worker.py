"""Flower 1.42 for fl_matrix.py: the quickstart-style app in ``flower_app/`` on Flower's
simulation runtime (``flwr.simulation.run_simulation``, Ray backend), one CPU per virtual
SuperNode and 2 CPUs in all (so 2 ClientApp actors), one torch thread each.

Usage (fl_matrix.py launches it): python flower_worker.py PREP_DIR OUT_DIR

The ClientApp and its data cache live in an importable module (``flower_app.client_app``), so
Ray imports them in each actor instead of pickling ``__main__`` by value: each actor loads the
workload once, as in Flower's quickstart.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "flower_app")]


def main() -> None:
    start = time.time()
    prep, out = sys.argv[1], sys.argv[2]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE / "flower_app"), os.environ.get("PYTHONPATH", "")])
    import torch
    from flower_app.client_app import app as client_app
    from flower_app.server_app import app as server_app
    from flwr.simulation import run_simulation

    torch.set_num_threads(1)
    os.environ.update(
        FL_MATRIX_PREP=str(Path(prep).resolve()), FL_MATRIX_OUT=str(Path(out).resolve()), FL_MATRIX_START=repr(start)
    )
    cfg = json.loads((Path(prep) / "config.json").read_text())
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=cfg["num_clients"],
        backend_name="ray",
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "num_gpus": 0, "include_dashboard": False},
        },  # actors inherit the env
    )
    if not (Path(out) / "final.pt").exists():
        raise SystemExit("Flower run finished without a final model (see the log above)")


if __name__ == "__main__":
    main()
