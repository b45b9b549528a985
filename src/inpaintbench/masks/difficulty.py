"""What makes a hole hard, measured on the masks themselves: area, depth and the context left to copy from.

The difficulty ladder is graded on these three axes together (see levels.py and masks/README.md):

- **area**: the share of the image that is hole.
- **depth**: the mean, over hole pixels, of the distance to the nearest known pixel, as a fraction of the side.
  How far a method that propagates from the hole's edge (diffusion, fast marching, a network's receptive field)
  must reach: thin strokes are shallow however large their area, a large blob is deep. Pixels outside the image
  are not known, so a hole on the border is deeper than the same hole inside.
- **context**: the mean, over hole pixels, of the share of known pixels in the square window of a quarter of the
  side centred on the pixel (outside the image counts as nothing to copy). What is left nearby to copy from or
  to be guided by: it falls with the area, with compact holes and at the border.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CONTEXT_WINDOW = 0.25  # side of the context window, as a fraction of the image side
AXES = {
    "area": "hole share of the image (higher is harder)",
    "depth": "mean distance from a hole pixel to the nearest known pixel, fraction of the side (higher is harder)",
    "context": f"mean share of known pixels in the {CONTEXT_WINDOW:g}-side window around a hole pixel, outside the "
               "image counting as unknown (lower is harder)",
}


def hole_depth(mask: np.ndarray) -> float:
    """Mean distance from a hole pixel to the nearest known pixel, as a fraction of the side (NaN without holes)."""
    hole = np.asarray(mask) > 0
    if not hole.any():
        return float("nan")
    return float(ndimage.distance_transform_edt(hole)[hole].mean() / hole.shape[-1])


def hole_context(mask: np.ndarray, window: float = CONTEXT_WINDOW) -> float:
    """Mean share of known pixels in the window (``window`` x the side, odd) around each hole pixel (NaN without holes).

    Pixels outside the image count as unknown: a hole on the border has less to copy from.
    """
    hole = np.asarray(mask) > 0
    if not hole.any():
        return float("nan")
    side = max(3, round(window * hole.shape[-1])) | 1
    known = ndimage.uniform_filter((~hole).astype(np.float64), size=side, mode="constant", cval=0.0)
    return float(known[hole].mean())


def difficulty(masks: np.ndarray) -> dict[str, np.ndarray]:
    """The three graded axes of each mask of N x H x W (or N x 1 x H x W) masks, 1 = hole: arrays of N values."""
    masks = np.asarray(masks)
    masks = masks.reshape(len(masks), *masks.shape[-2:])
    return {"area": masks.reshape(len(masks), -1).astype(bool).mean(axis=1),
            "depth": np.array([hole_depth(m) for m in masks]),
            "context": np.array([hole_context(m) for m in masks])}
