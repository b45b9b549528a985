"""The difficulty ladder (L1-L6), paper presets and single-axis sweeps, in one registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._registry import InpaintbenchError, Registry
from .generators import generate
from .spec import MaskSpec

if TYPE_CHECKING:
    import torch

MASK_PRESETS: Registry[MaskSpec] = Registry("mask level or preset", listing="inpaintbench masks levels")

# The ladder (version 2, issue 22): every level is at least as hard as the one before on each of three axes,
# graded together and measured in masks/difficulty.py: the hole area (a share of the image), the depth (the mean
# distance from a hole pixel to the nearest known pixel) and the context (the share of known pixels in the
# quarter-side window around a hole pixel: what is left to copy from). The area ranges do not overlap; depth rises
# with the stroke width and then with compact shapes (strokes, then boxes and blobs, then one or two large blobs
# on the border), and the context falls with both and with the border. Resolution is a separate axis: `size` is
# only the default. benchmarks/ladder.py validates the grading with each reference method's error per level.
LADDER = {
    "L1": MaskSpec("strokes", area=(0.05, 0.12), holes=(1, 3), location="interior",
                   params={"width": (0.03, 0.05)}, version=2),
    "L2": MaskSpec("strokes", area=(0.12, 0.20), holes=(1, 3), location="interior",
                   params={"width": (0.06, 0.10)}, version=2),
    "L3": MaskSpec("strokes+boxes", area=(0.20, 0.30), holes=(2, 4), location="anywhere",
                   params={"width": (0.10, 0.16)}, version=2),
    "L4": MaskSpec("boxes+blobs", area=(0.30, 0.40), holes=(2, 4), location="anywhere", version=2),
    "L5": MaskSpec("blobs", area=(0.40, 0.50), holes=(1, 3), location="anywhere", version=2),
    "L6": MaskSpec("blobs", area=(0.50, 0.60), holes=(1, 2), location="border", version=2),
}
# The ladder before issue 22 (version 1), kept so that results made with it stay readable: its area rose at every
# step but its depth did not (L3's thin strokes are shallower than L1's centred box), so it was harder only for
# mean fill; biharmonic's PSNR rose from L1 to L3. Reachable as L1-v1 ... L6-v1 (the same masks as then).
LADDER_V1 = {
    "L1-v1": MaskSpec("center-box", area=(0.10, 0.20), holes=(1, 1), location="center"),
    "L2-v1": MaskSpec("boxes", area=(0.10, 0.25), holes=(1, 2), location="interior"),
    "L3-v1": MaskSpec("strokes", area=(0.15, 0.30), holes=(1, 3), location="anywhere",
                      params={"width": (8 / 256, 32 / 256)}),
    "L4-v1": MaskSpec("strokes+boxes", area=(0.25, 0.40), holes=(2, 5), location="anywhere",
                      params={"width": (28 / 256, 64 / 256)}),
    "L5-v1": MaskSpec("boxes+thick-strokes", area=(0.35, 0.50), holes=(3, 8), location="anywhere"),
    "L6-v1": MaskSpec("blobs+thick-strokes", area=(0.45, 0.60), holes=(4, 10), location="border"),
}
LADDERS = {2: list(LADDER), 1: list(LADDER_V1)}  # drawing version -> level names, easiest first

# LaMa's fixed evaluation sets (configs/data_gen/random_*.yaml): irregular = (max_angle, max_len, max_width,
# min_times, max_times) and box = (margin, min_size, max_size, min_times, max_times) in pixels at ref_size,
# box_proba against irregular weight 1; masks over 50% of the image are dropped (max_tamper_area 0.5). Version 2
# draws LaMa's own footprint (cv2.line, integer points, its stroke and box counts): version 1 drew 3.8 points
# less hole area on thin and medium (see masks/README.md).
_LAMA_EVAL = {
    "lama-thin-256": {"ref_size": 256, "irregular": (4, 40, 10, 4, 50), "box_proba": 0.0},
    "lama-medium-256": {"ref_size": 256, "irregular": (4, 100, 50, 4, 5), "box_proba": 0.3, "box": (0, 10, 50, 1, 5)},
    "lama-thick-256": {"ref_size": 256, "irregular": (4, 200, 100, 1, 5), "box_proba": 0.3, "box": (10, 30, 150, 1, 3)},
    "lama-thin-512": {"ref_size": 512, "irregular": (4, 100, 20, 4, 70), "box_proba": 0.0},
    "lama-medium-512": {"ref_size": 512, "irregular": (4, 200, 100, 4, 10), "box_proba": 0.3,
                        "box": (0, 30, 150, 1, 5)},
    "lama-thick-512": {"ref_size": 512, "irregular": (4, 450, 250, 1, 5), "box_proba": 0.3, "box": (10, 30, 300, 1, 4)},
}
# LaMa's evaluation protocol on photos: the masks are drawn on the image resized to short side 256, then the
# square crop is taken (4:3 photos here; other shapes: a MaskSpec with params aspect = width / height).
_LAMA_PHOTO = {f"{name}-4x3": {**_LAMA_EVAL[name], "aspect": 4 / 3}
               for name in ("lama-thin-256", "lama-medium-256", "lama-thick-256")}
# LaMa's training masks (configs/training/data/*.yaml, mask_gen_kwargs): no area cut, no crop. abl-04-256-mh-dist
# is Big-LaMa's and LaMa-Fourier's; abl-02-thin-bb is the "DeepFill v2-like" thin variant.
_LAMA_TRAIN = {
    "lama-train-256": {"ref_size": 256, "irregular": (4, 200, 100, 1, 5), "box_proba": 1.0, "box": (10, 30, 150, 1, 4)},
    "lama-train-thin-256": {"ref_size": 256, "irregular": (4, 80, 40, 4, 12), "box_proba": 1.0,
                            "box": (0, 30, 128, 1, 1)},
}
# NVIDIA's irregular test bins (PConv): hole ratio (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6].
NVIDIA_BINS = [(0.01, 0.10), (0.10, 0.20), (0.20, 0.30), (0.30, 0.40), (0.40, 0.50), (0.50, 0.60)]
_FIXED_AREA = (0.20, 0.30)  # the total hole area of the count, shape and location sweeps
_NO_CONTACT = 2 / 256  # margin of the "no border contact" bins
UNBOUNDED = 2**31 - 1  # a hole-count maximum that constrains nothing

PRESETS = {
    **{name: MaskSpec("lama", area=(0.0, 0.5), holes=(1, UNBOUNDED), size=params["ref_size"], params=params,
                      version=2)
       for name, params in _LAMA_EVAL.items()},
    **{name: MaskSpec("lama", area=(0.0, 0.5), holes=(1, UNBOUNDED), size=256, params=params)
       for name, params in _LAMA_PHOTO.items()},
    **{name: MaskSpec("lama", area=(0.0, 1.0), holes=(1, UNBOUNDED), size=256, params=params)
       for name, params in _LAMA_TRAIN.items()},
    # DeepFill v2 free-form strokes as published (1-3 strokes, no area control). Version 2 makes the official
    # Pillow calls (one polyline, vertex discs of width // 2, int widths and points, no flips).
    "deepfillv2-ff": MaskSpec("deepfill", area=(0.0, 1.0), holes=(1, 3), version=2),
    # Context Encoder / GLCIC test masks: a centred square of half the side (a quarter of the image)
    "center-box": MaskSpec("center-box", area=(0.25, 0.25), holes=(1, 1), location="center"),
    # Synthetic irregular masks in NVIDIA's bins; `inpaintbench masks import` brings in the real test set.
    **{f"nvidia-bin{k + 1}": MaskSpec("blobs+strokes", area=b, holes=(1, 12)) for k, b in enumerate(NVIDIA_BINS)},
}

SWEEPS = {
    # area: NVIDIA's six bins, with and without border contact
    **{f"area-{round(lo * 100):02d}-{round(hi * 100):02d}-{kind}":
       MaskSpec("blobs+strokes", area=(lo, hi), holes=(1, 12), location=kind,
                margin=_NO_CONTACT if kind == "interior" else 0.0625)
       for lo, hi in NVIDIA_BINS for kind in ("border", "interior")},
    # hole count at a fixed total area
    "holes-1": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 1)),
    "holes-2-3": MaskSpec("blobs", area=_FIXED_AREA, holes=(2, 3)),
    "holes-4-8": MaskSpec("blobs", area=_FIXED_AREA, holes=(4, 8)),
    # shape at a fixed area and count
    "shape-box": MaskSpec("boxes", area=_FIXED_AREA, holes=(1, 3)),
    "shape-stroke": MaskSpec("strokes", area=_FIXED_AREA, holes=(1, 3)),
    "shape-blob": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 3)),
    # location at a fixed area
    "loc-center": MaskSpec("center-box", area=_FIXED_AREA, holes=(1, 1), location="center"),
    "loc-interior": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 3), location="interior"),
    "loc-border": MaskSpec("blobs", area=_FIXED_AREA, holes=(1, 3), location="border"),
    "loc-side": MaskSpec("side", area=_FIXED_AREA, holes=(1, 1), location="side"),
    # NTIRE-style extra
    "lines-every-4": MaskSpec("lines", area=(0.25, 0.25), holes=(1, UNBOUNDED), params={"every": 4}),
}
for _name, _spec in {**LADDER, **LADDER_V1, **PRESETS, **SWEEPS}.items():
    MASK_PRESETS.register(_name, _spec)


def list_levels(version: int | None = None) -> list[str]:
    """Names of the ladder levels, easiest first: the current ladder, or that of an earlier drawing ``version``.

    Example:
        >>> list_levels(), list_levels(1)[0]
        (['L1', 'L2', 'L3', 'L4', 'L5', 'L6'], 'L1-v1')

    """
    if version is None:
        return list(LADDER)
    if version not in LADDERS:
        raise InpaintbenchError(f"no ladder of version {version}; known: {', '.join(map(str, sorted(LADDERS)))}")
    return list(LADDERS[version])


def ladder_steps(levels: list[str]) -> list[tuple[str, str]]:
    """The (easier, harder) pairs of consecutive ladder levels among ``levels``, in ladder order, any version.

    Presets, sweeps and mask-set folders have no order and give no pair; a ladder with a level missing pairs the
    levels on either side of the gap.
    """
    steps = []
    for names in LADDERS.values():
        present = [name for name in names if name in levels]
        steps += list(zip(present, present[1:], strict=False))
    return steps


def list_presets() -> list[str]:
    """Names of the paper presets."""
    return list(PRESETS)


def list_sweeps() -> list[str]:
    """Names of the single-axis sweeps (area, hole count, shape, location) and extras."""
    return list(SWEEPS)


def resolve_spec(level_or_spec: str | MaskSpec) -> MaskSpec:
    """A MaskSpec from a level or preset name, or the spec itself."""
    if isinstance(level_or_spec, MaskSpec):
        return level_or_spec
    if not isinstance(level_or_spec, str):
        raise InpaintbenchError(f"expected a level name or a MaskSpec, got {type(level_or_spec).__name__}")
    return MASK_PRESETS.get(level_or_spec)


def mask_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for mask ``index`` of a seeded set: independent of order, workers and batch size."""
    return np.random.default_rng([int(seed), int(index)])


