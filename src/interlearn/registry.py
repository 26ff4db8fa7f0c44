"""Pluggable pieces by name (STYLE.md #7): one small registry behind every ``get_*``/``register_*``.

Strategies, aggregators, engines, multi-task methods, fine-tuning strategies, partitioners and
on-device encodings are each a :class:`Registry`: a name -> entry table whose errors say what
went wrong and what the known names are (the pattern of peft's ``register_peft_method``)::

    ENGINES = Registry("engine")
    ENGINES.register_all({"sequential": SequentialEngine, "vectorized": VectorizedEngine})
    ENGINES.register("mine", MyEngine)   # user code: one entry (or @ENGINES.decorator("mine"))
    ENGINES.build("sequnetial")   # ConfigError: unknown engine 'sequnetial'; known engines: [...] (closest: 'sequential')

That is the one registration idiom: a module registers its built-in table with
:meth:`Registry.register_all` and user code adds entries with ``register`` (or the public
``register_*`` function of the family, which calls it). A recipe field typed
``Annotated[str, REGISTRY]`` is checked against the registry when the recipe loads
(:func:`check_names`, called by the config's ``__post_init__``, and
:func:`interlearn.schema.build`), so a name registered from user code is accepted, a typo lists
the known names, and the generated recipe reference lists the registered ones.

A registry may name *plugin modules*: modules that register more entries when imported (the
robust aggregators, say). They are imported on the first lookup that misses or lists names, so
``get_aggregator("median")`` works without importing :mod:`interlearn.federated.protections.robust` by hand,
and importing the registry does not import them (no import circle).

Installed packages can add entries too, so that ``interlearn run recipe.yaml`` on the command
line knows them: a package that declares its registering module under the ``interlearn.plugins``
entry-point group (``[project.entry-points."interlearn.plugins"] feddyn = "my_package.feddyn"``
in its ``pyproject.toml``) is imported on the first lookup that misses or lists names, in any
registry.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from interlearn.errors import ConfigError, unknown_name

__all__ = ["Registry", "check_names", "load_entry_points", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "interlearn.plugins"
"""The entry-point group of installed packages' registering modules."""

_entry_points_loaded = False


def load_entry_points() -> None:
    """Import, once, every module that installed packages declare under :data:`ENTRY_POINT_GROUP`.

    Raises:
        ConfigError: a declared module fails to import (naming the package's entry point).
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise ConfigError(
                f"interlearn plugin {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc


T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry table with clear unknown-name and duplicate-name errors.

    Args:
        kind: what an entry is, for messages (``"engine"``, ``"aggregator"``, ...).
        plural: the plural of ``kind`` (default ``kind + "s"``).
        plugins: modules imported on the first miss (each registers its entries when imported);
            an optional module that is not installed is skipped.

    Example:
        >>> r: Registry[int] = Registry("answer")
        >>> r.register("forty-two", 42)
        42
        >>> r.get("forty-two")
        42
    """

    def __init__(self, kind: str, plural: str | None = None, plugins: Sequence[str] = ()) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._entries: dict[str, T] = {}
        self._plugins = tuple(plugins)
        self._plugins_loaded = not self._plugins

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` and return it.

        Raises:
            ConfigError: ``name`` is already registered (pick another name).
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name {name!r}: give a non-empty string")
        if name in self._entries:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered; pick another name (known: {sorted(self._entries)})"
            )
        self._entries[name] = entry
        return entry

    def register_all(self, entries: Mapping[str, T], *, skip_registered: bool = False) -> None:
        """Register every ``name -> entry`` of ``entries`` (a module's built-in table).

        Args:
            entries: the table, in registration order.
            skip_registered: leave names that are already registered alone (a plugin module
                imported twice), instead of raising.

        Raises:
            ConfigError: a name is already registered (unless ``skip_registered``).
        """
        for name, entry in entries.items():
            if skip_registered and name in self._entries:
                continue
            self.register(name, entry)

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its entry (a test's or a notebook's own registration).

        Raises:
            ConfigError: unknown name.
        """
        entry = self.get(name)
        del self._entries[name]
        return entry

    def check(self, name: str, field: str) -> str:
        """``name`` if it is registered, for a config's ``__post_init__``.

        Raises:
            ConfigError: ``"<field>: unknown <kind> ...; known <kinds>: [...] (closest: ...)"``.
        """
        try:
            self.get(name)
        except ConfigError as exc:
            raise ConfigError(f"{field}: {exc}") from None
        return name

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@REGISTRY.decorator("name")`` registers the decorated class or function."""

        def deco(entry: T) -> T:
            return self.register(name, entry)

        return deco

    def load_plugins(self) -> None:
        """Import the plugin modules once (each registers its entries), and the installed
        packages' plugins (:func:`load_entry_points`)."""
        load_entry_points()
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for module in self._plugins:
            try:
                importlib.import_module(module)
            except ImportError:  # an optional module whose dependency is not installed
                continue

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            ConfigError: unknown name (the message lists the known names and the closest ones).
        """
        if name not in self._entries:
            self.load_plugins()
        if name not in self._entries:
            raise unknown_name(self.kind, name, self.names(), plural=self.plural)
        return self._entries[name]

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the entry registered as ``name`` (a factory or class) with the arguments.

        Raises:
            ConfigError: unknown name, or arguments the entry does not take.
        """
        factory: Any = self.get(name)
        try:
            return factory(*args, **kwargs)
        except TypeError as exc:  # an unexpected or missing keyword argument
            raise ConfigError(f"{self.kind} {name!r}: {exc}") from exc

    def names(self) -> list[str]:
        """The registered names, plugin modules included, sorted."""
        self.load_plugins()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in registration order (plugin modules included)."""
        self.load_plugins()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        # no plugin loading here: plugins test membership while they are being imported
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        """The names in registration order (plugin modules included)."""
        self.load_plugins()
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


def registry_of(tp: Any) -> Registry[Any] | None:
    """The registry an ``Annotated[str, REGISTRY]`` field type names (``None`` for other types;
    ``Optional`` / ``X | None`` around it is looked through)."""
    if typing.get_origin(tp) is typing.Annotated:
        return next((m for m in typing.get_args(tp)[1:] if isinstance(m, Registry)), None)
    for arg in typing.get_args(tp):
        if typing.get_origin(arg) is typing.Annotated:
            return registry_of(arg)
    return None


def check_names(config: Any) -> None:
    """Check every ``Annotated[str, REGISTRY]`` field of the dataclass ``config`` against its
    registry (call it from ``__post_init__``).

    Raises:
        ConfigError: ``"<field>: unknown <kind> ...; known <kinds>: [...] (closest: ...)"``.
    """
    hints = typing.get_type_hints(type(config), include_extras=True)
    for f in dataclasses.fields(config):
        registry = registry_of(hints.get(f.name))
        value = getattr(config, f.name)
        if registry is not None and value is not None:
            registry.check(value, f.name)
