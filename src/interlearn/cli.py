"""The ``interlearn`` command: ``tour``, ``run``, ``report``, ``compare``, ``recipes``, ``advise``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from interlearn.advise import AdviseConfig, advise, load_base, load_labelled
from interlearn.errors import ConfigError, DataError, InterlearnError
from interlearn.recipes import example_recipes, run_recipe
from interlearn.report import markdown_table, render
from interlearn.tour import run_tour

__all__ = ["main"]


def _threads() -> None:
    # Tiny models on few cores run fastest single-threaded (2 busy OpenMP threads were measured
    # ~50x slower on a small step); users can raise it with INTERLEARN_THREADS.
    torch.set_num_threads(int(os.environ.get("INTERLEARN_THREADS", "1")))


def _cmd_tour(args: argparse.Namespace) -> int:
    only = args.only.split(",") if args.only else None
    run_tour(Path(args.out), only=only, progress=not args.no_progress, seed=args.seed)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    run_dir = run_recipe(args.recipe, args.out, progress=not args.no_progress)
    rows = json.loads((run_dir / "summary.json").read_text())
    print(markdown_table(rows))
    print(f"\nrun folder: {run_dir}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    md = render(args.run_dir)
    print(md.read_text())
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    rows: dict[str, dict[str, Any]] = {}
    for d in args.run_dirs:
        p = Path(d) / "summary.json"
        if not p.is_file():
            raise DataError(f"{d}: no summary.json; is it a run folder?")
        for k, v in json.loads(p.read_text()).items():
            rows[f"{Path(d).name}/{k}"] = v
    print(markdown_table(rows))
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    for p in example_recipes():
        if args.show and p.stem == args.show:
            print(p.read_text())
            return 0
        if not args.show:
            print(f"{p.stem:<12} {p}")
    if args.show:
        raise ConfigError(f"no example recipe {args.show!r}; known: {[p.stem for p in example_recipes()]}")
    return 0


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: give comma-separated integers, e.g. 5,10,50") from None


def _cmd_advise(args: argparse.Namespace) -> int:
    budget = args.minutes > 0
    # Under a time budget the seeds are the most that may run (the first fold's time decides how
    # many do) and three folds are the default: the fewest that gave sound advice when tried.
    seeds = args.seeds or ("0,1,2,3,4" if budget else "0,1,2")
    cfg = AdviseConfig(
        labels_per_class=_ints(args.labels_per_class or "", "--labels-per-class"),
        seeds=_ints(seeds, "--seeds"),
        folds=args.folds or (3 if budget else 5),
        steps=args.steps,
        lr=args.lr,
        methods=tuple(m.strip() for m in args.methods.split(",")),
        minutes=args.minutes,
    )
    data = load_labelled(args.data, args.base)
    base = load_base(args.base)
    say = (lambda line: print(line, flush=True)) if not args.no_progress else None
    try:
        result = advise(base, data, cfg, progress=say, out=args.out)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the folds done so far are in {Path(args.out) / 'summary.md'}", file=sys.stderr)
        return 130
    out = result.write(args.out)
    print(result.text)
    print(f"\n{result.budget_note}")
    print(f"plot and summary: {out / 'advise.png'}, {out / 'summary.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs).

    Long because: a flat declaration of every subcommand and its options, read top to bottom
    like the ``--help`` it produces; splitting it would only scatter the options.
    """
    p = argparse.ArgumentParser(
        prog="interlearn",
        description="Transfer, fine-tuning, multi-task, federated learning and distillation for PyTorch.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tour", help="run every paradigm on the embedded digits and print one comparison table")
    t.add_argument("--out", default="runs/tour", help="run folder (summary.json, summary.md, plots)")
    t.add_argument("--only", default=None, help="comma-separated parts to run (default: all)")
    t.add_argument("--seed", type=int, default=0, help="the first of the three seeds every scenario repeats with")
    t.add_argument("--no-progress", action="store_true", help="no progress output")
    t.set_defaults(func=_cmd_tour)
    r = sub.add_parser("run", help="run a YAML recipe (see `interlearn recipes`)")
    r.add_argument("recipe", help="path to a recipe .yaml")
    r.add_argument("--out", default=None, help="run folder (default runs/<kind>-<name>)")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=_cmd_run)
    rep = sub.add_parser("report", help="re-render a run folder's summary.md and plots")
    rep.add_argument("run_dir")
    rep.set_defaults(func=_cmd_report)
    c = sub.add_parser("compare", help="one table from several run folders")
    c.add_argument("run_dirs", nargs="+")
    c.set_defaults(func=_cmd_compare)
    a = sub.add_parser(
        "advise", help="scratch vs transfer vs fine-tuning vs LoRA on your labelled data (cross-validated)"
    )
    a.add_argument(
        "--data",
        required=True,
        help="labelled examples: my.npz (x, y), my.csv (label column) or a folder with a sub-folder per class",
    )
    a.add_argument(
        "--base", required=True, help="pretrained model: a .pt file saved with torch.save(model, path), or hf:FOLDER"
    )
    a.add_argument(
        "--labels-per-class", default=None, help="label budgets to compare, e.g. 5,10,50 (default: all your labels)"
    )
    a.add_argument("--out", default="runs/advise", help="folder for advise.png, summary.md, summary.json")
    a.add_argument(
        "--minutes",
        type=float,
        default=3.0,
        help="time budget: the first fold is timed and as many seeds run as fit (0: no limit; default 3)",
    )
    a.add_argument(
        "--seeds",
        default=None,
        help="repetitions, comma-separated (default: up to 0,1,2,3,4 as the budget allows; 0,1,2 without one)",
    )
    a.add_argument(
        "--folds", type=int, default=None, help="cross-validation folds (default 3 under a time budget, else 5)"
    )
    a.add_argument("--steps", type=int, default=200, help="optimizer steps every method gets in every fold")
    a.add_argument("--lr", type=float, default=1e-3, help="learning rate of new layers (AdamW, warmup + cosine)")
    a.add_argument("--methods", default="scratch,transfer,finetune,lora")
    a.add_argument("--no-progress", action="store_true")
    a.set_defaults(func=_cmd_advise)
    e = sub.add_parser("recipes", help="list the shipped example recipes, or print one with --show NAME")
    e.add_argument("--show", default=None)
    e.set_defaults(func=_cmd_recipes)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``interlearn`` command."""
    args = build_parser().parse_args(argv)
    _threads()
    try:
        return int(args.func(args) or 0)
    except InterlearnError as exc:
        print(f"interlearn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
