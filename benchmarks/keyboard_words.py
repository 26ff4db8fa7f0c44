"""Shakespeare next-word keyboard: FedAvg, personalization chosen on validation, on-device model.

In the spirit of Hard et al. 2018 ("Federated Learning for Mobile Keyboard Prediction"): a CIFG
LSTM with tied input/output embeddings (5,000-word vocabulary + out-of-vocabulary token,
96-dim embedding, 256 units; sized for a CPU, see ``interlearn.models.word_cifg``) trained with
FedAvg over LEAF's Shakespeare users (one per play and role); every user's last 20% of lines
is test text and the last 20% of their remaining words is a validation split that training
never sees. Metrics as in Hard et al.: top-1 and top-3 recall over in-vocabulary words.

What is measured:
* the global model: recall on the test text of ``--test-users`` users spread over all sizes,
  after ``--rounds`` rounds (10 clients per round, 1 local epoch of batch 10), with the
  accuracy-vs-rounds curve;
* personalization: ``--personalize-users`` users (spread over sizes among those with at least
  ``--min-words`` validation and test words) each choose, on their own validation split,
  fine-tuning steps, an interpolation weight, Ditto's lambda, or the best of all three; test
  gain per user, median, fraction improved, the users who got worse, a distribution plot;
  FedPer among the same users for ``--fedper-rounds`` rounds;
* the on-device model: int8/int4 weight-only, low-rank and pruned encodings of the global
  model, bytes (safetensors) and recall, the most accurate one within a quarter of the float32
  bytes, and the latency of one suggestion (1 thread).

The federated run is checkpointed in ``--run-dir``; running the same command again continues
it (bit-exact), so a long run can be done in pieces. The final global model is saved to
``<run-dir>/global`` in the format ``examples/keyboard.py --checkpoint`` and ``kind:
keyboard_words`` recipes load.

Usage:
    python benchmarks/keyboard_words.py --data-dir ../shared/data --json benchmarks/results/keyboard_words.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from interlearn.checkpoint import save_checkpoint
from interlearn.data.shakespeare_words import PAD, load_shakespeare_words
from interlearn.federated.params import load_params
from interlearn.federated.personalization.select import plot_gains
from interlearn.keyboard import encode_prefix, evaluate_recall, suggest_words
from interlearn.models.word_cifg import word_cifg
from interlearn.ondevice import latency_ms
from interlearn.recipes.keyboard_words import (
    Config,
    fedper_users,
    ondevice_frontier,
    personalization_users,
    personalize_users,
    test_set,
    train_global,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"))
    ap.add_argument("--json", default="benchmarks/results/keyboard_words.json")
    ap.add_argument("--run-dir", default="runs/keyboard-words", help="federated checkpoint (continued when present)")
    ap.add_argument("--rounds", type=int, default=800)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--client-optimizer", default="adam", choices=["sgd", "adam"])
    ap.add_argument("--client-lr", type=float, default=3e-3)
    ap.add_argument("--client-lr-schedule", default="500:0.001", help="step decay: 'after_round:lr,...' ('' for none)")
    ap.add_argument("--vocab-size", type=int, default=5000)
    ap.add_argument("--embed-dim", type=int, default=96)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--max-users", type=int, default=None, help="keep the users with the most words (default: all)")
    ap.add_argument("--test-users", type=int, default=100)
    ap.add_argument("--personalize-users", type=int, default=40)
    ap.add_argument("--min-words", type=int, default=100, help="validation and test words a personalized user needs")
    ap.add_argument("--personalize-methods", default="finetune,interpolate,ditto,cache")
    ap.add_argument("--personalize-steps", default="0,10,20,40")
    ap.add_argument("--personalize-optimizer", default="adam", choices=["sgd", "adam"])
    ap.add_argument("--personalize-lr", type=float, default=1e-3)
    ap.add_argument("--ditto-lams", default="0.1,1.0")
    ap.add_argument("--cache-lams", default="0.05,0.1,0.2,0.3,0.5")
    ap.add_argument(
        "--select-by",
        default="loss",
        choices=["loss", "top1"],
        help="what each user's validation split ranks settings by",
    )
    ap.add_argument("--fedper-rounds", type=int, default=20)
    ap.add_argument("--fedper-lr", type=float, default=0.5)
    ap.add_argument("--latency-repeats", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = Config(
        data_dir=args.data_dir,
        source="complete",
        max_users=args.max_users,
        vocab_size=args.vocab_size,
        embed_dim=args.embed_dim,
        hidden=args.hidden,
        rounds=args.rounds,
        clients_per_round=args.clients,
        local_epochs=1,
        max_local_steps=None,
        batch_size=args.batch_size,
        client_optimizer=args.client_optimizer,
        client_lr=args.client_lr,
        client_lr_schedule=tuple(
            (int(a), float(b)) for a, b in (x.split(":") for x in args.client_lr_schedule.split(",") if x)
        ),
        eval_every=args.eval_every,
        test_users=args.test_users,
        personalize_users=args.personalize_users,
        min_personal_words=args.min_words,
        personalize_methods=tuple(args.personalize_methods.split(",")),
        personalize_steps=tuple(int(s) for s in args.personalize_steps.split(",")),
        personalize_optimizer=args.personalize_optimizer,
        personalize_lr=args.personalize_lr,
        ditto_lams=tuple(float(s) for s in args.ditto_lams.split(",")),
        cache_lams=tuple(float(s) for s in args.cache_lams.split(",")),
        select_by=args.select_by,
        fedper_rounds=args.fedper_rounds,
        fedper_lr=args.fedper_lr,
        seed=args.seed,
    )
    data = load_shakespeare_words(
        args.data_dir, source="complete", vocab_size=cfg.vocab_size, seq_len=cfg.seq_len, max_users=cfg.max_users
    )
    print(
        f"users {len(data.users)}  words train {data.meta['train_words']:.0f} / val {data.meta['val_words']:.0f} / test "
        f"{data.meta['test_words']:.0f}  test OOV rate {data.meta['test_oov_rate']:.3f}  load {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    torch.manual_seed(args.seed)
    model = word_cifg(len(data.vocab), cfg.embed_dim, cfg.hidden)
    test = test_set(data.users, cfg.test_users)
    t = time.perf_counter()
    params, curve = train_global(model, data, cfg, Path(args.run_dir) / "federated", test, progress=True)
    train_s = time.perf_counter() - t
    metrics_file = Path(args.run_dir) / "federated" / "metrics.jsonl"
    history = (
        [json.loads(s) for s in metrics_file.read_text().splitlines() if s.strip()] if metrics_file.exists() else []
    )
    save_checkpoint(
        Path(args.run_dir) / "global",
        params,
        {"vocab": list(data.vocab.words), "model": model.config.to_dict(), "rounds": cfg.rounds},
    )
    g = evaluate_recall(model, params, test)
    print(
        f"global after {cfg.rounds} rounds: top-1 {g['top1_recall']:.4f}  top-3 {g['top3_recall']:.4f} ({g['words']:.0f} words)",
        flush=True,
    )

    t = time.perf_counter()
    people = personalization_users(data, cfg.personalize_users, cfg.min_personal_words)
    report, _ = personalize_users(model, params, people, cfg)
    pers_s = time.perf_counter() - t
    t = time.perf_counter()
    fedper = (
        fedper_users(model, params, people, cfg, Path(args.run_dir) / "fedper", progress=False)
        if cfg.fedper_rounds
        else {}
    )
    fedper_s = time.perf_counter() - t
    fp_gains = [fedper[u.user]["test"] - u.global_test for u in report.users] if fedper else []
    plot_gains(
        report,
        out.parent / "keyboard_words_personalization.png",
        title="Shakespeare words (top-1 recall)",
        extra={"fedper": fp_gains} if fp_gains else None,
    )
    summaries = {m: report.summary(m) for m in report.methods()}
    if fp_gains:
        summaries["fedper"] = {
            "users": len(fp_gains),
            "median_gain": statistics.median(fp_gains),
            "mean_gain": statistics.fmean(fp_gains),
            "improved_fraction": sum(x > 0 for x in fp_gains) / len(fp_gains),
            "personal_median": statistics.median(fedper[u.user]["test"] for u in report.users),
            "participated_fraction": sum(fedper[u.user]["participated"] for u in report.users) / len(report.users),
            "rounds": cfg.fedper_rounds,
            "worse": [{"user": u.user, "gain": x} for u, x in zip(report.users, fp_gains) if x < 0],
        }
    shipped = report.validated_method()  # chosen on the users' validation splits, never on test text
    best = summaries[shipped]
    for m, s in summaries.items():
        print(
            f"personalization {m:<12}{' (shipped)' if m == shipped else ''} median gain {100 * s['median_gain']:+.2f} pts  improved {s['improved_fraction']:.0%}  "
            f"worse {len(s['worse'])}",
            flush=True,
        )

    t = time.perf_counter()
    load_params(model, params)
    variants, ref, chosen, chosen_params = ondevice_frontier(model, params, test, cfg, None)
    from interlearn.ondevice import plot_frontier

    budget = int(ref.bytes * cfg.ondevice_budget)
    plot_frontier(
        variants,
        out.parent / "keyboard_words_frontier.png",
        ref,
        budget,
        ylabel="top-1 recall",
        title="Shakespeare words: on-device variants of the global model",
    )
    x, _ = encode_prefix(data.vocab, cfg.prefix, cfg.seq_len)
    lat = latency_ms(lambda: model.next_word_logits(x).topk(3), repeats=args.latency_repeats)
    ondevice_s = time.perf_counter() - t
    for v in variants:
        print(f"on-device {v.name:<26} {v.bytes:>10,} bytes  top-1 {v.accuracy:.4f}", flush=True)

    shown = people[0] if people else data.users[0]
    suggestions = {
        "prefix": cfg.prefix,
        "user": shown.name,
        "global": suggest_words(model, data.vocab, cfg.prefix, params=params),
    }
    if chosen_params is not None and chosen is not None:
        suggestions[f"ondevice {chosen.encoding}"] = suggest_words(model, data.vocab, cfg.prefix, params=chosen_params)

    result = {
        "top1_recall": g["top1_recall"],
        "top3_recall": g["top3_recall"],
        "rounds": cfg.rounds,
        "personalized_top1_recall": best["personal_median"],
        "personalization_method": shipped,
        "personalized_global_top1_recall": best["global_median"],
        "personalized_median_gain": best["median_gain"],
        "users_improved_fraction": best["improved_fraction"],
        "ondevice_bytes": chosen.bytes if chosen else None,
        "ondevice_top1_recall": chosen.accuracy if chosen else None,
        "ondevice_top3_recall": chosen.extra.get("top3_recall") if chosen else None,
        "ondevice_encoding": chosen.encoding if chosen else None,
        "global_bytes": ref.bytes,
        "ondevice_budget_bytes": budget,
        "ondevice_within_2_points": bool(chosen and ref.accuracy - chosen.accuracy <= 0.02),
        "latency_ms_per_suggestion": lat,
        "acc_vs_rounds": curve,
        "mean_train_loss_per_50_rounds": [
            [min(i + 50, len(history)), statistics.fmean(h["train_loss"] for h in history[i : i + 50])]
            for i in range(0, len(history), 50)
        ],
        "personalization": {
            "summary": summaries,
            "users": report.to_dict()["users"],
            "validated_method": shipped,
            "words": [
                {
                    "user": u.name,
                    "train": int((u.train.y != PAD).sum()),
                    "val": int((u.val.y != PAD).sum()),
                    "test": int((u.test.y != PAD).sum()),
                }
                for u in people
            ],
            "config": {
                "methods": list(cfg.personalize_methods),
                "steps": list(cfg.personalize_steps),
                "optimizer": cfg.personalize_optimizer,
                "lr": cfg.personalize_lr,
                "ditto_lams": list(cfg.ditto_lams),
                "cache_lams": list(cfg.cache_lams),
                "select_by": cfg.select_by,
                "min_words": cfg.min_personal_words,
                "fedper_rounds": cfg.fedper_rounds,
                "fedper_lr": cfg.fedper_lr,
            },
        },
        "ondevice": [v.__dict__ for v in variants],
        "suggestions": suggestions,
        "model": {**model.config.to_dict(), "params": sum(p.numel() for p in params.values())},
        "training": {
            "clients_per_round": cfg.clients_per_round,
            "local_epochs": 1,
            "batch_size": cfg.batch_size,
            "client_optimizer": cfg.client_optimizer,
            "client_lr": cfg.client_lr,
            "client_lr_schedule": cfg.client_lr_schedule,
            "strategy": "fedavg",
            "server_lr": 1.0,
            "median_round_seconds": statistics.median(h["round_seconds"] for h in history) if history else None,
        },
        "test": {
            "users": cfg.test_users,
            "words": int(g["words"]),
            "chunks": len(test),
            "oov_rate_all_users": data.meta["test_oov_rate"],
        },
        "population": {
            "users": len(data.users),
            **{k: int(v) for k, v in data.meta.items() if k.endswith("_words")},
            "users_with_min_words": len(
                [
                    u
                    for u in data.users
                    if int((u.val.y != PAD).sum()) >= cfg.min_personal_words
                    and int((u.test.y != PAD).sum()) >= cfg.min_personal_words
                ]
            ),
        },
        "seconds": {
            "total": time.perf_counter() - t0,
            "train_this_invocation": train_s,
            "personalize": pers_s,
            "fedper": fedper_s,
            "ondevice": ondevice_s,
        },
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread",
        "command": "python benchmarks/keyboard_words.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
    }
    out.write_text(json.dumps(result, indent=2))
    print(
        f"suggestions for {shown.name} after {cfg.prefix!r}: "
        + ", ".join(f"{w} {p:.2f}" for w, p in suggestions["global"])
    )
    print(f"wrote {out} ({result['seconds']['total']:.0f}s)")


if __name__ == "__main__":
    main()
