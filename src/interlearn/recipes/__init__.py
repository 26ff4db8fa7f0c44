"""Recipes: YAML files that describe a run, validated into frozen dataclasses.

A recipe names its ``kind`` (``transfer``, ``finetune``, ``distill``, ``multitask``,
``federated``, ``keyboard`` (next character, LEAF), ``keyboard_words`` (next word)); the matching module ``interlearn.recipes.<kind>`` provides a
``Config`` dataclass and ``run(config, run_dir, progress) -> dict[str, dict]`` (summary rows).
Kinds are named builders, never arbitrary import paths (STYLE.md #6).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import yaml

from interlearn.errors import ConfigError, closest
from interlearn.recipes.base import build, load_yaml, to_dict

__all__ = ["KINDS", "load_recipe", "run_recipe", "build", "load_yaml", "to_dict", "example_recipes"]

KINDS = ("transfer", "finetune", "distill", "multitask", "federated", "keyboard", "keyboard_words")


def _module(kind: Any) -> Any:
    if kind not in KINDS:
        raise ConfigError(f"kind: {kind!r} is not a recipe kind; choose one of {list(KINDS)} (closest: {closest(str(kind), KINDS)})")
    try:
        return importlib.import_module(f"interlearn.recipes.{kind}")
    except ModuleNotFoundError as exc:
        raise ConfigError(f"kind: {kind!r} needs a module that is not installed ({exc.name}); install interlearn[all]") from exc


def load_recipe(path: str | Path) -> tuple[str, Any]:
    """Parse and validate a recipe file; return ``(kind, config)``.

    Raises:
        ConfigError: missing/unknown ``kind`` or any invalid field (the message names its path).
    """
    data = load_yaml(path)
    kind = data.pop("kind", None)
    if kind is None:
        raise ConfigError(f"{path}: missing field 'kind'; choose one of {list(KINDS)}")
    module = _module(kind)
    return kind, build(module.Config, data, str(kind))


def run_recipe(path: str | Path, out: str | Path | None = None, progress: bool = True) -> Path:
    """Validate and run a recipe; write the run folder and return its path.

    The run folder holds ``config.yaml`` (the resolved recipe), ``summary.json``, ``summary.md``
    and the plots the recipe makes (plus metrics and checkpoints where the paradigm has them).
    """
    from interlearn.report import write_summary

    kind, config = load_recipe(path)
    run_dir = Path(out) if out else Path("runs") / f"{kind}-{Path(path).stem}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"kind": kind, **to_dict(config)}, sort_keys=False))
    rows = _module(kind).run(config, run_dir, progress)
    write_summary(run_dir, rows, title=f"interlearn {kind} run")
    (run_dir / "recipe.json").write_text(json.dumps({"kind": kind, "source": str(path)}))
    return run_dir


def example_recipes() -> list[Path]:
    """The example recipes shipped with the package."""
    return sorted((Path(__file__).parent / "examples").glob("*.yaml"))
