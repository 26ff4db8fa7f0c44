"""The lock (constraints.txt) pins every package the locked venv holds, at the version it holds.

``make test`` installs from the lock, so a package installed without it (by hand, or by a
dependency whose bound floats) shows up here as unpinned. ``make test-latest`` installs the newest
releases on purpose and sets INTERLEARN_UNLOCKED=1, which skips these checks.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
UNLOCKED = os.environ.get("INTERLEARN_UNLOCKED") == "1"
# installers, and the project itself (installed editable from the working tree)
NOT_LOCKED = {"pip", "setuptools", "wheel", "interlearn"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def test_the_lock_is_a_resolver_output_of_every_extra():
    pins = _lock()
    assert len(pins) > 50 and "torch" in pins
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra, reqs in project["optional-dependencies"].items():
        declared += [r for r in reqs if not r.startswith("interlearn[")]
        assert reqs, f"extra {extra} is empty"
    for req in declared:
        name = _norm(re.split(r"[\[<>=!~;\s]", req, maxsplit=1)[0])
        assert name in pins, f"{req} (pyproject) is not pinned by constraints.txt: run make lock"


@pytest.mark.skipif(UNLOCKED, reason="make test-latest installs the newest releases on purpose")
def test_every_installed_package_is_pinned_at_its_version():
    pins = _lock()
    unpinned, differ = [], []
    for dist in metadata.distributions():
        name = _norm(dist.metadata["Name"])
        if name in NOT_LOCKED:
            continue
        if name not in pins:
            unpinned.append(f"{name}=={dist.version}")
        elif dist.version.split("+")[0] != pins[name].split("+")[0]:
            differ.append(f"{name}: installed {dist.version}, locked {pins[name]}")
    assert not unpinned, f"installed but not in constraints.txt (run make lock): {unpinned}"
    assert not differ, f"installed versions differ from the lock (reinstall with make setup): {differ}"
