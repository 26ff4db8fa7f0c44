"""Personalization that pays: a local memory (kNN-Per) against fine-tuning, FedRep's head, Ditto.

The protocol of Marfoq et al. 2022 ("Personalized Federated Learning through Local
Memorization", ICML): a global model trained with FedAvg, then every user personalizes it on
their own device and is scored on their own test data. Datasets on their natural per-user
splits (``benchmarks/personalization_data.py``): FEMNIST writers, Shakespeare characters
(next character, every position of 80-character chunks) and Shakespeare words (next word, top-1
recall over in-vocabulary words as Hard et al. 2018). Every choice a user makes (fine-tuning
steps, Ditto's steps, the memory's lam / k / temperature, which method) is made on their own
validation split (the last 20% of their training data, which the global model never saw);
every method can fall back to the global model.

Methods (``results[dataset][method]``):
* ``global``: the FedAvg model.
* ``finetune``: local SGD/Adam on all parameters, steps chosen (Wang et al. 2019).
* ``fedrep_head``: FedRep's personalization step (Collins et al. 2021): the head alone trained
  on the user's data over the frozen global representation, steps chosen. (The representation
  is FedAvg's, not FedRep's alternating federated training.)
* ``ditto``: Ditto's personal objective (Li et al. 2021), lambda 1, steps chosen.
* ``memory``: kNN-Per (:mod:`interlearn.federated.personalization.memory`): per-user lam, k, temperature.
* ``memory_population``: one setting for everyone, chosen on all users' validation splits.
* ``memory_cosine``, ``memory_no_val``, ``memory_loss``: ablations (cosine distance;
  validation examples not added to the datastore after the choice; the setting chosen by
  validation log-loss, never one with fewer validation hits than the global model).
* ``memory+finetune``: the memory mixed with the fine-tuned model instead of the global one.
* ``best``: per user, the method with the best validation score.

Metrics per method: ``weighted_mean_acc`` (example-weighted over users), ``weighted_gain`` (vs
global), ``mean_gain`` / ``median_gain`` (per-user, unweighted), ``improved_fraction``,
``hurt_fraction`` (>= 1 point worse), ``unchanged_fraction``, ``bottom_decile_acc`` (the 10th
percentile of per-user accuracy), ``bytes_per_user`` (median over users of what the device
stores besides the global model), ``ms_per_prediction`` (one prediction for the median-size
user on this CPU, one thread: the model's forward on one example plus, for a memory, the
search of one query in that user's datastore).

Usage:
    python benchmarks/personalization.py --data-dir ../shared/data --json benchmarks/results/personalization.json
    python benchmarks/personalization.py --data-dir ../shared/data --smoke --json /tmp/p.json   # seconds
The global models are trained on the first run (``--cache-dir``, resumable) and reused after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from personalization_data import DATASETS, LITERATURE, Dataset, User, global_model, load_dataset, sample_users

from interlearn.data.tensors import TensorData
from interlearn.federated.personalization.memory import (
    Encoded,
    Memory,
    MemoryConfig,
    encode,
    grid_scores,
    personalize_memory,
    population_setting,
)
from interlearn.federated.plots import plot_personal_gains
from interlearn.federated.trajectory import sgd_trajectory
from interlearn.surgery import select_names
from interlearn.types import Params

# the local training each dataset's users do (the optimizer the global model was trained with)
LOCAL = {
    "femnist": {"lr": 0.06, "batch_size": 10, "optimizer": "sgd"},
    "shakespeare_chars": {"lr": 0.5, "batch_size": 4, "optimizer": "sgd"},
    "shakespeare_words": {"lr": 1e-3, "batch_size": 10, "optimizer": "adam"},
}
METHODS = (
    "global",
    "finetune",
    "fedrep_head",
    "ditto",
    "memory",
    "memory_population",
    "memory_cosine",
    "memory_no_val",
    "memory_loss",
    "memory+finetune",
    "best",
)


def memory_config(ds: Dataset) -> MemoryConfig:
    """The memory's default: the representation the output layer reads, squared L2."""
    side = "output" if ds.layer == "proj" else "input"
    return MemoryConfig(layer=ds.layer, side=side, ignore_labels=ds.ignore_labels, mask_classes=ds.mask_classes)


def _score(logp: torch.Tensor, labels: torch.Tensor) -> tuple[int, float]:
    """(hits, summed log-loss)."""
    return int((logp.argmax(-1) == labels).sum()), float(-logp.gather(1, labels[:, None]).sum())


