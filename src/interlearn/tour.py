"""``interlearn tour``: what each paradigm is for, tested on the embedded digits, one report.

Each part is a scenario taken from the conditions in which its paradigm pays
(:mod:`interlearn.scenarios`), repeated with three seeds:

- ``transfer`` — transfer and fine-tuning from the base that ships with interlearn (a CNN
  pretrained on 60,000 MNIST images, :mod:`interlearn.shipped`) at 1-100 labels per class,
  and fine-tuning against the frozen base where the target differs from the source;
- ``distill`` — a student with capacity but few labels learns from a teacher's soft outputs on
  the unlabelled images (Hinton et al. 2015's transfer set);
- ``multitask`` — three related tasks with little labelled data each: shared vs separate models;
- ``federated`` — non-IID clients: FedAvg vs local-only vs centralized, the privacy level
  at which differential privacy erases the gain, and each user's gain from a local memory
  (personalization) with the skew below which it stops paying.

The report (``summary.md``, and the terminal table) has one section per paradigm: the question,
the baseline, the result and its gain with the standard error over the seeds, a verdict
computed from them ("helps" only when the gain exceeds twice its standard error), the learning
curve as a plot and a table, and the boundary where the paradigm stops paying, with why. Parts
run in up to two worker processes (``INTERLEARN_TOUR_WORKERS``), each single-threaded.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from interlearn.errors import ConfigError
from interlearn.report import Section, print_sections, write_summary
from interlearn.scenarios import distill, federated, multitask, personal, transfer
from interlearn.scenarios.base import Scenario

__all__ = ["run_tour", "PARTS", "TITLE"]

TITLE = "interlearn tour — what each paradigm is for, on the embedded digits (3 seeds)"


def _transfer(out: Path, seed: int, progress: bool) -> Scenario:
    return transfer.run(out, seed, progress)


def _distill(out: Path, seed: int, progress: bool) -> Scenario:
    return distill.run(out, seed, progress)


def _multitask(out: Path, seed: int, progress: bool) -> Scenario:
    return multitask.run(out, seed, progress)


def _federated(out: Path, seed: int, progress: bool) -> Scenario:
    """FedAvg and DP-FedAvg, then personalization by a local memory on the same kind of clients."""
    fed = federated.run(out, seed, progress)
    own = personal.run(out, seed, progress)
    return Scenario({**fed.rows, **{f"memory_{k}": v for k, v in own.rows.items()}}, [*fed.sections, *own.sections])


PARTS: dict[str, Callable[[Path, int, bool], Scenario]] = {
    "transfer": _transfer,
    "distill": _distill,
    "multitask": _multitask,
    "federated": _federated,
}
_ALIASES = {"finetune": "transfer"}  # fine-tuning is measured on the transfer scenario's learning curve


def _run_part(name: str, out: Path, seed: int, progress: bool) -> tuple[str, Scenario, float, float]:
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    if progress:
        print(f"[tour] {name} ...", flush=True)
    result = PARTS[name](out, seed, progress)
    return name, result, time.perf_counter() - t0, time.process_time() - c0


def _workers(n_parts: int) -> int:
    wanted = int(os.environ.get("INTERLEARN_TOUR_WORKERS", "2"))
    return max(1, min(wanted, n_parts, os.cpu_count() or 1))


def run_tour(
    out: Path, only: list[str] | None = None, progress: bool = True, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Run the tour's scenarios, print the overview, write ``out/summary.{json,md}``,
    ``out/sections.json`` and the plots.

    Args:
        out: the run folder.
        only: part names (``transfer``/``finetune``, ``distill``, ``multitask``, ``federated``).
        progress: print progress lines.
        seed: the first seed; every scenario repeats with ``seed``, ``seed + 1`` and ``seed + 2``.

    Returns:
        The summary rows (every measured number, keyed by part then variant).

    Raises:
        ConfigError: an unknown part name in ``only`` (the message lists the parts).
    """
    requested = only or list(PARTS)
    unknown = [n for n in requested if n not in PARTS and n not in _ALIASES]
    if unknown:
        raise ConfigError(f"unknown tour part(s) {unknown}; choose from {list(PARTS) + list(_ALIASES)}")
    names = list(dict.fromkeys(_ALIASES.get(n, n) for n in requested))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict[str, tuple[Scenario, float, float]] = {}
    workers = _workers(len(names))
    if workers == 1:
        for n in names:
            name, sc, secs, cpu = _run_part(n, out, seed, progress)
            results[name] = (sc, secs, cpu)
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
        # the slowest parts first, so the two workers finish together
        order = sorted(names, key=lambda n: ["transfer", "federated", "distill", "multitask"].index(n))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_run_part, n, out, seed, progress) for n in order]
            for f in futures:
                name, sc, secs, cpu = f.result()
                results[name] = (sc, secs, cpu)
    rows: dict[str, dict[str, Any]] = {}
    sections: list[Section] = []
    timing: dict[str, Any] = {"workers": workers}
    for n in names:
        sc, secs, cpu = results[n]
        rows |= {f"{n}/{k}": v for k, v in sc.rows.items()}
        sections += sc.sections
        timing |= {f"{n}_seconds": secs, f"{n}_cpu_seconds": cpu}
        if progress:
            print(f"[tour] {n}: {secs:.1f} s ({cpu:.1f} s CPU)", flush=True)
    timing["total_seconds"] = time.perf_counter() - start
    rows["tour/timing"] = timing
    print_sections(sections, TITLE)
    md = write_summary(out, rows, title=TITLE, sections=sections)
    print(
        f"tour finished in {time.perf_counter() - start:.1f} s ({workers} worker{'s' if workers > 1 else ''}); "
        f"report: {md} (one section per paradigm, plots next to it)"
    )
    return rows
