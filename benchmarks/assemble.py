"""Assemble BENCHMARKS.md (and the README's results table) from templates and the JSON results.

    python benchmarks/assemble.py

BENCHMARKS.md = ``benchmarks/header.md`` + one section per benchmark
(``benchmarks/sections/<name>.md``), in a fixed order. Sections are templates: prose is written
by hand, numbers are not —

* ``{{name:dotted.path}}`` or ``{{name:dotted.path:FORMAT}}`` is replaced by the value at
  ``dotted.path`` in ``benchmarks/results/<name>.json`` (``FORMAT`` is a Python format spec,
  e.g. ``.3f``, ``.1%``); a missing file or key is an error, so a stale number cannot survive;
* a line ``<!-- table:NAME -->`` is replaced by the table ``benchmarks/tables.py`` renders from
  the JSON (``tables.NAME(results)``).

The README's block between ``<!-- results:start -->`` and ``<!-- results:end -->`` is rendered
the same way from ``benchmarks/readme_results.md``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tables  # noqa: E402

ORDER = ["transfer", "feature_cache", "distill", "multitask", "mtl_overhead", "fl_matrix", "fl_scale", "fl_mnist", "fl_privacy",
         "fl_robust", "fl_fairness", "fl_secagg", "fl_compress", "shakespeare", "keyboard_words", "femnist", "fl_engines", "fl_lora", "fit_parallel"]
RESULTS = HERE / "results"
PLACEHOLDER = re.compile(r"\{\{([A-Za-z0-9_]+):([^}:]+)(?::([^}]*))?\}\}")
TABLE = re.compile(r"^<!-- table:([A-Za-z0-9_]+) -->$", re.M)


class TemplateError(ValueError):
    """A placeholder names a result that does not exist."""


def _json(name: str, cache: dict[str, Any]) -> Any:
    if name not in cache:
        path = RESULTS / f"{name}.json"
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


def render(text: str, cache: dict[str, Any] | None = None) -> str:
    """Substitute the placeholders and table markers of ``text``."""
    cache = {} if cache is None else cache

    def value(m: re.Match[str]) -> str:
        v = lookup(_json(m.group(1), cache), m.group(2))
        return format(v, m.group(3)) if m.group(3) else str(v)

    def table(m: re.Match[str]) -> str:
        fn = getattr(tables, m.group(1), None)
        if fn is None:
            raise TemplateError(f"benchmarks/tables.py has no table {m.group(1)!r}")
        return fn(lambda name: _json(name, cache)).rstrip()

    return PLACEHOLDER.sub(value, TABLE.sub(table, text))


def main() -> None:
    cache: dict[str, Any] = {}
    parts = [render((HERE / "header.md").read_text(), cache).rstrip() + "\n"]
    parts += [render((HERE / "sections" / f"{name}.md").read_text(), cache).strip() + "\n" for name in ORDER]
    (HERE.parent / "BENCHMARKS.md").write_text("\n\n".join(parts))
    readme = HERE.parent / "README.md"
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start in text and end in text:
        block = render((HERE / "readme_results.md").read_text(), cache).strip()
        head, rest = text.split(start, 1)
        readme.write_text(f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")
    print("wrote BENCHMARKS.md and the README's results block")


if __name__ == "__main__":
    main()
