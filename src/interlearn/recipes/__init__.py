"""Recipes: YAML files that describe a run, validated into frozen dataclasses.

A recipe names its ``kind`` (``transfer``, ``finetune``, ``distill``, ``multitask``,
``federated``, ``keyboard`` (next character, LEAF), ``keyboard_words`` (next word)); the matching module ``interlearn.recipes.<kind>`` provides a
``Config`` dataclass and ``run(config, run_dir, progress) -> dict[str, dict]`` (summary rows).
Kinds are named builders, never arbitrary import paths (STYLE.md #6).

Any recipe may also say where to track the run (:mod:`interlearn.tracking`)::

    tracking: {tensorboard: runs/tb, mlflow: mlruns}

The run then gets the resolved recipe as parameters, every training's per-epoch (or per-round)
metrics under the name of the recipe's part (``scratch/train_loss``), the summary rows as
metrics and the run folder (summary, checkpoints, plots) as artifacts.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

import yaml

from interlearn.errors import ConfigError, closest
from interlearn.parallel import is_main_process
from interlearn.report import write_summary
from interlearn.schema import build, load_yaml, to_dict
from interlearn.tracking import NULL, TrackingConfig, open_tracker, recording

__all__ = ["KINDS", "load_recipe", "run_recipe", "build", "load_yaml", "to_dict", "example_recipes"]

KINDS = ("transfer", "finetune", "distill", "multitask", "federated", "keyboard", "keyboard_words")


def _module(kind: Any) -> Any:
    if kind not in KINDS:
        raise ConfigError(
            f"kind: {kind!r} is not a recipe kind; choose one of {list(KINDS)} (closest: {closest(str(kind), KINDS)})"
        )
    try:
        return importlib.import_module(f"interlearn.recipes.{kind}")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"kind: {kind!r} needs a module that is not installed ({exc.name}); install interlearn[all]"
        ) from exc


def _parse(path: str | Path) -> tuple[str, Any, TrackingConfig | None]:
    data = load_yaml(path)
    kind = data.pop("kind", None)
    if kind is None:
        raise ConfigError(f"{path}: missing field 'kind'; choose one of {list(KINDS)}")
    tracking = data.pop("tracking", None)
    module = _module(kind)
    config = build(module.Config, data, str(kind))
    if tracking is not None and not isinstance(tracking, dict):
        raise ConfigError(
            f"tracking: expected a mapping such as {{tensorboard: runs/tb}} or {{mlflow: mlruns}}, got {tracking!r}"
        )
    return kind, config, build(TrackingConfig, tracking, "tracking") if tracking is not None else None


def load_recipe(path: str | Path) -> tuple[str, Any]:
    """Parse and validate a recipe file; return ``(kind, config)``.

    Raises:
        ConfigError: missing/unknown ``kind`` or any invalid field, ``tracking`` included (the
            message names its path).
    """
    kind, config, _ = _parse(path)
    return kind, config


def run_recipe(path: str | Path, out: str | Path | None = None, progress: bool = True) -> Path:
    """Validate and run a recipe; write the run folder and return its path.

    The run folder holds ``config.yaml`` (the resolved recipe), ``summary.json``, ``summary.md``
    and the plots the recipe makes (plus metrics and checkpoints where the paradigm has them).
    """
    kind, config, tracking = _parse(path)
    run_dir = Path(out) if out else Path("runs") / f"{kind}-{Path(path).stem}"
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = {"kind": kind, **to_dict(config)}
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump({**resolved, **({"tracking": to_dict(tracking)} if tracking else {})}, sort_keys=False)
    )
    spec = dataclasses.replace(tracking, run_name=tracking.run_name or run_dir.name) if tracking is not None else None
    tracker = open_tracker(spec, kind, {"recipe": resolved}) if spec is not None and is_main_process() else NULL
    with tracker, recording(tracker):
        rows = _module(kind).run(config, run_dir, progress)
        write_summary(run_dir, rows, title=f"interlearn {kind} run")
        (run_dir / "recipe.json").write_text(json.dumps({"kind": kind, "source": str(path)}))
        if tracker.active:
            tracker.log_metrics({"summary": rows}, step=0)
            for f in sorted(run_dir.iterdir()):
                tracker.log_artifact(f)
    return run_dir


def example_recipes() -> list[Path]:
    """The example recipes shipped with the package."""
    return sorted((Path(__file__).parent / "examples").glob("*.yaml"))
