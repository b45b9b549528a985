"""Mask shape families. Each draws H x W boolean masks (True = hole) inside a MaskSpec.

Steered families grow towards an area target: the generator draws a target area inside the spec's range
and a hole count inside its count range, then every family of the (possibly mixed) spec adds its shapes
until the canvas reaches its share of the target, capping each step so that it cannot overshoot the
range. The mask is then checked against the spec and, when it misses (merged holes, a missed location),
redrawn. Paper families (``lama``, ``deepfill``, ``lines``, in papers.py) draw their published algorithm as
it is and are redrawn until they fall inside the spec.

Sizes are fractions of the side (or pixels at a stated reference size, scaled), so a spec renders at any
resolution. Every family takes an explicit numpy Generator and nothing else random. The steered shapes are
drawn with Pillow at integer coordinates; the paper families draw with the library their official code uses.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .._registry import InpaintbenchError
from .spec import MASK_FAMILIES, MaskFamily, MaskSpec

MAX_TRIES = 500
# 8-connectivity: diagonal neighbours belong to the same hole.
_EIGHT = np.ones((3, 3), dtype=bool)


def count_holes(mask: np.ndarray) -> int:
    """Number of connected hole components (8-connectivity)."""
    return int(ndimage.label(mask, structure=_EIGHT)[1])


def touches_border(mask: np.ndarray) -> bool:
    """Whether any hole pixel lies on the image border."""
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def is_side_band(mask: np.ndarray) -> bool:
    """Whether the holes form a band along one whole side: that side's edge is all hole, the opposite none."""
    return any(edge.all() and not opposite.any() for edge, opposite in
               [(mask[0], mask[-1]), (mask[-1], mask[0]), (mask[:, 0], mask[:, -1]), (mask[:, -1], mask[:, 0])])


def satisfies(mask: np.ndarray, spec: MaskSpec) -> bool:
    """Check a mask against its spec: area ratio, hole count and location."""
    area = float(mask.mean())
    if not spec.area[0] <= area <= spec.area[1] or area == 0.0:
        return False
    # a range from 1 to half the pixels constrains nothing (a hole exists, and no more holes fit): skip labelling
    unconstrained = spec.holes[0] <= 1 and spec.holes[1] >= (mask.size + 1) // 2
    if not unconstrained and not spec.holes[0] <= count_holes(mask) <= spec.holes[1]:
        return False
    if spec.location == "interior":
        m = int(round(spec.margin * mask.shape[0]))
        if m and (mask[:m].any() or mask[-m:].any() or mask[:, :m].any() or mask[:, -m:].any()):
            return False
    elif spec.location == "border":
        return touches_border(mask)
    elif spec.location == "side":
        return is_side_band(mask)
    return True


class Canvas:
    """A square 8-bit drawing surface (255 = hole) that counts its hole pixels."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.image = Image.new("L", (size, size), 0)
        self.pen = ImageDraw.Draw(self.image)

    def area(self) -> int:
        """Hole pixels drawn so far."""
        return self.image.histogram()[255]

    def mask(self) -> np.ndarray:
        """The canvas as an H x W bool array."""
        return np.asarray(self.image) > 0

    def disc(self, x: float, y: float, width: float) -> None:
        """A filled disc of diameter ``width`` centred on (x, y)."""
        r = width / 2
        self.pen.ellipse([round(x - r), round(y - r), round(x + r), round(y + r)], fill=255)

    def stroke(self, x0: float, y0: float, x1: float, y1: float, width: float) -> None:
        """A line of ``width`` pixels with a round cap at its end (joints of a polyline are round)."""
        self.pen.line([(round(x0), round(y0)), (round(x1), round(y1))], fill=255, width=max(1, round(width)))
        self.disc(x1, y1, width)

    def restore(self, image: Image.Image) -> None:
        """Replace the surface (to undo a step)."""
        self.image = image
        self.pen = ImageDraw.Draw(self.image)


def generate(spec: MaskSpec, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Draw one mask that satisfies ``spec`` at ``size`` (default spec.size): H x W bool, True = hole."""
    spec = spec.with_size(size)
    for _ in range(MAX_TRIES):
        mask = _draw(spec, rng)
        if mask is not None and satisfies(mask, spec):
            return mask
    raise InpaintbenchError(f"could not draw a mask inside {spec} after {MAX_TRIES} tries; widen the spec")


