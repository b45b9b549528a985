"""Mask shape generators. Each draws one H x W boolean mask (True = hole) inside a MaskSpec.

Generation steers towards the spec: a target area is drawn inside the spec's range and shapes are grown
until they reach it (undoing a step that overshoots), then the mask is checked and, rarely, redrawn.
Sizes are fractions of the side, so a spec renders at any resolution. Every generator takes an explicit
numpy Generator and nothing else random.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .._registry import InpaintbenchError
from .spec import MaskSpec

MAX_TRIES = 200
# 8-connectivity: diagonal neighbours belong to the same hole.
_EIGHT = np.ones((3, 3), dtype=bool)


def count_holes(mask: np.ndarray) -> int:
    """Number of connected hole components (8-connectivity)."""
    return int(ndimage.label(mask, structure=_EIGHT)[1])


def touches_border(mask: np.ndarray) -> bool:
    """Whether any hole pixel lies on the image border."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def satisfies(mask: np.ndarray, spec: MaskSpec) -> bool:
    """Check a mask against its spec: area ratio, hole count and location."""
    size = mask.shape[0]
    area = float(mask.mean())
    if not spec.area[0] <= area <= spec.area[1]:
        return False
    if not spec.holes[0] <= count_holes(mask) <= spec.holes[1]:
        return False
    if spec.location == "interior":
        m = int(round(spec.margin * size))
        if m and (mask[:m].any() or mask[-m:].any() or mask[:, :m].any() or mask[:, -m:].any()):
            return False
    if spec.location == "border":
        return touches_border(mask)
    return True


