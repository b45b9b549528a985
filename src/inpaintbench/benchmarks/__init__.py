"""Benchmarks: metrics, suites and the harness."""

from . import metrics
from .harness import run_suite
from .suite import Suite, load_suite, parse_suite

__all__ = ["Suite", "load_suite", "metrics", "parse_suite", "run_suite"]
