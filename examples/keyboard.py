"""The keyboard: next-word suggestions learned across phones, personalized, shrunk for the device.

Every speaking role of Shakespeare is one "phone". A word-level CIFG LSTM with tied embeddings
(Hard et al. 2018) is trained with FedAvg without any user's text leaving their phone. Then one
user personalizes it on their own text (the number of fine-tuning steps, an interpolation
weight or Ditto's lambda chosen on their own validation split) and keeps a local memory of their
own words (kNN-Per, ``interlearn.federated.personalization.memory``: never uploaded), and the on-device model is the
most accurate int8/int4/low-rank/pruned encoding within a quarter of the float32 bytes. For that
user, the script prints the top-3 next-word suggestions for a typed prefix from the global model,
the personalized one and the on-device one (with its size).

Quick run (a couple of minutes on one core: Tiny Shakespeare, a few rounds; its suggestions are
mostly frequent words):
    python examples/keyboard.py --data-dir ../shared/data

A model that has learned something (the benchmark's; ~30-60 min on one core), or reuse its
checkpoint:
    python benchmarks/keyboard_words.py --data-dir ../shared/data
    python examples/keyboard.py --data-dir ../shared/data --source complete --max-users 0 --vocab-size 5000 \\
        --checkpoint runs/keyboard-words/global

The same run as a recipe: ``interlearn run src/interlearn/recipes/examples/keyboard_words.yaml``.
Next-character prediction (LEAF's benchmark) is ``benchmarks/shakespeare.py``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.recipes.keyboard_words import Config, run


def main() -> None:
    d = Config()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("INTERLEARN_DATA"),
        help="folder holding shakespeare/ (default $INTERLEARN_DATA)",
    )
    ap.add_argument("--source", default=d.source, choices=["tiny", "complete"])
    ap.add_argument("--max-users", type=int, default=d.max_users, help="users with the most words (0: all)")
    ap.add_argument("--vocab-size", type=int, default=d.vocab_size)
    ap.add_argument("--embed-dim", type=int, default=d.embed_dim)
    ap.add_argument("--hidden", type=int, default=d.hidden)
    ap.add_argument("--rounds", type=int, default=d.rounds)
    ap.add_argument("--clients", type=int, default=d.clients_per_round)
    ap.add_argument(
        "--local-steps", type=int, default=d.max_local_steps, help="local steps per round (0: one full epoch)"
    )
    ap.add_argument("--personalize-users", type=int, default=d.personalize_users)
    ap.add_argument(
        "--personalize-steps", default=",".join(map(str, d.personalize_steps)), help="fine-tuning step counts tried"
    )
    ap.add_argument("--test-users", type=int, default=d.test_users)
    ap.add_argument("--user", default=None, help="whose keyboard to show (default: the first personalized user)")
    ap.add_argument("--prefix", default=d.prefix, help="the typed text (ending inside a word: completions)")
    ap.add_argument("--checkpoint", default=None, help="load the global model from this folder instead of training")
    ap.add_argument("--out", default="runs/keyboard-example")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = Config(
        data_dir=a.data_dir,
        source=a.source,
        max_users=a.max_users or None,
        vocab_size=a.vocab_size,
        embed_dim=a.embed_dim,
        hidden=a.hidden,
        rounds=a.rounds,
        clients_per_round=a.clients,
        max_local_steps=a.local_steps or None,
        personalize_users=a.personalize_users,
        personalize_steps=tuple(int(s) for s in a.personalize_steps.split(",")),
        test_users=a.test_users,
        user=a.user,
        prefix=a.prefix,
        checkpoint=a.checkpoint,
        seed=a.seed,
    )
    out = Path(a.out)
    rows = run(cfg, out, progress=True)
    g, o = rows["global"], rows["ondevice"]
    print(
        f"\nglobal model      top-1 recall {g['top1_recall']:.4f}  top-3 {g['top3_recall']:.4f}  ({g['params']:,} parameters)"
    )
    if "personalized" in rows:
        p = rows["personalized"]
        print(
            f"personalized      median top-1 {p['top1_recall']:.4f} (global {p['global_median']:.4f}) over {p['users']} users, "
            f"{p['improved_fraction']:.0%} improved"
        )
    if "memory" in rows:
        m = rows["memory"]
        print(
            f"local memory      {m['entries']:,} remembered words, {m['bytes']:,} bytes on the phone (never uploaded), "
            f"mixture weight {m['lam']:g} chosen on the user's validation words"
        )
    if o["encoding"]:
        print(
            f"on-device {o['encoding']:<8} top-1 recall {o['top1_recall']:.4f}  {o['bytes']:,} bytes (float32 {o['global_bytes']:,})  "
            f"{o['latency_ms']:.1f} ms per suggestion"
        )
    print(f"run folder: {out} (suggestions.txt, personalization.png, ondevice_frontier.png, global/)")


if __name__ == "__main__":
    main()
