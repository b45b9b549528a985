"""The results schema: the files of a suite's output folder, their columns, and the images the grids show.

The one module that both sides read: the harness writes what it names here, the reports read it back. It
imports nothing of the harness (nor of the reports), so data flows one way: suite -> datasets -> masks ->
train -> evaluate -> results -> reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["DIFFICULTY_COLUMNS", "HOLDER_FILE", "IMAGE_COLUMNS", "LOCK_FILE", "RESULTS_FILE", "RUNS_DIR",
           "RUN_METRICS_COLUMNS", "RUN_METRICS_FILE", "WORST_PER_RUN", "composite_path", "grid_indices",
           "hole_distance", "worst_indices"]

RESULTS_FILE = "results.parquet"  # one row per (run, image): the identity columns and the per-image metrics
RUN_METRICS_FILE = "run_metrics.parquet"  # one row per run and set metric (FID, KID, dataset PSNR, unavailable)
RUNS_DIR = "outputs"  # <out>/outputs/<run id>/: the run's two tables and the composites the grids show
LOCK_FILE = ".lock"
HOLDER_FILE = ".lock.json"

# The columns of results.parquet before the per-image metric columns (one per metric of the suite).
IMAGE_COLUMNS = ("run_id", "suite", "model", "model_name", "model_config", "train_steps", "checkpoint", "level",
                 "dataset", "split", "mask_set", "seed", "size", "image", "key", "area_ratio")
# Per-image difficulty columns (after the metric columns): what the difficulty analysis groups by. Runs recorded
# before they existed lack them; the reports then leave those axes out.
DIFFICULTY_COLUMNS = ("components", "touches_border", "hole_distance", "shape", "label_name")
WORST_PER_RUN = 6  # a run also keeps the composites of its this-many worst images (lowest PSNR), for error grids
RUN_METRICS_COLUMNS = ("run_id", "model", "level", "metric", "value", "n_images", "comparable", "status", "reason")


def grid_indices(count: int, samples: int) -> list[int]:
    """The images shown in the report grids: ``samples`` indices spread evenly over the set."""
    return sorted({int(i) for i in np.linspace(0, count - 1, num=min(samples, count))})


def worst_indices(mse: np.ndarray, count: int = WORST_PER_RUN) -> list[int]:
    """The images of a run with the largest MSE (the lowest PSNR), worst first; ties keep the lower index."""
    order = np.argsort(-np.asarray(mse, np.float64), kind="stable")
    return [int(i) for i in order[:count]]


def hole_distance(masks: np.ndarray) -> np.ndarray:
    """Distance of each mask's hole centroid from the image centre, as a share of the half-diagonal (0 = centre).

    Args:
        masks: N x 1 x H x W (1 = hole).

    Returns:
        N values in [0, 1]; NaN for a mask without a hole.

    """
    masks = np.asarray(masks, np.float64)[:, 0]
    n, h, w = masks.shape
    ys, xs = np.arange(h) + 0.5, np.arange(w) + 0.5
    total = masks.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (masks.sum(axis=2) * ys).sum(axis=1) / total
        cx = (masks.sum(axis=1) * xs).sum(axis=1) / total
    return np.hypot(cy - h / 2, cx - w / 2) / np.hypot(h / 2, w / 2)


def composite_path(out: str | Path, run_id: str, index: int) -> Path:
    """Where the composite of image ``index`` of run ``run_id`` is saved (only the grid images are)."""
    return Path(out) / RUNS_DIR / run_id / f"{index:06d}.png"
