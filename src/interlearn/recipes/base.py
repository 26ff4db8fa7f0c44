"""YAML recipes -> validated frozen dataclasses.

``build(Config, mapping, path)`` walks a dataclass's fields, checks unknown keys (with a
"did you mean"), types and ``Literal`` choices, recursing into nested dataclasses, and raises
``ConfigError`` naming the field path (``finetune.fit.optimizer``) and the allowed values. The
dataclasses' own ``__post_init__`` checks then run as usual; their errors get the path too.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from interlearn.errors import ConfigError, closest

__all__ = ["build", "load_yaml", "to_dict"]

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe file into a dict (``ConfigError`` on a missing file or bad YAML)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe must be a mapping of fields, got {type(data).__name__}")
    return data


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: {value!r} is not allowed; choose one of {list(choices)}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: a value is required")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of {[getattr(a, '__name__', str(a)) for a in args]}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return build(tp, value, path)
    if origin in (list, tuple, typing.Sequence if hasattr(typing, "Sequence") else list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        args = get_args(tp)
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        args = get_args(tp)
        inner = args[1] if len(args) == 2 else Any
        return {k: _convert(v, inner, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def build(cls: type[T], mapping: dict[str, Any], path: str = "") -> T:
    """Construct the frozen dataclass ``cls`` from ``mapping`` with field-path errors.

    Args:
        cls: a dataclass type (nested dataclass fields are built recursively).
        mapping: values from YAML; missing keys take the dataclass defaults.
        path: prefix for error messages (e.g. ``"recipe"``).

    Raises:
        ConfigError: unknown key (with the closest known keys), wrong type, value not among a
            ``Literal``'s choices, or a failed ``__post_init__`` check.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{path}." if path else ""
    for key in mapping:
        if key not in fields:
            raise ConfigError(f"{prefix}{key}: unknown field of {cls.__name__}; known fields: {closest(str(key), fields, n=len(fields))}")
    kwargs = {k: _convert(v, hints[k], f"{prefix}{k}") for k, v in mapping.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc


def to_dict(config: Any) -> Any:
    """A dataclass (recursively) as plain dicts/lists, for writing the resolved config."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config
