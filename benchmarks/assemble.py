"""Assemble BENCHMARKS.md (and the README's results table) from templates and the JSON results.

    python benchmarks/assemble.py            # BENCHMARKS.md and the README's results block
    python benchmarks/assemble.py --readme   # the README block only

BENCHMARKS.md = ``benchmarks/header.md`` + one section per benchmark
(``benchmarks/sections/<name>.md``), in a fixed order. Sections are templates: prose is written
by hand, numbers are not —

* ``{{name:dotted.path}}`` or ``{{name:dotted.path:FORMAT}}`` is replaced by the value at
  ``dotted.path`` in ``benchmarks/results/<name>.json`` (``FORMAT`` is a Python format spec,
  e.g. ``.3f``, ``.1%``, ``,``); a missing file or key is an error, so a stale number cannot survive;
* ``{{= EXPR | FORMAT}}`` is replaced by arithmetic on such values: ``EXPR`` holds references
  ``name:dotted.path`` (keys of letters, digits, ``_`` and ``@``), numbers, ``+ - * / **``,
  parentheses and ``abs``/``min``/``max``/``round``/``len``, e.g. ``{{= 100 * (transfer:transfer_acc -
  transfer:scratch_acc) | +.1f}}`` for a gain in points (derived numbers are computed, not typed);
* ``references`` names ``benchmarks/references.json`` instead of a result: the issues' targets
  and the published numbers compared against, each with its source (``{{references:distill.error_reduction:.0%}}``);
* a line ``<!-- table:NAME -->`` is replaced by the table ``benchmarks/tables.py`` renders from
  the JSON (``tables.NAME(results)``).

The README's block between ``<!-- results:start -->`` and ``<!-- results:end -->`` is rendered
the same way from ``benchmarks/readme_results.md``.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tables  # noqa: E402

ORDER = [
    "transfer",
    "feature_cache",
    "distill",
    "multitask",
    "mtl_overhead",
    "fl_matrix",
    "fl_scale",
    "fl_mnist",
    "fl_privacy",
    "fl_robust",
    "fl_fairness",
    "fl_secagg",
    "fl_compress",
    "shakespeare",
    "keyboard_words",
    "femnist",
    "personalization",
    "fl_engines",
    "fl_lora",
    "fit_parallel",
    "gpu_check",
]
RESULTS = HERE / "results"
REFERENCES = HERE / "references.json"  # the issues' targets and published numbers: nothing a benchmark measures
PLACEHOLDER = re.compile(r"\{\{([A-Za-z0-9_]+):([^}:]+)(?::([^}]*))?\}\}")
EXPRESSION = re.compile(r"\{\{=([^|}]+)(?:\|([^}]*))?\}\}")
REFERENCE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_@.]+[A-Za-z0-9_@])")
TABLE = re.compile(r"^<!-- table:([A-Za-z0-9_]+) -->$", re.M)


class TemplateError(ValueError):
    """A placeholder names a result that does not exist."""


def _json(name: str, cache: dict[str, Any]) -> Any:
    if name not in cache:
        path = REFERENCES if name == "references" else RESULTS / f"{name}.json"
        if not path.is_file():
            raise TemplateError(f"{path} does not exist: run the benchmark that writes it")
        cache[name] = json.loads(path.read_text())
    return cache[name]


def lookup(data: Any, dotted: str) -> Any:
    """``data["a"]["b"][0]`` for ``"a.b.0"``."""
    for part in dotted.split("."):
        if isinstance(data, list):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            raise TemplateError(f"no key {part!r} on the way to {dotted!r}")
    return data


_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max, "round": round, "len": len}


def _arith(node: ast.AST, values: list[Any]) -> Any:
    """Evaluate the arithmetic subset of Python that ``{{= ...}}`` allows (no names but the
    functions above and the ``_vN`` references, no attributes, no other calls)."""
    if isinstance(node, ast.Expression):
        return _arith(node.body, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name) and node.id.startswith("_v"):
        return values[int(node.id[2:])]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left, values), _arith(node.right, values))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.operand, values))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return _COMPARE[type(node.ops[0])](_arith(node.left, values), _arith(node.comparators[0], values))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
        return _FUNCS[node.func.id](*[_arith(a, values) for a in node.args])
    raise TemplateError(f"not allowed in a {{{{= ...}}}} expression: {ast.unparse(node)!r}")


def evaluate(expr: str, cache: dict[str, Any]) -> Any:
    """The value of ``{{= expr}}`` (references looked up in the results, then the arithmetic)."""
    values: list[Any] = []

    def ref(m: re.Match[str]) -> str:
        values.append(lookup(_json(m.group(1), cache), m.group(2)))
        return f"_v{len(values) - 1}"

    try:
        tree = ast.parse(REFERENCE.sub(ref, expr).strip(), mode="eval")
    except SyntaxError as exc:
        raise TemplateError(f"bad expression {expr!r}: {exc.msg}") from None
    return _arith(tree, values)


def fmt(value: Any, spec: str | None) -> str:
    """``value`` with a Python format ``spec``; ``join<sep>`` joins a list's items with ``<sep>``
    (``{{transfer:config.labels_per_class:join/}}`` gives ``1/5/10/50``); ``yesno`` writes a
    boolean as yes / no."""
    if spec is None or spec == "":
        return str(value)
    if spec == "yesno":  # a met / not-met flag in words
        if not isinstance(value, bool):
            raise TemplateError(f"format 'yesno' needs true or false, got {value!r}")
        return "yes" if value else "no"
    if spec.startswith("join"):
        if not isinstance(value, list):
            raise TemplateError(f"format {spec!r} needs a list, got {value!r}")
        return spec[4:].join(str(v) for v in value)
    return format(value, spec)


def render(text: str, cache: dict[str, Any] | None = None) -> str:
    """Substitute the placeholders, expressions and table markers of ``text``."""
    cache = {} if cache is None else cache

    def value(m: re.Match[str]) -> str:
        return fmt(lookup(_json(m.group(1), cache), m.group(2)), m.group(3))

    def table(m: re.Match[str]) -> str:
        fn = getattr(tables, m.group(1), None)
        if fn is None:
            raise TemplateError(f"benchmarks/tables.py has no table {m.group(1)!r}")
        return fn(lambda name: _json(name, cache)).rstrip()

    def expression(m: re.Match[str]) -> str:
        return fmt(evaluate(m.group(1), cache), m.group(2).strip() if m.group(2) else None)

    return PLACEHOLDER.sub(value, EXPRESSION.sub(expression, TABLE.sub(table, text)))


def render_file(path: Path, cache: dict[str, Any] | None = None) -> str:
    """``render`` of a template file."""
    return render(path.read_text(), cache)


def write_readme(cache: dict[str, Any]) -> None:
    """Replace the README's block between the results markers with ``readme_results.md`` rendered."""
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in text or end not in text:
        raise TemplateError(f"README.md lacks the {start} / {end} markers around the results table")
    block = render((HERE / "readme_results.md").read_text(), cache).strip()
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")


def write_benchmarks(cache: dict[str, Any], path: Path | None = None) -> None:
    """BENCHMARKS.md (or ``path``): the header and every section in ``ORDER``, rendered."""
    parts = [render((HERE / "header.md").read_text(), cache).rstrip() + "\n"]
    parts += [render((HERE / "sections" / f"{name}.md").read_text(), cache).strip() + "\n" for name in ORDER]
    (path or HERE.parent / "BENCHMARKS.md").write_text("\n\n".join(parts))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="Assemble BENCHMARKS.md and the README's results table from the JSON results."
    )
    ap.add_argument("--readme", action="store_true", help="only the README's results block")
    args = ap.parse_args(argv)
    cache: dict[str, Any] = {}
    if not args.readme:
        write_benchmarks(cache)
    write_readme(cache)
    print("wrote " + ("" if args.readme else "BENCHMARKS.md and ") + "the README's results block")


if __name__ == "__main__":
    main()
