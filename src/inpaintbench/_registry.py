"""One registry class for every extension point (models, mask presets, metrics, sources)."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class InpaintbenchError(ValueError):
    """A user-facing error: bad input, missing file, unknown name. The CLI prints it on one line."""


def error_summary(err: BaseException, limit: int = 160) -> str:
    """A library's exception in a few words for a one-line error: its first sentence, cut at a word past ``limit``.

    torch and pyarrow explain their errors over several sentences and lines ("... failed finding central
    directory. This is an internal miniz error. If you are seeing this error, ..."); the first says what failed.
    """
    line = next((text.strip() for text in str(err).splitlines() if text.strip()), "") or type(err).__name__
    sentence = line.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0] + " ..."


def suggestion(name: str, known: list[str], listing: str = "", short: int = 12) -> str:
    """The hint after "unknown name": its close matches, else every known name (when few) or where to list them."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return f"; did you mean {', '.join(close)}?"
    if len(known) <= short or not listing:
        return f"; known: {', '.join(known)}"
    return f"; `{listing}` lists all {len(known)}"


class Registry(Generic[T]):
    """A name -> object table that refuses duplicates and suggests close names for typos.

    Args:
        kind: what the entries are ("model", "mask level", ...), used in error messages.
        listing: the command that lists the entries (``inpaintbench models list``), named in the error for an
            unknown name with no close match instead of a long list.

    """

    SHORT_LIST = 12  # up to this many entries, an unknown name's error lists them all

    def __init__(self, kind: str, listing: str = "") -> None:
        self.kind = kind
        self.listing = listing
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
            raise InpaintbenchError(f"unknown {self.kind} {name!r}{self.suggest(name)}") from None

    def suggest(self, name: str) -> str:
        """The hint for an unknown ``name``: close names, else the list (when short) or the listing command."""
        return suggestion(name, self.names(), self.listing, self.SHORT_LIST)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching the fnmatch ``pattern``, in registration order."""
        return [n for n in self._entries if fnmatch.fnmatchcase(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
