"""BENCHMARKS.md and the README's results table are rendered from benchmarks/results/*.json.

Two checks: every template renders (no missing file or key), and no number is typed by hand in
a template. **The rule for digits in a template** (sections, ``header.md``,
``readme_results.md``): a digit may appear only

* inside a ``{{name:path[:format]}}`` placeholder, a ``{{= expression | format}}`` or a
  ``<!-- table:NAME -->`` line (rendered from the JSON);
* inside code: an inline code span or a code block (commands, options, file names, code);
* in a heading (section names such as "FEMNIST" or "fl_scale" may hold digits);
* in a year or an ISO date (``2017``, ``2026-11-27``: citations and when a run was made), a
  version (``2.13.0``), a reference into a paper (``Table 2``, ``eq. (4)``), a link target;
* inside a name that starts with a letter (``conv2``, ``int8``, ``fc50``, ``L2``), a metric
  name ``top-1``/``top-3``, or one of the few digit-first names in ``NAMES``.

Anything else (an accuracy, a time, a byte count, a setting) comes from a placeholder, or is
written as the command's option in code. Targets and published numbers come from
``benchmarks/references.json`` (``{{references:...}}``), each with its source. Small counts in
prose are words ("two cores").
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import assemble  # noqa: E402

NAMES = ("2NN", "1D", "2D", "3D")
_ALLOWED = re.compile(
    "|".join(
        [
            r"\{\{.*?\}\}",  # placeholders and expressions
            r"`[^`]*`",  # inline code
            r"<!--.*?-->",  # comments (table markers)
            r"\]\([^)]*\)",  # link targets
            r"\b(?:19|20)\d\d-\d\d-\d\d\b",  # ISO dates
            r"\b(?:19|20)\d\d\b",  # years
            r"\b\d+\.\d+\.\d+\b",  # versions
            r"\b(?:Table|Figure|Fig\.|Algorithm|Theorem|Section|Lemma|eq\.)\s*\(?\d+\)?",  # references into papers
            r"\b[A-Za-z][A-Za-z0-9_]*\d[A-Za-z0-9_]*",  # names starting with a letter
            r"\b(?:" + "|".join(NAMES) + r")\b",
            r"\btop-\d\b",  # the metric names top-1 / top-3
        ]
    )
)


def typed_numbers(text: str) -> list[str]:
    """Lines of ``text`` that hold a digit outside what the rule above allows."""
    bad, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    ") or line.lstrip().startswith("#"):
            continue
        if re.search(r"\d", _ALLOWED.sub("", line)):
            bad.append(line)
    return bad


def test_the_digit_rule_catches_typed_numbers_and_spares_the_rest():
    assert typed_numbers("accuracy 84.2% after 300 steps") == ["accuracy 84.2% after 300 steps"]
    ok = "acc {{t:a:.1%}}, {{= 2 * t:b | .1f}} (`--epochs 100`), conv2/int8 in 2017, run 2026-11-27, torch 2.13.0, Table 2"
    assert typed_numbers(ok) == []
    assert typed_numbers("```\npython x.py --n 3\n```\n    indented 5\n## fl_scale 10,000") == []


def test_expressions_are_arithmetic_only():
    assert assemble.evaluate("2 * (3 + 1) / 4 - abs(-1)", {}) == 1
    assert assemble.evaluate("3 >= 2 * 2", {}) is False
    assert assemble.fmt(True, "yesno") == "yes" and assemble.fmt(False, "yesno") == "no"
    with pytest.raises(assemble.TemplateError, match="yesno"):
        assemble.fmt(0.5, "yesno")
    with pytest.raises(assemble.TemplateError, match="not allowed"):
        assemble.evaluate("1 < 2 < 3", {})
    with pytest.raises(assemble.TemplateError, match="not allowed"):
        assemble.evaluate("__import__('os')", {})
    with pytest.raises(assemble.TemplateError, match="no key"):
        assemble.evaluate("transfer:no_such_key", {})


@pytest.mark.parametrize("name", assemble.ORDER)
def test_section_renders_from_the_json(name):
    out = assemble.render_file(BENCH / "sections" / f"{name}.md")
    assert "{{" not in out and "<!-- table:" not in out


@pytest.mark.parametrize("name", assemble.ORDER)
def test_section_types_no_number_by_hand(name):
    assert typed_numbers((BENCH / "sections" / f"{name}.md").read_text()) == []


@pytest.mark.parametrize("template", ["header.md", "readme_results.md"])
def test_summary_tables_render_and_type_no_number(template):
    text = (BENCH / template).read_text()
    assert typed_numbers(text) == []
    assert "{{" not in assemble.render(text)


def test_readme_results_block_is_the_rendered_template():
    readme = (BENCH.parent / "README.md").read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    assert start in readme and end in readme
    block = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == assemble.render_file(BENCH / "readme_results.md").strip(), (
        "run python benchmarks/assemble.py --readme"
    )


def test_benchmarks_md_is_the_rendered_templates(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    assemble.write_benchmarks({}, out)
    assert out.read_text() == (BENCH.parent / "BENCHMARKS.md").read_text(), "run python benchmarks/assemble.py"
