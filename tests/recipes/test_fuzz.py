"""Fuzz the shipped recipes as a new user would break them: drop a field, give it the wrong
type or an out-of-range value, add an unknown key, feed a binary or an empty file. Loading must
either succeed or raise one ``InterlearnError``; the command line must print one line, never a
traceback."""

from __future__ import annotations

import copy
import io
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml

from interlearn.cli import main
from interlearn.errors import InterlearnError
from interlearn.recipes import example_recipes, load_recipe

RECIPES = example_recipes()
RETYPES: list[Any] = ["x", [1, 2], {"a": 1}, True, None]
OUT_OF_RANGE: list[Any] = [-1, 0, -0.5, 1e12, -1e12, 10**12, math.nan, math.inf, "3e-3", ""]


def _leaves(d: Any, path: tuple = ()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _leaves(v, path + (i,))
    if path:
        yield path


def _mutations(base: dict) -> list[tuple[str, dict]]:
    out = []
    for path in _leaves(base):
        if path == ("kind",):
            continue
        values = RETYPES + OUT_OF_RANGE
        for v in values:
            d = copy.deepcopy(base)
            node = d
            for p in path[:-1]:
                node = node[p]
            node[path[-1]] = v
            out.append((f"{'.'.join(map(str, path))}={v!r}", d))
        if not isinstance(path[-1], int):
            d = copy.deepcopy(base)
            node = d
            for p in path[:-1]:
                node = node[p]
            del node[path[-1]]
            out.append((f"drop {'.'.join(map(str, path))}", d))
            node[f"{path[-1]}_typo"] = 1  # an unknown key at the same level
            out.append((f"unknown key next to {'.'.join(map(str, path))}", d))
    return out


def _write(tmp_path: Path, name: str, payload: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
    return p


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_mutated_recipes_load_or_fail_with_one_interlearn_error(recipe, tmp_path):
    base = yaml.safe_load(recipe.read_text())
    muts = _mutations(base)
    assert len(muts) > 50
    escaped = []
    for label, d in muts:
        path = _write(tmp_path, "m.yaml", yaml.dump(d, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
        try:
            load_recipe(path)
        except InterlearnError as exc:
            assert str(exc) and "Traceback" not in str(exc)
        except Exception as exc:  # noqa: BLE001 - the point of the test
            escaped.append(f"{label}: {type(exc).__name__}: {exc}")
    assert not escaped, "\n".join(escaped[:20])


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_the_command_line_reports_bad_recipes_in_one_line(recipe, tmp_path):
    text = recipe.read_text()
    cases = {
        "binary.yaml": bytes(range(256)) * 4,
        "empty.yaml": b"",
        "truncated.yaml": text[: len(text) // 3].encode() + b"\n  - [\n",
        "unknown.yaml": (text + "\nno_such_field: 1\n").encode(),
        "seed.yaml": (text + "\nseed: -5\n").encode()
        if "\nseed:" not in text
        else text.replace("\nseed: 0", "\nseed: -5").encode(),
    }
    for name, payload in cases.items():
        path = _write(tmp_path, name, payload)
        err, out = io.StringIO(), io.StringIO()
        with redirect_stderr(err), redirect_stdout(out):
            rc = main(["run", str(path), "--out", str(tmp_path / "run")])
        msg = err.getvalue()
        assert rc == 2, (name, msg, out.getvalue())
        assert msg.startswith("interlearn: error: ") and "Traceback" not in msg, (name, msg)
        assert name.split(".")[0] in ("unknown", "seed", "truncated") or str(path) in msg, (name, msg)
