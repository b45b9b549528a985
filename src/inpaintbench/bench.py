"""A benchmark suite end to end: the harness records its runs, then the report is written under the same lock.

This is where the harness (``benchmarks/``) and the reports (``reports/``) meet, so that neither imports the
other's stage backwards: data flows one way, suite -> datasets -> masks -> train -> evaluate -> results -> reports.
"""

from __future__ import annotations

from pathlib import Path

from ._io import named_os_errors
from .benchmarks.harness import run_benchmark
from .benchmarks.suite import Suite


def run_suite(path: str | Path, resume: bool = True, output: str | Path | None = None,
              report: bool = True, weights_dir: str | Path | None = None, wait: bool = False) -> Path:
    """Run a benchmark suite and write its results and report; return the results.parquet path.

    The suite is validated and its requirements checked before anything is written; the output folder is then
    locked (a second run on it stops with a message naming the holder, or waits with ``wait``). Each run is
    recorded in one atomic step, so the suite can be killed at any moment and resumed; the report is written
    last, still under the lock.

    Args:
        path: suite TOML file.
        resume: keep the runs already recorded (False recomputes everything).
        output: output folder (default: the suite's ``output``).
        report: write the markdown report when done.
        weights_dir: where metric networks are looked for (overrides the suite's ``weights_dir``).
        wait: when another run holds the output folder, wait for it instead of stopping.

    Example:
        >>> run_suite("benchmarks/demo.toml")  # doctest: +SKIP

    """
    return run_benchmark(path, resume=resume, output=output, weights_dir=weights_dir, wait=wait,
                         finish=_write_report if report else None)


def _write_report(results: Path, out: Path, suite: Suite) -> None:
    from .reports.markdown import write_report

    with named_os_errors("writing the report into", out):
        write_report(results, out, suite=suite)