def _draw(spec: MaskSpec, rng: np.random.Generator) -> np.ndarray | None:
    canvas = Canvas(spec.size)
    families = [MASK_FAMILIES.get(name) for name in spec.families]
    if len(families) == 1 and not families[0].steered:
        drawn = families[0].draw(canvas, spec, rng, 0, 0.0)  # a paper family returns its mask or draws on the canvas
        return drawn if isinstance(drawn, np.ndarray) else canvas.mask()
    target = float(rng.uniform(*spec.area)) * spec.size**2
    # one shape per intended hole, at least one per family; the area shares follow the shape counts
    shapes = max(int(rng.integers(spec.holes[0], spec.holes[1] + 1)), len(families))
    even = [1 / len(families)] * len(families)
    counts = np.ones(len(families), dtype=int) + rng.multinomial(shapes - len(families), even)
    shares = np.cumsum(rng.dirichlet(4.0 * counts)) * target
    for family, count, share in zip(families, counts, shares, strict=True):
        if family.draw(canvas, spec, rng, int(count), float(share)) is False:
            return None
    return canvas.mask()


def _limits(spec: MaskSpec, width: float = 0.0) -> tuple[float, float]:
    """The range of shape centres: inside the margin for ``interior``, else the whole image."""
    s = spec.size
    if spec.location == "interior":
        m = spec.margin * s + width / 2 + 1
        return m, s - 1 - m
    return 0.0, s - 1.0


def _free_point(canvas: Canvas, rng: np.random.Generator, lo: float, hi: float, on_border: bool,
                clearance: float) -> np.ndarray:
    """A random point far from existing holes, so that a new shape tends to start a new hole.

    Of eight random candidates, the one with the fewest hole pixels within ``clearance`` is taken
    (best-candidate sampling: steering instead of rejecting masks whose holes merged).
    """
    occupied = np.asarray(canvas.image)
    s, c = canvas.size, max(1, int(clearance))
    best, best_score = None, None
    for _ in range(8):
        if on_border:
            t, side = rng.uniform(0, s - 1), int(rng.integers(4))
            point = np.array([[t, 0.0], [t, s - 1.0], [0.0, t], [s - 1.0, t]][side])
        else:
            point = rng.uniform(lo, hi, size=2)
        x, y = int(point[0]), int(point[1])
        score = int(np.count_nonzero(occupied[max(y - c, 0):y + c + 1, max(x - c, 0):x + c + 1]))
        if best_score is None or score < best_score:
            best, best_score = point, score
        if score == 0:
            break
    return best


# ----------------------------------------------------------------------------------------------- steered


