"""The README's and the docs' Python blocks run as written (each in a fresh interpreter).

The README shows one short example per paradigm; the docs pages hold the fuller quickstarts. A
block that appears in both runs once.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks() -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for page in PAGES:
        for code in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
            seen.setdefault(code, str(page.relative_to(ROOT)))
    return [(where, code) for code, where in seen.items()]


BLOCKS = _blocks()


def test_readme_has_one_example_per_paradigm():
    readme = README.read_text()
    assert len(re.findall(r"```python\n", readme)) >= 5
    for paradigm in ("Transfer learning", "Fine-tuning", "distillation", "Multi-task", "Federated"):
        assert re.search(rf"^### .*{paradigm}", readme, flags=re.M | re.I), paradigm
    assert len(readme.splitlines()) <= 250, "the README is the front door: keep it to a screen or three"


def test_readme_links_resolve():
    readme = README.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"{w}:{i}" for i, (w, _) in enumerate(BLOCKS)])
def test_quickstart_runs(index, tmp_path):
    where, block = BLOCKS[index]
    code = "import torch\ntorch.set_num_threads(1)\n" + block
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{where} block failed:\n{block}\n{proc.stderr[-3000:]}"
