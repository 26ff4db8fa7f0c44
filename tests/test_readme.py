"""The README's Python quickstarts run as written (each in a fresh interpreter)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_quickstarts():
    assert len(BLOCKS) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_quickstart_runs(index, tmp_path):
    code = "import torch\ntorch.set_num_threads(1)\n" + BLOCKS[index]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n{proc.stderr[-3000:]}"
