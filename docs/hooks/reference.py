"""MkDocs hook: pages generated from the code at build time, so they cannot go stale.

- ``<!-- cli-reference -->``: every ``interlearn`` subcommand's ``--help`` (from ``build_parser``).
- ``<!-- recipe-reference -->``: every recipe kind's fields (name, type, default and the line its
  ``Config`` docstring gives), walked recursively through nested dataclasses; a field that names
  a registered entry (``Annotated[str, REGISTRY]``) lists the registry's names.
- ``<!-- benchmarks -->``: BENCHMARKS.md as rendered from ``benchmarks/results/*.json``, with its
  links rewritten for the site (images and results live beside it in the repository).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _cli() -> str:
    from interlearn.cli import build_parser

    parser = build_parser()
    parser.prog = "interlearn"
    out = ["```text", parser.format_help().rstrip(), "```"]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        sub.prog = f"interlearn {name}"
        out += [f"### `interlearn {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _field_help(cls: type) -> dict[str, str]:
    """``name: text`` lines of a dataclass docstring's ``Attributes:`` section."""
    doc = cls.__doc__ or ""
    if "Attributes:" not in doc:
        return {}
    block = doc.split("Attributes:", 1)[1]
    helps: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        m = re.match(r"^\s{4,8}([A-Za-z_][A-Za-z0-9_]*)(?: \([^)]*\))?: (.*)$", line)
        if m:
            current = m.group(1)
            helps[current] = m.group(2).strip()
        elif current and line.strip() and not re.match(r"^\s*(Raises|Returns|Example)s?:", line):
            helps[current] += " " + line.strip()
        elif re.match(r"^\s*(Raises|Returns|Examples?):", line):
            break
    return helps


def _type_name(tp: Any) -> str:
    from interlearn.registry import registry_of

    registry = registry_of(tp)
    if registry is not None:  # Annotated[str, REGISTRY]: the names registered when the docs build
        optional = type(None) in typing.get_args(tp)
        names = ", ".join(f"`{n}`" for n in registry.names())
        return f"{registry.kind} name{' or None' if optional else ''}: {names}, or a registered one"
    text = str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return re.sub(r"\b[a-z_.]+\.([A-Z][A-Za-z0-9_]*)", r"\1", text).replace("|", "\\|")


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "(see below)"
    else:
        return "required"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"`{text}`".replace("|", "\\|")


def _fields(cls: type, prefix: str, rows: list[str], seen: set[type]) -> None:
    helps = _field_help(cls)
    hints = typing.get_type_hints(cls, include_extras=True)
    nested = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints.get(f.name, f.type)
        help_text = helps.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{prefix}{f.name}` | {_type_name(tp)} | {_default(f)} | {help_text} |")
        nested += [
            (f.name, arg)
            for arg in (tp, *typing.get_args(tp))
            if dataclasses.is_dataclass(arg) and isinstance(arg, type) and arg not in seen
        ]
    for name, sub in nested:
        _fields(sub, f"{prefix}{name}.", rows, seen | {sub})


def _recipes() -> str:
    from interlearn.recipes import KINDS

    out = []
    for kind in KINDS:
        module = importlib.import_module(f"interlearn.recipes.{kind}")
        config = module.Config
        summary = (config.__doc__ or "").strip().splitlines()[0]
        rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
        _fields(config, "", rows, {config})
        out += [f"### `kind: {kind}`", "", summary, "", *rows, ""]
    return "\n".join(out)


def _benchmarks() -> str:
    text = (ROOT / "BENCHMARKS.md").read_text()
    text = re.sub(r"^# .*\n", "", text, count=1)  # the page has its own title

    def link(m: re.Match[str]) -> str:
        bang, label, target = m.group(1), m.group(2), m.group(3)
        if re.match(r"^(https?:|#|mailto:)", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        if path == "README.md":
            return f"[{label}](index.md{'#' + anchor if anchor else ''})"
        if bang:  # the plots are added to the site's files by on_files, at the same path
            return f"![{label}]({path})"
        return f"{label} (`{path}` in the repository)" if label != path else f"`{path}`"

    return re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", link, text)


GENERATED = {
    "<!-- cli-reference -->": _cli,
    "<!-- recipe-reference -->": _recipes,
    "<!-- benchmarks -->": _benchmarks,
}


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, make in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """Copy the benchmark plots that BENCHMARKS.md shows into the site."""
    from mkdocs.structure.files import File

    for png in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        files.append(
            File(
                f"benchmarks/results/{png.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc|ref):(?=<code>|`)")


def on_page_content(html: str, **_: Any) -> str:
    """Drop the Sphinx roles (``:class:``, ``:func:``...) that the docstrings use: the name stays as code."""
    return _ROLE.sub("", html)
