"""Paper mask generators, drawn as the papers' own code draws them: LaMa, DeepFill v2, NTIRE lines.

These families are not steered to an area: they draw the published algorithm and ``generate`` redraws until
the mask falls inside the spec (LaMa's evaluation sets keep masks of at most 50% of the image).

LaMa (advimman/lama, ``saicinpainting/training/data/masks.py`` and ``bin/gen_mask_dataset.py``) draws with
OpenCV: ``cv2.line(mask, p0, p1, 1, thickness)`` is a stroke ``thickness + 1`` px wide for an even thickness
and ``thickness + 2`` for an odd one, with round caps at both ends, between integer points. That footprint is
what sets LaMa's hole areas (a Pillow line of the same width covers 1.2-1.47x less on these strokes), so the
LaMa family draws with ``cv2.line`` itself: the same call on the same points gives the same pixels.

DeepFill v2 (JiahuiYu/generative_inpainting, ``inpaint_ops.py: brush_stroke_mask``) draws with Pillow, so its
family makes the same Pillow calls on the same integer points.

Both take their random numbers in the order of the official code, through the methods that numpy's legacy
``RandomState`` shares with ``Generator`` under the names used here (``integers`` for ``randint``), so a
shared random stream gives byte-identical masks (``benchmarks/mask_fidelity.py`` checks this against the
official code).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .spec import MASK_FAMILIES, MaskFamily, MaskSpec

LAMA_TWO_PI = 2 * 3.1415926  # LaMa mirrors the stroke angle with this constant, not with 2 * math.pi
HOLE = 255


# ------------------------------------------------------------------------------------------------------ LaMa


def lama_strokes(rng: Any, mask: np.ndarray, max_angle: int, max_len: int, max_width: int, min_times: int,
                 max_times: int, scale: float = 1.0) -> None:
    """LaMa's irregular strokes (``make_random_irregular_mask`` behind ``RandomIrregularMaskGenerator``) on ``mask``.

    The generator passes ``max_times + 1`` to a ``randint(min_times, max_times + 1)``, so the stroke count is
    uniform on [min_times, max_times + 1]. Each stroke starts at a random pixel and draws 1-5 segments: angle
    0.01 + randint(max_angle) radians (mirrored on even strokes), length 10 + randint(max_len), thickness
    5 + randint(max_width); end points are truncated to int and clipped to [0, width] x [0, height].
    ``scale`` multiplies lengths and thicknesses (1 at the parameters' own resolution).
    """
    import cv2

    height, width = mask.shape
    for i in range(int(rng.integers(min_times, max_times + 2))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(max_angle))
            if i % 2 == 0:
                angle = LAMA_TWO_PI - angle
            length = 10 + int(rng.integers(max_len))
            thickness = 5 + int(rng.integers(max_width))
            if scale != 1.0:
                length, thickness = length * scale, max(1, round(thickness * scale))
            end_x = min(max(int(x + length * np.sin(angle)), 0), width)
            end_y = min(max(int(y + length * np.cos(angle)), 0), height)
            cv2.line(mask, (x, y), (end_x, end_y), HOLE, thickness)
            x, y = end_x, end_y


def lama_boxes(rng: Any, mask: np.ndarray, margin: int, min_size: int, max_size: int, min_times: int,
               max_times: int) -> None:
    """LaMa's rectangles (``make_random_rectangle_mask`` behind ``RandomRectangleMaskGenerator``) on ``mask``.

    The generator passes ``max_size + 1`` as the exclusive bound of the sides, so they are uniform on
    [min_size, max_size] (less when the image minus the margins is smaller); 1 box at least, ``max_times`` at most.
    """
    height, width = mask.shape
    bound = min(max_size + 1, height - 2 * margin, width - 2 * margin)
    for _ in range(int(rng.integers(min_times, max_times + 1))):
        box_w, box_h = int(rng.integers(min_size, bound)), int(rng.integers(min_size, bound))
        x = int(rng.integers(margin, width - margin - box_w + 1))
        y = int(rng.integers(margin, height - margin - box_h + 1))
        mask[y:y + box_h, x:x + box_w] = HOLE


def lama_square_crop(rng: Any, mask: np.ndarray) -> np.ndarray:
    """LaMa's evaluation crop (``propose_random_square_crop``, ``crop_min_overlap: 1``) of a non-square mask.

    The square of the short side is placed along the long side at random, within a range set by the last hole
    pixel along that side.
    """
    height, width = mask.shape
    if height == width:
        return mask
    side, length = min(height, width), max(height, width)
    last = int(np.nonzero(mask.any(axis=0 if height < width else 1))[0].max())
    low = max(0, min(length - side - 1, last - side))
    high = max(low + 1, min(length - side, last))
    start = int(rng.integers(low, high))
    return mask[:, start:start + side] if height < width else mask[start:start + side]


def lama_canvas(size: int, aspect: float) -> tuple[int, int]:
    """(height, width) of an image of aspect ``aspect`` (width / height) resized to short side ``size``."""
    return (size, round(size * aspect)) if aspect >= 1 else (round(size / aspect), size)


def draw_lama(rng: Any, size: int, params: dict[str, Any]) -> np.ndarray:
    """One LaMa mask (uint8, 255 = hole): the mixed generator's pick, on a photo of ``aspect``, square-cropped.

    ``params``: ``irregular`` = (max_angle, max_len, max_width, min_times, max_times) and ``box`` = (margin,
    min_size, max_size, min_times, max_times), pixels at ``ref_size``, scaled to ``size``; ``box_proba``
    against the irregular kind's weight 1 (LaMa's ``MixedMaskGenerator`` picks the kind with float32
    probabilities); ``aspect`` = width / height of the photo the mask is drawn on before LaMa's square crop
    (1: a square image, no crop).
    """
    f = size / params.get("ref_size", 256)
    height, width = lama_canvas(size, float(params.get("aspect", 1.0)))
    mask = np.zeros((height, width), np.uint8)
    box_proba = float(params.get("box_proba", 0.0))
    weights = np.array([1.0, box_proba] if box_proba > 0 else [1.0], dtype=np.float32)
    if int(rng.choice(len(weights), p=weights / weights.sum())) == 1:
        margin, min_size, max_size, min_times, max_times = params["box"]
        lama_boxes(rng, mask, round(margin * f), round(min_size * f), round(max_size * f), min_times, max_times)
    else:
        lama_strokes(rng, mask, *params["irregular"], scale=f)
    return lama_square_crop(rng, mask)


def _draw_lama(canvas: Any, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> np.ndarray:
    return draw_lama(rng, spec.size, dict(spec.params)) > 0


# ----------------------------------------------------------------------------------------------- DeepFill v2


def draw_deepfill(rng: Any, size: int) -> np.ndarray:
    """DeepFill v2's ``brush_stroke_mask`` on a ``size`` square (uint8, 255 = hole).

    1-3 strokes of 4-11 segments; per stroke the turn lies in 2*pi/5 -+ U(0, 2*pi/15), mirrored on even
    segments; segment length ~ N(r, r // 2) clipped to [0, 2r], r = diagonal / 8; vertices truncated to int and
    clipped to [0, size]; one Pillow polyline of width int(U(12, 40)) px (scaled from 256) and a disc of that
    width (rounded down to even) at every vertex. The official code also draws two flip decisions but discards
    the flipped images (``transpose`` returns a copy), so the decisions are drawn and no flip is applied.
    """
    f = size / 256
    radius = math.sqrt(size * size + size * size) / 8
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    image = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):
        vertices = int(rng.integers(4, 12))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = [2 * math.pi - rng.uniform(angle_min, angle_max) if i % 2 == 0 else rng.uniform(angle_min, angle_max)
                  for i in range(vertices)]
        points = [(int(rng.integers(0, size)), int(rng.integers(0, size)))]
        for angle in angles:
            r = min(max(rng.normal(loc=radius, scale=radius // 2), 0), 2 * radius)
            x = min(max(points[-1][0] + r * math.cos(angle), 0), size)
            y = min(max(points[-1][1] + r * math.sin(angle), 0), size)
            points.append((int(x), int(y)))
        width = int(rng.uniform(12, 40) * f)
        pen.line(points, fill=HOLE, width=width)
        half = width // 2
        for x, y in points:
            pen.ellipse((x - half, y - half, x + half, y + half), fill=HOLE)
    rng.normal(), rng.normal()  # the official flip decisions, whose flips are discarded
    return np.asarray(image)


def _draw_deepfill(canvas: Any, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> np.ndarray:
    return draw_deepfill(rng, spec.size) > 0


# ------------------------------------------------------------------------------------------------------ NTIRE


def _draw_lines(canvas: Any, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> None:
    """Every N-th pixel row (or column) missing, with a random offset (the NTIRE "every N lines" masks)."""
    s, every = spec.size, int(spec.param("every", 2))
    offset = int(rng.integers(every))
    columns = bool(rng.integers(2))
    for k in range(offset, s, every):
        canvas.pen.line([(k, 0), (k, s - 1)] if columns else [(0, k), (s - 1, k)], fill=255, width=1)


for _family in [
    MaskFamily("lama", _draw_lama, steered=False,
               description="LaMa's irregular strokes (drawn with cv2.line, as LaMa does) or boxes, published "
                           "parameters; `aspect` draws on a photo of that shape and square-crops it as LaMa's "
                           "evaluation does"),
    MaskFamily("deepfill", _draw_deepfill, steered=False,
               description="DeepFill v2's brush_stroke_mask (Pillow polyline and vertex discs, as published)"),
    MaskFamily("lines", _draw_lines, steered=False, max_area=lambda spec: 1 / spec.param("every", 2),
               description="every N-th pixel row or column (`every`)"),
]:
    MASK_FAMILIES.register(_family.name, _family)
