"""The demo: build the embedded sample dataset if missing, then run benchmarks/demo.toml."""

from __future__ import annotations

from pathlib import Path

from ._registry import InpaintbenchError
from .bench import run_suite

DEMO_SUITE = Path("benchmarks/demo.toml")


def run_demo(suite: str | Path = DEMO_SUITE, resume: bool = True) -> Path:
    """Run the demo suite (the suite builds its sample dataset when missing); return the report path.

    Example:
        >>> run_demo()  # doctest: +SKIP

    """
    suite = Path(suite)
    if not suite.is_file():
        raise InpaintbenchError(f"{suite} not found; run the demo from the repository root")
    results = run_suite(suite, resume=resume)
    return results.parent / "README.md"