def generate(spec: MaskSpec, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Draw one mask that satisfies ``spec`` at ``size`` (default spec.size): H x W bool, True = hole."""
    spec = spec.with_size(size)
    draw = _FAMILY_DRAWERS[spec.family]
    for _ in range(MAX_TRIES):
        mask = draw(spec, rng)
        if mask is not None and satisfies(mask, spec):
            return mask
    raise InpaintbenchError(f"could not draw a mask inside {spec} after {MAX_TRIES} tries; widen the spec")


def _target_area(spec: MaskSpec, rng: np.random.Generator) -> float:
    return float(rng.uniform(*spec.area))


def _draw_center_box(spec: MaskSpec, rng: np.random.Generator) -> np.ndarray | None:
    s = spec.size
    # integer sides whose area lies in the range; pick one uniformly so the area is uniform-ish.
    sides = [k for k in range(1, s + 1) if spec.area[0] <= k * k / (s * s) <= spec.area[1]]
    if not sides:
        return None
    side = int(rng.choice(sides))
    top = (s - side) // 2
    mask = np.zeros((s, s), dtype=bool)
    mask[top:top + side, top:top + side] = True
    return mask


def _draw_boxes(spec: MaskSpec, rng: np.random.Generator) -> np.ndarray | None:
    s = spec.size
    count = int(rng.integers(spec.holes[0], spec.holes[1] + 1))
    shares = rng.dirichlet(np.full(count, 4.0)) * _target_area(spec, rng) * s * s
    margin = int(round(spec.margin * s)) if spec.location == "interior" else 0
    lo, hi = margin, s - margin
    mask = np.zeros((s, s), dtype=bool)
    taken = np.zeros((s, s), dtype=bool)  # boxes grown by a gap: keeps them apart as separate holes
    gap = max(1, round(0.02 * s))
    for share in shares:
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
        h = max(1, min(hi - lo, round(math.sqrt(share / aspect))))
        w = max(1, min(hi - lo, round(share / h)))
        for _ in range(50):
            top, left = int(rng.integers(lo, hi - h + 1)), int(rng.integers(lo, hi - w + 1))
            if not taken[top:top + h, left:left + w].any():
                break
        else:
            return None
        mask[top:top + h, left:left + w] = True
        taken[max(top - gap, 0):top + h + gap, max(left - gap, 0):left + w + gap] = True
    if spec.location == "border" and not touches_border(mask):
        return None
    return mask


def _draw_strokes(spec: MaskSpec, rng: np.random.Generator) -> np.ndarray | None:
    """Free-form brush strokes in the manner of DeepFill v2, grown until the target area is reached.

    DeepFill v2 at 256 px: vertices 4-12 per stroke, mean angle 2*pi/5 +- 2*pi/15, brush width 12-40 px,
    segment length ~ N(r, r/2) clipped to [0, 2r] with r = diagonal / 8. Here widths and lengths are the
    same fractions of the side; strokes grow one segment at a time, round robin, until the area target.
    """
    s = spec.size
    target = _target_area(spec, rng) * s * s
    count = int(rng.integers(spec.holes[0], spec.holes[1] + 1))
    radius = math.hypot(s, s) / 8
    margin = spec.margin * s if spec.location == "interior" else 0.0
    image = Image.new("L", (s, s), 0)
    pen = ImageDraw.Draw(image)
    strokes = []
    for _ in range(count):
        width = max(1.0, rng.uniform(12 / 256, 40 / 256) * s)
        lo, hi = margin + width / 2, s - 1 - margin - width / 2
        if lo > hi:
            return None
        if spec.location == "border" and not strokes:
            start = _point_on_border(rng, s)
        else:
            start = rng.uniform(lo, hi, size=2)
        angle = rng.uniform(0, 2 * math.pi)
        strokes.append({"point": start, "width": width, "angle": angle, "lo": lo, "hi": hi})
        _dot(pen, start, width)
    area = int(np.count_nonzero(np.asarray(image)))
    for step in range(12 * count * 4):
        if area >= target:
            break
        stroke = strokes[step % count]
        # turn by the DeepFill mean angle, alternating direction, with its spread
        turn = rng.uniform(2 * math.pi / 5 - 2 * math.pi / 15, 2 * math.pi / 5 + 2 * math.pi / 15)
        stroke["angle"] += turn if step % 2 else -turn
        length = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
        lo, hi = (stroke["lo"], stroke["hi"]) if margin else (0.0, s - 1.0)
        for _ in range(4):  # shorten the segment until it does not overshoot the range
            end = stroke["point"] + length * np.array([math.cos(stroke["angle"]), math.sin(stroke["angle"])])
            if ((end < lo) | (end > hi)).any():
                # turn back into the image rather than slide along its edge
                stroke["angle"] += math.pi
                end = stroke["point"] + length * np.array([math.cos(stroke["angle"]), math.sin(stroke["angle"])])
            end = np.clip(end, lo, hi)
            trial = image.copy()
            trial_pen = ImageDraw.Draw(trial)
            trial_pen.line([tuple(stroke["point"]), tuple(end)], fill=255, width=max(1, round(stroke["width"])))
            _dot(trial_pen, end, stroke["width"])
            trial_area = int(np.count_nonzero(np.asarray(trial)))
            if trial_area <= spec.area[1] * s * s:
                image, pen, area = trial, trial_pen, trial_area
                stroke["point"] = end
                break
            length /= 2
        else:
            break
    mask = np.asarray(image) > 0
    return mask


def _dot(pen: ImageDraw.ImageDraw, point: np.ndarray, width: float) -> None:
    # A disc at every joint, of the line's width, so strokes have round joints (DeepFill v2 issue #62).
    r = width / 2
    x, y = float(point[0]), float(point[1])
    pen.ellipse([x - r, y - r, x + r, y + r], fill=255)


def _point_on_border(rng: np.random.Generator, s: int) -> np.ndarray:
    t = rng.uniform(0, s - 1)
    side = int(rng.integers(4))
    return np.array([[t, 0.0], [t, s - 1.0], [0.0, t], [s - 1.0, t]][side])


_FAMILY_DRAWERS = {"center-box": _draw_center_box, "boxes": _draw_boxes, "strokes": _draw_strokes}
