"""One registry class for every extension point (models, mask presets, metrics, sources)."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class InpaintbenchError(ValueError):
    """A user-facing error: bad input, missing file, unknown name. The CLI prints it on one line."""


class Registry(Generic[T]):
    """A name -> object table that refuses duplicates and suggests close names for typos.

    Args:
        kind: what the entries are ("model", "mask level", ...), used in error messages.

    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` this returns a decorator."""
        if not name or any(c.isspace() for c in name) or "/" in name:
            raise ValueError(f"invalid {self.kind} name {name!r}")

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """Return the entry ``name``, or raise a one-line error that suggests close names."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(self.names())}"
            raise InpaintbenchError(f"unknown {self.kind} {name!r}{hint}") from None

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the fnmatch ``pattern``, in registration order."""
        return [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
