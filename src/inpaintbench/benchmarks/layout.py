"""The results schema: the files of a suite's output folder, their columns, and the images the grids show.

The one module that both sides read: the harness writes what it names here, the reports read it back. It
imports nothing of the harness (nor of the reports), so data flows one way: suite -> datasets -> masks ->
train -> evaluate -> results -> reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["HOLDER_FILE", "IMAGE_COLUMNS", "LOCK_FILE", "RESULTS_FILE", "RUNS_DIR", "RUN_METRICS_COLUMNS",
           "RUN_METRICS_FILE", "composite_path", "grid_indices"]

RESULTS_FILE = "results.parquet"  # one row per (run, image): the identity columns and the per-image metrics
RUN_METRICS_FILE = "run_metrics.parquet"  # one row per run and set metric (FID, KID, dataset PSNR, unavailable)
RUNS_DIR = "outputs"  # <out>/outputs/<run id>/: the run's two tables and the composites the grids show
LOCK_FILE = ".lock"
HOLDER_FILE = ".lock.json"

# The columns of results.parquet before the per-image metric columns (one per metric of the suite).
IMAGE_COLUMNS = ("run_id", "suite", "model", "model_name", "model_config", "train_steps", "checkpoint", "level",
                 "dataset", "split", "mask_set", "seed", "size", "image", "key", "area_ratio")
RUN_METRICS_COLUMNS = ("run_id", "model", "level", "metric", "value", "n_images", "comparable", "status", "reason")


def grid_indices(count: int, samples: int) -> list[int]:
    """The images shown in the report grids: ``samples`` indices spread evenly over the set."""
    return sorted({int(i) for i in np.linspace(0, count - 1, num=min(samples, count))})


def composite_path(out: str | Path, run_id: str, index: int) -> Path:
    """Where the composite of image ``index`` of run ``run_id`` is saved (only the grid images are)."""
    return Path(out) / RUNS_DIR / run_id / f"{index:06d}.png"
