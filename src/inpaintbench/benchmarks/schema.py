"""Typed checking of suite files: every value against the type its key declares, with no coercion.

A small checker of our own rather than a validation library: the types to check against are already written
down as annotations (the model config dataclasses, :class:`~..models.train.TrainConfig`, the dataset
builders' signatures), TOML has only a handful of value types, and each problem must read as one line naming
the file, the key and what is expected. ``"32"``, ``32.7`` and ``true`` are not integers here; an integer is
accepted where a number is expected (``lr = 1`` is 1.0, nothing is lost).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._registry import InpaintbenchError

__all__ = ["Field", "Problems", "Range", "SuiteInvalid", "check_value", "describe", "fields_of"]


class SuiteInvalid(InpaintbenchError):
    """A suite file with problems: one line each, naming the file, the key and what is expected."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Range:
    """Bounds of a number (inclusive unless ``*_open``)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies within the bounds (NaN never does)."""
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def text(self) -> str:
        """The bounds in words: ``>= 1``, ``> 0``, ``in [0, 1)``."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'<' if self.high_open else '<='} {self.high:g}"


@dataclass(frozen=True)
class Field:
    """One key of a table: its type annotation, whether it is required, and the range of its numbers."""

    kind: Any = Any
    required: bool = False
    range: Range | None = None


def _plural(annotation: Any) -> str:
    words = {int: "integers", float: "numbers", str: "strings", bool: "true/false values", Path: "paths"}
    return words.get(annotation, f"values that are {describe(annotation)}")


def describe(annotation: Any) -> str:
    """What an annotation expects, in words ("an integer", "a list of strings", "one of 'a', 'b'")."""
    words = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path (string)",
             type(None): "nothing", dict: "a table", list: "a list", tuple: "a list"}
    if annotation in words:
        return words[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]  # TOML has no null: an optional value is simply left out
        return " or ".join(dict.fromkeys(describe(a) for a in arms))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0]) if len(set(args)) == 1 else 'values'}"
    if origin in (list, Sequence, typing.Sequence):
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin in (dict, Mapping, typing.Mapping):
        return f"a table of {_plural(args[1])}" if len(args) == 2 else "a table"
    return "a value"


def _show(value: Any) -> str:
    """A value as TOML writes it (``"32"``, ``true``, ``[0.5]``), shortened to 60 characters."""
    import json

    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: Any) -> str:
    """The TOML type of a value, for messages."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def check_value(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (as TOML gives it) has the type ``annotation`` declares, without any conversion."""
    if annotation is Any or annotation is inspect.Parameter.empty or isinstance(annotation, (str, typing.TypeVar)):
        return True
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation in (str, Path):
        return isinstance(value, str)
    if annotation is type(None):
        return value is None
    if annotation in (dict, Mapping):
        return isinstance(value, dict)
    if annotation in (list, tuple, Sequence):
        return isinstance(value, (list, tuple))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(check_value(value, arm) for arm in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(check_value(v, args[0]) for v in value)
        return len(value) == len(args) and all(check_value(v, a) for v, a in zip(value, args, strict=True))
    if origin in (list, Sequence, typing.Sequence):
        return isinstance(value, (list, tuple)) and all(check_value(v, args[0]) for v in value) if args else \
            isinstance(value, (list, tuple))
    if origin in (dict, Mapping, typing.Mapping):
        if not isinstance(value, dict):
            return False
        return len(args) != 2 or all(check_value(k, args[0]) and check_value(v, args[1]) for k, v in value.items())
    if dataclasses.is_dataclass(annotation):
        return isinstance(value, dict)
    return True  # an annotation this checker does not know: the owner's own validation decides


def _numbers(value: Any) -> list[float]:
    """The numbers in a value (itself, or the items of a list), for range checks."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _numbers(item)]
    return []


def fields_of(owner: type | Callable[..., Any], ranges: Mapping[str, Range] | None = None,
              skip: Sequence[str] = (), required: bool = True) -> dict[str, Field]:
    """The keys a dataclass (its fields) or a function (its parameters) takes, with their annotations.

    Fields without a default are required (unless ``required`` is False); ``ranges`` adds bounds by name; names
    in ``skip`` are left out. Annotations that cannot be resolved are not type-checked (the owner's own
    validation still runs).
    """
    ranges = ranges or {}
    try:
        hints = typing.get_type_hints(owner)
    except Exception:  # a forward reference that only exists under TYPE_CHECKING, for example
        hints = {}
    if dataclasses.is_dataclass(owner):
        params = {f.name: f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                  for f in dataclasses.fields(owner) if f.init}
    else:
        params = {name: p.default is inspect.Parameter.empty
                  for name, p in inspect.signature(owner).parameters.items()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return {name: Field(hints.get(name, Any), required and needed, ranges.get(name))
            for name, needed in params.items() if name not in skip}


class Problems:
    """The problems found in one suite file, one line each: ``<file>: <key>: <what is expected>``."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        """Record one problem at key ``where``."""
        self.lines.append(f"{self.origin}: {where}: {message}" if where else f"{self.origin}: {message}")

    def registry(self, where: str, lookup: Callable[[], Any]) -> Any:
        """Run a registry lookup (or any check raising InpaintbenchError); record its message as a problem."""
        try:
            return lookup()
        except InpaintbenchError as err:
            self.add(where, str(err))
        except (ValueError, TypeError) as err:  # a config's own __post_init__ checks
            self.add(where, str(err).splitlines()[0] if str(err) else type(err).__name__)
        return None

    def table(self, value: Any, where: str, fields: Mapping[str, Field], what: str = "") -> dict[str, Any]:
        """Check a table: it is one, has no unknown key and every required one, and each value has its type.

        Returns:
            The keys whose values passed (the others are recorded as problems and left out).

        """
        if not isinstance(value, dict):
            self.add(where, f"expected a table, got {_show(value)} ({_kind_of(value)})")
            return {}
        last = where.rsplit(" ", 1)[-1]
        prefix = f"{where} " if last.startswith("#") or last.endswith(("]", ")")) else (f"{where}." if where else "")
        good = {}
        for key in value:
            if key not in fields:
                allowed = ", ".join(sorted(fields)) or "none"
                self.add(f"{prefix}{key}", f"unknown key{what}; allowed: {allowed}")
        for key, field in fields.items():
            if key not in value:
                if field.required:
                    self.add(f"{prefix}{key}", f"missing (required{what})")
                continue
            if self.value(value[key], f"{prefix}{key}", field):
                good[key] = value[key]
        return good

    def value(self, value: Any, where: str, field: Field) -> bool:
        """Check one value against its field's type and range; record a problem and return False if it fails."""
        expected = describe(field.kind)
        if field.range is not None:
            expected += f" {field.range.text()}" if expected != "a value" else field.range.text()
        if not check_value(value, field.kind):
            self.add(where, f"expected {expected}, got {_show(value)} ({_kind_of(value)})")
            return False
        if field.range is not None and not all(field.range.contains(v) for v in _numbers(value)):
            self.add(where, f"expected {expected}, got {_show(value)}")
            return False
        return True

    def raise_if_any(self) -> None:
        """Raise :class:`SuiteInvalid` with every recorded line, if there are any."""
        if self.lines:
            raise SuiteInvalid(self.lines)
