"""Benchmarks: metrics, suites and the harness."""

from . import metrics
from .harness import evaluate_checkpoint, run_suite
from .suite import Suite, load_suite, parse_suite

__all__ = ["Suite", "evaluate_checkpoint", "load_suite", "metrics", "parse_suite", "run_suite"]
