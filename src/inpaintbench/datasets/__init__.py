"""Dataset sources, the shard layer and the loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._registry import Registry
from .loader import InpaintDataset, open_dataset
from .sample import build_sample
from .shards import read_info, read_split

SOURCES: Registry[Callable[..., dict[str, Any]]] = Registry("dataset source")
SOURCES.register("sample", build_sample)


def build_dataset(source: str, out: str | Path, **options: Any) -> dict[str, Any]:
    """Build dataset ``source`` into the folder ``out`` and return its dataset.json content.

    Example:
        >>> info = build_dataset("sample", "datasets/sample", size=64)  # doctest: +SKIP

    """
    return SOURCES.get(source)(out=out, **options)


__all__ = ["SOURCES", "InpaintDataset", "build_dataset", "open_dataset", "read_info", "read_split"]
