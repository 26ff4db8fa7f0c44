"""Finding one user (a speaking role, a writer) of a federated dataset by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from interlearn.errors import DataError, closest

__all__ = ["Named", "user_named"]


class Named(Protocol):
    """Anything with a ``name``."""

    @property
    def name(self) -> str: ...


U = TypeVar("U", bound=Named)


def user_named(users: Sequence[U], name: str, what: str = "user") -> U:
    """The entry of ``users`` called ``name``.

    Raises:
        DataError: unknown name (the message suggests close ones).
    """
    for u in users:
        if u.name == name:
            return u
    raise DataError(f"unknown {what} {name!r}; did you mean {closest(name, [u.name for u in users])}?")
