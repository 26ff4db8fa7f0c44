"""The keyboard: a next-character model trained across users, shrunk for the phone, personalized.

Every speaking role of Shakespeare is one "phone". The global model (a character LSTM) is
trained with FedAvg without any user's text leaving their phone, distilled federatedly into a
small int8 on-device model, and fine-tuned on one user's own text. For that user, the script
shows the top-3 next-character suggestions for a typed prefix before and after
personalization, and the on-device model's size.

Quick run (about a minute on a laptop core; tiny model, few rounds, Tiny Shakespeare):
    python examples/keyboard.py --data-dir ../shared/data

Bigger runs:
    python examples/keyboard.py --data-dir ../shared/data --source complete --max-users 0 \\
        --hidden 256 --ondevice-hidden 128 --rounds 200 --full-epochs --engine sequential
    # or reuse the global model the Shakespeare benchmark saved:
    python examples/keyboard.py --data-dir ../shared/data --source complete --hidden 256 \\
        --ondevice-hidden 128 --checkpoint runs/keyboard-shakespeare/global

The same run as a recipe: ``interlearn run src/interlearn/recipes/examples/keyboard.yaml``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from interlearn.recipes.keyboard import Config, run  # noqa: E402


def main() -> None:
    d = Config()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"), help="folder holding shakespeare/ (default $INTERLEARN_DATA)")
    ap.add_argument("--source", default=d.source, choices=["tiny", "complete"])
    ap.add_argument("--max-users", type=int, default=d.max_users, help="users with the most text (0: all)")
    ap.add_argument("--strategy", default=d.strategy, choices=["fedavg", "fedadam"])
    ap.add_argument("--server-lr", type=float, default=d.server_lr)
    ap.add_argument("--rounds", type=int, default=d.rounds)
    ap.add_argument("--clients", type=int, default=d.clients_per_round)
    ap.add_argument("--local-steps", type=int, default=d.max_local_steps, help="local steps per round")
    ap.add_argument("--full-epochs", action="store_true", help="one local epoch per round instead of --local-steps")
    ap.add_argument("--client-lr", type=float, default=d.client_lr)
    ap.add_argument("--hidden", type=int, default=d.hidden, help="LSTM units (256 in the literature)")
    ap.add_argument("--ondevice-hidden", type=int, default=d.ondevice_hidden)
    ap.add_argument("--distill-rounds", type=int, default=d.distill_rounds)
    ap.add_argument("--personalize-steps", type=int, default=d.personalize_steps)
    ap.add_argument("--personalize-scope", default=d.personalize_scope, choices=["all", "head"])
    ap.add_argument("--personalize-users", type=int, default=d.personalize_users)
    ap.add_argument("--user", default=None, help="whose keyboard to show (default: the user with the most text)")
    ap.add_argument("--prefix", default=d.prefix, help="the typed text")
    ap.add_argument("--engine", default=d.engine, choices=["vectorized", "sequential"])
    ap.add_argument("--checkpoint", default=None, help="load the global model from this folder instead of training")
    ap.add_argument("--out", default="runs/keyboard-example")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = Config(
        data_dir=a.data_dir, source=a.source, max_users=a.max_users or None, strategy=a.strategy, server_lr=a.server_lr,
        rounds=a.rounds, clients_per_round=a.clients, max_local_steps=None if a.full_epochs else a.local_steps,
        client_lr=a.client_lr, hidden=a.hidden, ondevice_hidden=a.ondevice_hidden, distill_rounds=a.distill_rounds,
        personalize_users=a.personalize_users, personalize_steps=a.personalize_steps, personalize_scope=a.personalize_scope,
        user=a.user, prefix=a.prefix, engine=a.engine, checkpoint=a.checkpoint, seed=a.seed,
    )
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run(cfg, out, progress=True)
    print()
    for name, row in rows.items():
        print(f"{name:<15} " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    print(f"run folder: {out} (global checkpoint in {out / 'global'}, personalization plot, suggestions.txt)")


if __name__ == "__main__":
    main()