def make_masks(level_or_spec: str | MaskSpec, n: int, size: int | None = None, seed: int = 0,
               start: int = 0) -> torch.Tensor:
    """Generate ``n`` masks as a torch uint8 tensor N x 1 x H x W with 1 = hole: what metrics and models take.

    Mask ``i`` depends only on (spec, size, seed, start + i), so any slice of a set can be drawn alone. Models
    and ``ib.metrics`` take the tensor as it is (``mask.float()`` where a float is wanted); ``.numpy()`` gives
    the array without a copy.

    Example:
        >>> masks = make_masks("L1", 2, size=64)
        >>> masks.shape, masks.dtype
        (torch.Size([2, 1, 64, 64]), torch.uint8)

    """
    import torch  # here, so that drawing and freezing mask sets do not load torch

    return torch.from_numpy(draw_masks(level_or_spec, n, size=size, seed=seed, start=start))


def draw_masks(level_or_spec: str | MaskSpec, n: int, size: int | None = None, seed: int = 0,
               start: int = 0) -> np.ndarray:
    """The masks of :func:`make_masks` as a numpy uint8 array N x 1 x H x W (1 = hole), for the mask writers."""
    spec = resolve_spec(level_or_spec).with_size(size)
    if n < 0:
        raise InpaintbenchError(f"mask count must be >= 0, got {n}")
    out = np.zeros((n, 1, spec.size, spec.size), dtype=np.uint8)
    for i in range(n):
        out[i, 0] = generate(spec, mask_rng(seed, start + i))
    return out
