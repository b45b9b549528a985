"""Benchmarks: metrics, suites, the results layout and the harness.

The harness and the suite parser are imported on first use (PEP 562), so that the reports can read the results
layout and the metric metadata without loading the harness (data flows one way: results -> reports).
"""

from . import metrics

_LAZY = {"evaluate_checkpoint": "harness", "run_benchmark": "harness", "Suite": "suite", "load_suite": "suite",
         "parse_suite": "suite"}


def __getattr__(name: str):
    """Import a public name of the harness or the suite parser on first use."""
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["Suite", "evaluate_checkpoint", "load_suite", "metrics", "parse_suite", "run_benchmark"]