def _draw_center_box(canvas: Canvas, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> bool:
    s = spec.size
    # integer sides whose area lies in the range; one is picked uniformly
    sides = [k for k in range(1, s + 1) if spec.area[0] <= k * k / (s * s) <= spec.area[1]]
    if not sides:
        return False
    side = int(rng.choice(sides))
    top = (s - side) // 2
    canvas.pen.rectangle([top, top, top + side - 1, top + side - 1], fill=255)
    return True


def _draw_boxes(canvas: Canvas, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> bool:
    """Axis-aligned rectangles, apart from each other and from earlier holes by a gap of 2% of the side."""
    s = spec.size
    need = target - canvas.area()
    if need <= 0:
        return True
    lo, hi = (round(spec.margin * s), s - round(spec.margin * s)) if spec.location == "interior" else (0, s)
    max_side = min(hi - lo, round(spec.param("max_side", 1.0) * s))
    gap = max(1, round(0.02 * s))
    occupied = np.asarray(canvas.image).copy()
    for share in rng.dirichlet(np.full(count, 4.0)) * need:
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
        h = int(np.clip(round(math.sqrt(share / aspect)), 1, max_side))
        w = int(np.clip(round(share / h), 1, max_side))
        best, best_overlap = None, None  # best-candidate placement: the least overlap with earlier holes
        for _ in range(30):
            top, left = int(rng.integers(lo, hi - h + 1)), int(rng.integers(lo, hi - w + 1))
            overlap = np.count_nonzero(occupied[max(top - gap, 0):top + h + gap, max(left - gap, 0):left + w + gap])
            if best_overlap is None or overlap < best_overlap:
                best, best_overlap = (top, left), overlap
            if overlap == 0:
                break
        top, left = best
        occupied[top:top + h, left:left + w] = 255
        canvas.pen.rectangle([left, top, left + w - 1, top + h - 1], fill=255)
    return True


def _grow_strokes(canvas: Canvas, spec: MaskSpec, rng: np.random.Generator, count: int, target: float,
                  widths: tuple[float, float]) -> bool:
    """Free-form brush strokes in the manner of DeepFill v2, grown one segment at a time, round robin.

    DeepFill v2's geometry: turns of 2*pi/5 +- 2*pi/15 alternating in direction, segment lengths
    ~ N(r, r/2) clipped to [0, 2r] with r = diagonal / 8, round joints; widths as fractions of the side.
    A segment that would leave the image turns back; one that would overshoot the area range is shortened.
    """
    s = spec.size
    ceiling = spec.area[1] * s * s
    radius = math.hypot(s, s) / 8
    strokes = []
    for i in range(count):
        width = max(1.0, rng.uniform(*widths) * s)
        lo, hi = _limits(spec, width)
        if lo > hi:
            return False
        point = _free_point(canvas, rng, lo, hi, on_border=spec.location == "border" and i == 0,
                            clearance=2 * width)
        strokes.append({"point": (float(point[0]), float(point[1])), "width": width,
                        "angle": rng.uniform(0, 2 * math.pi), "lo": lo, "hi": hi})
        canvas.disc(*point, width)
    # `upper` bounds the area from above: the last count plus what the segments drawn since can add. The
    # canvas is only counted when that bound reaches the target or leaves too little room.
    upper = area = canvas.area()
    turn_lo, turn_hi = 2 * math.pi / 5 - 2 * math.pi / 15, 2 * math.pi / 5 + 2 * math.pi / 15
    for step in range(60 * count):
        if upper >= target:
            upper = area = canvas.area()
            if area >= target:
                break
        stroke = strokes[step % count]
        turn = rng.uniform(turn_lo, turn_hi)
        stroke["angle"] += turn if step % 2 else -turn
        length = min(max(rng.normal(radius, radius / 2), 0.0), 2 * radius)
        width = stroke["width"]
        cap = math.pi * width * width / 4 + 2 * width  # the round cap, plus a margin for rasterisation
        if ceiling - upper - cap <= width:
            upper = area = canvas.area()
        room = ceiling - upper - cap  # what a segment may add without overshooting the range
        if room <= width:
            break
        length = min(length, room / width)
        (x, y), lo, hi = stroke["point"], stroke["lo"], stroke["hi"]
        dx, dy = length * math.cos(stroke["angle"]), length * math.sin(stroke["angle"])
        if not (lo <= x + dx <= hi and lo <= y + dy <= hi):  # turn back instead of sliding along the edge
            stroke["angle"] += math.pi
            dx, dy = -dx, -dy
        end_x, end_y = min(max(x + dx, lo), hi), min(max(y + dy, lo), hi)
        canvas.stroke(x, y, end_x, end_y, width)
        upper += math.hypot(end_x - x, end_y - y) * (width + 2) + cap
        stroke["point"] = (end_x, end_y)
    return True


def _draw_strokes(canvas: Canvas, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> bool:
    return _grow_strokes(canvas, spec, rng, count, target, spec.param("width", (12 / 256, 40 / 256)))


def _draw_thick_strokes(canvas: Canvas, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> bool:
    return _grow_strokes(canvas, spec, rng, count, target, spec.param("thick_width", (40 / 256, 72 / 256)))


def _blob_polygon(rng: np.random.Generator, cx: float, cy: float, radius: float) -> np.ndarray:
    """A smooth star-shaped outline: the radius modulated by three random low harmonics."""
    theta = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    wobble = np.zeros_like(theta)
    for k in (2, 3, 4):
        wobble += rng.uniform(0, 0.5 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * (1 + wobble) / math.sqrt(1 + sum(0.5 * (0.25 / k) ** 2 for k in (2, 3, 4)))
    return np.stack([cx + r * np.cos(theta), cy + r * np.sin(theta)], axis=1)


def _draw_blobs(canvas: Canvas, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> bool:
    """Irregular smooth blobs; their common scale is adjusted (three passes) until they add the area needed."""
    need = target - canvas.area()
    if need <= 0:
        return True
    shares = rng.dirichlet(np.full(count, 4.0)) * need
    lo, hi = _limits(spec, 0.0)
    base, base_area = canvas.image.copy(), canvas.area()
    centres = []
    for i, share in enumerate(shares):
        r = math.sqrt(share / math.pi)
        if spec.location == "interior":
            lo_i, hi_i = lo + r * 1.3, hi - r * 1.3
            if lo_i > hi_i:
                return False
        else:
            lo_i, hi_i = lo, hi
        point = _free_point(canvas, rng, lo_i, hi_i, on_border=spec.location == "border" and i == 0, clearance=1.5 * r)
        centres.append((point, r))
        canvas.disc(*point, 2 * r)  # reserve the place, so the next blobs keep away (redrawn below)
    outlines = [_blob_polygon(rng, c[0], c[1], r) for c, r in centres]
    centre_xy = [np.array(c) for c, _ in centres]
    scale = 1.0
    for _ in range(3):
        canvas.restore(base.copy())
        for outline, centre in zip(outlines, centre_xy, strict=True):
            points = centre + (outline - centre) * scale
            canvas.pen.polygon([(round(x), round(y)) for x, y in points], fill=255)
        added = canvas.area() - base_area
        if added <= 0 or abs(added - need) < 0.02 * need:
            break
        scale *= math.sqrt(need / added)
    return True


def _draw_side(canvas: Canvas, spec: MaskSpec, rng: np.random.Generator, count: int, target: float) -> bool:
    """Outpainting: a band along one side (LaMa's outpainting masks pad one or more sides)."""
    s = spec.size
    depth = int(np.clip(round(target / s), 1, s - 1))
    side = int(rng.integers(4))
    box = [[0, 0, s - 1, depth - 1], [0, s - depth, s - 1, s - 1], [0, 0, depth - 1, s - 1],
           [s - depth, 0, s - 1, s - 1]][side]
    canvas.pen.rectangle(box, fill=255)
    return True


def _boxes_max_area(spec: MaskSpec) -> float:
    room = 1 - 2 * spec.margin if spec.location == "interior" else 1.0
    return min(room**2, spec.holes[1] * min(spec.param("max_side", 1.0), room) ** 2)


for _family in [
    MaskFamily("center-box", _draw_center_box, description="a square centred on the image"),
    MaskFamily("boxes", _draw_boxes, max_area=_boxes_max_area,
               description="axis-aligned rectangles (aspect 1:2 to 2:1), kept apart; `max_side` caps their side"),
    MaskFamily("strokes", _draw_strokes,
               description="free-form brush strokes, DeepFill v2 geometry, width 12-40 px at 256 (`width`)"),
    MaskFamily("thick-strokes", _draw_thick_strokes,
               description="the same strokes 40-72 px wide at 256 (`thick_width`)"),
    MaskFamily("blobs", _draw_blobs, description="irregular smooth blobs (radius modulated by low harmonics)"),
    MaskFamily("side", _draw_side, description="outpainting: a band along one side"),
]:
    MASK_FAMILIES.register(_family.name, _family)

from . import papers  # noqa: E402,F401  (registers the paper families: lama, deepfill, lines)
