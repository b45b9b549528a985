"""Dataset sources, the shard layer and the loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._registry import InpaintbenchError, Registry
from .celeba import build_celeba
from .folder import build_folder
from .inat import build_inat
from .places2 import build_places2
from .sample import build_sample
from .shards import read_info, read_split, refuse_foreign_folder

SOURCES: Registry[Callable[..., dict[str, Any]]] = Registry("dataset source")
SOURCES.register("sample", build_sample)
SOURCES.register("celeba", build_celeba)
SOURCES.register("places2", build_places2)
SOURCES.register("inat", build_inat)
SOURCES.register("folder", build_folder)


def build_dataset(source: str, out: str | Path, **options: Any) -> dict[str, Any]:
    """Build dataset ``source`` into the folder ``out`` and return its dataset.json content.

    Example:
        >>> info = build_dataset("sample", "datasets/sample", size=64)  # doctest: +SKIP

    """
    import inspect

    builder = SOURCES.get(source)
    accepted = set(inspect.signature(builder).parameters) - {"out"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InpaintbenchError(f"dataset source {source!r} takes no option {', '.join(unknown)}; "
                                f"options: {', '.join(sorted(accepted))}")
    refuse_foreign_folder(out)
    return builder(out=out, **options)


def __getattr__(name: str):
    """The loader (which needs torch) is imported on first use, so building a dataset does not load torch."""
    if name == "InpaintDataset":
        from . import loader

        return loader.InpaintDataset
    if name in ("ShardStream", "open_dataset"):
        from . import stream

        return getattr(stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SOURCES", "InpaintDataset", "ShardStream", "build_dataset", "open_dataset", "read_info", "read_split"]
