"""Old import paths of moved modules keep working for one release, with a DeprecationWarning.

One mechanism for every move: a :class:`importlib.abc.MetaPathFinder` (installed once, first on
``sys.meta_path``) that maps an old dotted name, or any name under an old package, to its new
home, warns, and hands back the very module object already imported under the new name, so
classes, registries and pickled references stay identical. Nothing is left at the old paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType

__all__ = ["MovedModules", "install"]


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{self.old} moved to {self.new}; the old path works for one release only",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system has just stamped the old spec on the module: give it its own back
        module.__spec__ = self.spec


class MovedModules(importlib.abc.MetaPathFinder):
    """Resolve ``old`` (and ``old.<sub>``) to ``new`` (and ``new.<sub>``) for each pair given."""

    def __init__(self, moves: Mapping[str, str]) -> None:
        self.moves = dict(moves)

    def target(self, fullname: str) -> str | None:
        """The new dotted name of ``fullname``, or None when it did not move."""
        for old, new in self.moves.items():
            if fullname == old or fullname.startswith(old + "."):
                return new + fullname[len(old) :]
        return None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = self.target(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(fullname, new))


def install(moves: Mapping[str, str]) -> MovedModules:
    """Put one finder for ``moves`` first on ``sys.meta_path`` (once per mapping) and return it."""
    for finder in sys.meta_path:
        if isinstance(finder, MovedModules) and finder.moves == dict(moves):
            return finder
    finder = MovedModules(moves)
    sys.meta_path.insert(0, finder)
    return finder
