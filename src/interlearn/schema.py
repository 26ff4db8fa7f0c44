"""YAML mappings <-> validated frozen dataclasses (the recipes' schema machinery, used by any config).

``build(Config, mapping, path)`` walks a dataclass's fields, checks unknown keys (with a
"did you mean"), types, ``Literal`` choices and registered names (``Annotated[str, REGISTRY]``,
see :mod:`interlearn.registry`), recursing into nested dataclasses, and raises
``ConfigError`` naming the field path (``finetune.fit.optimizer``) and the allowed values. The
dataclasses' own ``__post_init__`` checks then run as usual; their errors get the path too.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import numpy as np
import yaml

from interlearn.errors import ConfigError, closest
from interlearn.registry import registry_of

__all__ = ["build", "load_yaml", "to_dict"]

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe file into a dict.

    Raises:
        ConfigError: a missing, unreadable, binary or empty file, bad YAML, or YAML that is not
            a mapping of fields (each message names the file and the fix).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe file not found: {p}")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the recipe ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not a text file (byte 0x{raw[exc.start]:02x} at position {exc.start} is not UTF-8); "
            "a recipe is a YAML text file: check the path (interlearn recipes --show federated prints one)"
        ) from None
    if not text.strip():
        raise ConfigError(
            f"{p}: the recipe is empty; it needs at least 'kind: ...' (interlearn recipes --show federated prints one)"
        )
    try:
        # libyaml's parser when present (same YAML 1.1 resolver, ~10x faster than pure Python)
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe must be a mapping of fields (key: value lines), got {type(data).__name__}")
    return data


def _number_hint(value: Any) -> str:
    """Why a number arrived as a string: YAML 1.1 (PyYAML) reads exponent notation as a float
    only with a dot and a signed exponent (``3.0e-3`` is text too; ``3.0e-03`` is a float)."""
    if not isinstance(value, str):
        return ""
    try:
        x = float(value)
    except ValueError:
        return ""
    mant, exp = f"{x:e}".split("e")
    mant = mant.rstrip("0")
    mant = mant + "0" if mant.endswith(".") else mant
    plain = np.format_float_positional(x, trim="-")
    return f"; YAML reads {value!r} as text, not a number: write {plain} or {mant}e{exp} (a dot and a signed exponent)"


def _convert(value: Any, tp: Any, path: str) -> Any:
    """``value`` checked (and converted: lists to tuples, ints to floats) against the type ``tp``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Annotated:  # Annotated[str, REGISTRY]: a name the registry must know
        value = _convert(value, get_args(tp)[0], path)
        registry = registry_of(tp)
        return registry.check(value, path) if registry is not None else value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: {value!r} is not allowed; choose one of {list(choices)}")
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(value, get_args(tp), path)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
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
    return _convert_scalar(value, tp, path)


def _convert_union(value: Any, args: tuple[Any, ...], path: str) -> Any:
    """The first member of the union that accepts ``value`` (``None`` only for an optional)."""
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
    raise ConfigError(
        errors[0]
        if len(errors) == 1
        else f"{path}: {value!r} matches none of {[getattr(a, '__name__', str(a)) for a in args]}"
    )


def _convert_scalar(value: Any, tp: Any, path: str) -> Any:
    """A bool, int (a ``seed`` non-negative), finite float or str; other types pass unchecked."""
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}{_number_hint(value)}")
        if path.rsplit(".", 1)[-1] == "seed" and value < 0:
            raise ConfigError(f"{path}: seed={value} must be a non-negative integer (e.g. 0)")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}{_number_hint(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{path}: {value!r} is not a finite number")
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
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{path}." if path else ""
    for key in mapping:
        if key not in fields:
            raise ConfigError(
                f"{prefix}{key}: unknown field of {cls.__name__}; known fields: {closest(str(key), fields, n=len(fields))}"
            )
    kwargs = {k: _convert(v, hints[k], f"{prefix}{k}") for k, v in mapping.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc


def to_dict(config: Any) -> Any:
    """A dataclass (recursively) as plain dicts/lists, for writing the resolved config. A
    dataclass with ``omit_none = True`` (a class attribute) leaves out its ``None`` fields."""
    if dataclasses.is_dataclass(config):
        skip_none = bool(getattr(config, "omit_none", False))
        return {
            f.name: to_dict(getattr(config, f.name))
            for f in dataclasses.fields(config)
            if not (skip_none and getattr(config, f.name) is None)
        }
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config