def _bytes(params: Params, names: list[str]) -> int:
    return sum(params[k].numel() * params[k].element_size() for k in names)


def evaluate_user(
    model: torch.nn.Module, gparams: Params, ds: Dataset, user: User, index: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Every method for one user: its chosen setting, validation (hits, loss) and test hits."""
    mcfg = memory_config(ds)
    enc = {s: encode(model, gparams, getattr(user, s), mcfg) for s in ("train", "val", "test")}
    n_classes = enc["test"].log_probs.shape[-1]
    n_val = len(enc["val"])
    out: dict[str, Any] = {"user": user.name, "n_test": len(enc["test"]), "n_val": n_val, "n_train": len(enc["train"])}
    out["global"] = {
        "test": _score(enc["test"].log_probs, enc["test"].labels)[0],
        "val": _score(enc["val"].log_probs, enc["val"].labels),
        "bytes": 0,
        "setting": {},
    }
    local = LOCAL[ds.name]
    floating = [k for k, v in gparams.items() if v.is_floating_point()]
    heads = select_names(floating, ds.head, "parameter")
    steps = [int(s) for s in args.steps.split(",") if int(s) > 0]
    ft_val, ft_test = enc["val"], enc["test"]
    for method, trainable, anchor in (
        ("finetune", floating, None),
        ("fedrep_head", heads, None),
        ("ditto", floating, gparams),
    ):
        gen = torch.Generator().manual_seed(args.seed + index)
        traj = sgd_trajectory(
            model,
            gparams,
            user.train,
            steps,
            local["lr"],
            local["batch_size"],
            gen,
            ds.loss_fn,
            anchor=anchor,
            lam=1.0 if anchor is not None else 0.0,
            trainable=trainable,
            optimizer=local["optimizer"],
        )
        cands = [(0, enc["val"])] + [(s, encode(model, traj[s], user.val, mcfg)) for s in steps]
        scored = [(s, e, _score(e.log_probs, e.labels)) for s, e in cands]
        s, val_enc, v = max(scored, key=lambda c: (c[2][0], -c[2][1]))  # ties: the earliest (fewest steps)
        test_enc = enc["test"] if s == 0 else encode(model, traj[s], user.test, mcfg)
        out[method] = {
            "test": _score(test_enc.log_probs, test_enc.labels)[0],
            "val": v,
            "bytes": 0 if s == 0 else _bytes(traj[s], trainable),
            "setting": {"steps": s},
        }
        if method == "finetune":
            ft_val, ft_test = val_enc, test_enc

    variants = {
        "memory": mcfg,
        "memory_cosine": replace(mcfg, metric="cosine"),
        "memory_no_val": replace(mcfg, add_validation=False),
        "memory_loss": replace(mcfg, select_by="loss"),
    }
    for name, cfg in variants.items():
        mem, grid = personalize_memory(enc["train"], enc["val"], n_classes, cfg)
        out[name] = {
            "test": _score(mem.log_probs(enc["test"]), enc["test"].labels)[0],
            "val": (round(mem.setting.val_accuracy * n_val), mem.setting.val_loss * n_val),
            "bytes": mem.nbytes,
            "setting": mem.setting.to_dict(),
        }
        if name == "memory":
            out["_grid"] = grid  # the validation grid, for the population default
            unit = grid[1][0].temperature / grid[1][0].relative_temperature
            out["_test_grid"] = [h for _, h, _ in grid_scores(mem.store, enc["test"], cfg, unit=unit)]
            out["_mem"] = mem
    # the memory on top of the fine-tuned model (the keys stay the global model's representation)
    mix_val = Encoded(enc["val"].keys, ft_val.log_probs, enc["val"].labels)
    mix_test = Encoded(enc["test"].keys, ft_test.log_probs, enc["test"].labels)
    mem, _ = personalize_memory(enc["train"], mix_val, n_classes, mcfg)
    out["memory+finetune"] = {
        "test": _score(mem.log_probs(mix_test), enc["test"].labels)[0],
        "val": (round(mem.setting.val_accuracy * n_val), mem.setting.val_loss * n_val),
        "bytes": (mem.nbytes if mem.setting.lam > 0 else 0) + out["finetune"]["bytes"],
        "setting": {**mem.setting.to_dict(), **out["finetune"]["setting"]},
    }
    methods = [m for m in METHODS if m in out]
    best = max(methods, key=lambda m: (out[m]["val"][0], -out[m]["val"][1]))  # ties: the earliest (global first)
    out["best"] = {**out[best], "setting": {"method": best, **out[best]["setting"]}}
    return out


def latency_ms(
    model: torch.nn.Module, params: Params, ds: Dataset, user: User, mem: Memory | None, repeats: int
) -> float:
    """Median ms of one prediction: one example's forward (the last position of a chunk for the
    sequence models) and, with a memory, one query's search and the mixture."""
    mcfg = memory_config(ds)
    x, y = user.test.x[:1], user.test.y[:1]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        e = encode(model, params, TensorData(x, y), replace(mcfg, ignore_labels=()))
        last = Encoded(e.keys[-1:], e.log_probs[-1:], e.labels[-1:])
        (mem.log_probs(last) if mem is not None else last.log_probs).argmax(-1)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def summarize(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """The issue's metrics of one method over users."""
    acc = [r[method]["test"] / r["n_test"] for r in rows]
    gains = [a - r["global"]["test"] / r["n_test"] for a, r in zip(acc, rows)]
    total = sum(r["n_test"] for r in rows)
    w = sum(r[method]["test"] for r in rows) / total
    return {
        "weighted_mean_acc": w,
        "weighted_gain": w - sum(r["global"]["test"] for r in rows) / total,
        "mean_gain": statistics.fmean(gains),
        "median_gain": statistics.median(gains),
        "improved_fraction": sum(x > 1e-12 for x in gains) / len(gains),
        "hurt_fraction": sum(x <= -0.01 for x in gains) / len(gains),
        "worse_fraction": sum(x < -1e-12 for x in gains) / len(gains),
        "unchanged_fraction": sum(abs(x) <= 1e-12 for x in gains) / len(gains),
        "bottom_decile_acc": statistics.quantiles(acc, n=10)[0] if len(acc) >= 2 else acc[0],
        "bytes_per_user": statistics.median(r[method]["bytes"] for r in rows),
        "bytes_per_user_max": max(r[method]["bytes"] for r in rows),
        "personalized_fraction": sum(r[method]["bytes"] > 12 for r in rows) / len(rows),
    }


def global_accuracy(model: torch.nn.Module, params: Params, ds: Dataset) -> tuple[float, int]:
    """The global model's accuracy on every user's test data (all users, not only the sample)."""
    mcfg = memory_config(ds)
    hits = total = 0
    for u in ds.users:
        if len(u.test):
            e = encode(model, params, u.test, mcfg)
            hits, total = hits + _score(e.log_probs, e.labels)[0], total + len(e)
    return hits / max(total, 1), total


def run_dataset(name: str, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """The global model, every method for every sampled user, and the summaries."""
    t0 = time.perf_counter()
    ds = load_dataset(name, args.data_dir, smoke=args.smoke)
    rounds = (
        args.rounds_smoke
        if args.smoke
        else {
            "femnist": args.femnist_rounds,
            "shakespeare_chars": args.chars_rounds,
            "shakespeare_words": args.words_rounds,
        }[name]
    )
    model, gparams, provenance = global_model(
        ds, rounds, Path(args.cache_dir), seed=args.seed, smoke=args.smoke, progress=not args.smoke
    )
    min_labels = 1 if args.smoke else MIN_LABELS[name]
    wanted = len(ds.users) if name == "femnist" else args.users  # all 105 writers; a sample of the roles
    users = sample_users(ds, wanted, min_labels, args.seed)
    print(f"[{name}] {len(ds.users)} users, {len(users)} evaluated; global model {rounds} rounds", flush=True)
    rows = []
    for i, u in enumerate(users):
        rows.append(evaluate_user(model, gparams, ds, u, i, args))
        if (i + 1) % 10 == 0:
            print(f"[{name}] {i + 1}/{len(users)} users ({time.perf_counter() - t0:.0f}s)", flush=True)
    # the population default: one (lam, k, temperature) chosen on every user's validation split
    pick, shared = population_setting([r["_grid"] for r in rows])
    for r in rows:
        r["memory_population"] = {
            "test": r["_test_grid"][pick],
            "val": r["_grid"][pick][1:],
            "bytes": r["_mem"].store.nbytes + 12 if shared.lam > 0 else 0,
            "setting": {"grid_index": pick},
        }
    results = {m: summarize(rows, m) for m in METHODS}
    med = sorted(rows, key=lambda r: r["n_train"])[len(rows) // 2]
    med_user = next(u for u in users if u.name == med["user"])
    mem = med["_mem"]
    searching = replace(mem, setting=replace(mem.setting, lam=0.5, k=10, temperature=1.0))  # the search always runs
    lat_global = latency_ms(model, gparams, ds, med_user, None, args.latency_repeats)
    lat_memory = latency_ms(model, gparams, ds, med_user, searching, args.latency_repeats)
    for m in METHODS:
        results[m]["ms_per_prediction"] = lat_memory if m.startswith("memory") or m == "best" else lat_global
    acc_all, labels_all = global_accuracy(model, gparams, ds)
    gains = {
        m: [r[m]["test"] / r["n_test"] - r["global"]["test"] / r["n_test"] for r in rows]
        for m in ("finetune", "ditto", "memory", "best")
    }
    plot_personal_gains(
        gains, out_dir / f"personalization_{name}.png", title=f"{name}: per-user gain over the global model"
    )
    sample = (
        "all"
        if len(rows) == len(ds.users)
        else f"seeded random sample (seed {args.seed}) of users with >= {min_labels} validation and test labels"
    )
    return {
        "results": results,
        "users": {"evaluated": len(rows), "population": len(ds.users), "sample": sample},
        "global_model": {
            **{k: v for k, v in provenance.items() if k != "seconds_last_invocation"},
            "test_acc_all_users": acc_all,
            "test_labels": labels_all,
            "literature": LITERATURE.get(name, {}),
        },
        "population_setting": shared.to_dict(),
        "grids": {
            "steps": [0, *(int(x) for x in args.steps.split(",") if int(x) > 0)],
            "local_training": LOCAL[name],
            "ditto_lambda": 1.0,
            "memory": {k: v for k, v in vars(memory_config(ds)).items() if k not in ("ignore_labels", "mask_classes")},
        },
        "median_user": {"name": med["user"], "train_labels": med["n_train"], "datastore_bytes": mem.store.nbytes},
        "per_user": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "seconds": time.perf_counter() - t0,
    }


MIN_LABELS = {"femnist": 1, "shakespeare_chars": 160, "shakespeare_words": 50}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"))
    ap.add_argument("--json", default="benchmarks/results/personalization.json")
    ap.add_argument("--cache-dir", default="runs/personalization", help="global models (trained once, resumable)")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--femnist-rounds", type=int, default=60)
    ap.add_argument("--chars-rounds", type=int, default=100)
    ap.add_argument("--words-rounds", type=int, default=150)
    ap.add_argument(
        "--users",
        type=int,
        default=100,
        help="Shakespeare users per dataset (a seeded sample); FEMNIST uses all writers",
    )
    ap.add_argument("--steps", default="5,20", help="fine-tuning / Ditto / head step counts tried (0 always)")
    ap.add_argument("--latency-repeats", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny data and models, 2 rounds: runs in seconds")
    ap.add_argument("--rounds-smoke", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    payload: dict[str, Any] = json.loads(out.read_text()) if out.exists() and not args.smoke else {}
    payload.setdefault("results", {})
    payload.setdefault("datasets", {})
    for name in args.datasets.split(","):
        r = run_dataset(name, args, out.parent)
        payload["results"][name] = r.pop("results")
        payload["datasets"][name] = r
        payload["seeds"] = {
            "global_model": args.seed,
            "user_sample": args.seed,
            "local_training": f"{args.seed} + user index",
        }
        payload["machine"] = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread"
        command = " ".join(["python", *sys.argv])
        runs = payload.setdefault("commands", [])
        if "command" in payload:  # written by an earlier version: one command for the whole file
            runs.append({"command": payload.pop("command"), "datasets": [d for d in payload["results"] if d != name]})
        if not runs or runs[-1]["command"] != command:
            runs.append({"command": command, "datasets": []})
        runs[-1]["datasets"] = sorted(set(runs[-1]["datasets"]) | {name})
        out.write_text(json.dumps(payload, indent=1))
        for m, s in payload["results"][name].items():
            print(
                f"[{name}] {m:<18} acc {s['weighted_mean_acc']:.4f} ({100 * s['weighted_gain']:+.2f})  "
                f"median gain {100 * s['median_gain']:+.2f}  improved {s['improved_fraction']:.0%} "
                f"hurt {s['hurt_fraction']:.0%}  bottom10 {s['bottom_decile_acc']:.3f}  "
                f"{s['bytes_per_user'] / 1e6:.2f} MB  {s['ms_per_prediction']:.2f} ms",
                flush=True,
            )
    print(f"wrote {out} ({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
