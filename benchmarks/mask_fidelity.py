"""Mask fidelity: inpaintbench's paper presets against the official generators, run from their own checkouts.

Two checks, both against the official code itself (nothing of it is copied here: the script imports it from
the checkouts you pass, with stand-ins for the modules the mask code does not use):

1. Same random stream, same masks: the official generator and inpaintbench's drawer read one numpy
   ``RandomState`` each, seeded alike (inpaintbench's drawers call ``integers`` where the official code calls
   ``randint``); every mask must be byte-identical. LaMa: ``MixedMaskGenerator`` with each config's
   parameters (plus ``propose_random_square_crop`` on a 4:3 canvas); DeepFill v2: ``brush_stroke_mask``.
2. Distributions: LaMa's evaluation pipeline (``bin/gen_mask_dataset.py``: 5 variants per image, square crop,
   masks over 50% dropped, one kept) or training generator, and DeepFill's generator, against inpaintbench's
   presets drawn with ``draw_masks`` (seed 0): hole-area mean, std, quantiles, two-sample KS, components.

    python benchmarks/mask_fidelity.py --lama LAMA_CHECKOUT --deepfill DEEPFILL_CHECKOUT [--count 2000] [--out FILE]

The reference table of ``inpaintbench.masks.reference`` was measured by the same procedure, with 20,000 masks.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
from _table import emit
from PIL import Image, ImageDraw
from scipy import stats

from inpaintbench.masks import count_holes, draw_masks, resolve_spec
from inpaintbench.masks.papers import draw_deepfill, draw_lama

# inpaintbench preset -> (LaMa mask_gen kwargs, canvas (height, width), evaluation pipeline?)
LAMA = {
    "lama-thin-256": ({"irregular_proba": 1, "irregular_kwargs": {"min_times": 4, "max_times": 50, "max_width": 10,
                                                                  "max_angle": 4, "max_len": 40},
                       "box_proba": 0, "segm_proba": 0, "squares_proba": 0}, (256, 256), True),
    "lama-medium-256": ({"irregular_proba": 1, "irregular_kwargs": {"min_times": 4, "max_times": 5, "max_width": 50,
                                                                    "max_angle": 4, "max_len": 100},
                         "box_proba": 0.3, "box_kwargs": {"margin": 0, "bbox_min_size": 10, "bbox_max_size": 50,
                                                          "max_times": 5, "min_times": 1},
                         "segm_proba": 0, "squares_proba": 0}, (256, 256), True),
    "lama-thick-256": ({"irregular_proba": 1, "irregular_kwargs": {"min_times": 1, "max_times": 5, "max_width": 100,
                                                                   "max_angle": 4, "max_len": 200},
                        "box_proba": 0.3, "box_kwargs": {"margin": 10, "bbox_min_size": 30, "bbox_max_size": 150,
                                                         "max_times": 3, "min_times": 1},
                        "segm_proba": 0, "squares_proba": 0}, (256, 256), True),
    "lama-train-256": ({"irregular_proba": 1, "irregular_kwargs": {"max_angle": 4, "max_len": 200, "max_width": 100,
                                                                   "max_times": 5, "min_times": 1},
                        "box_proba": 1, "box_kwargs": {"margin": 10, "bbox_min_size": 30, "bbox_max_size": 150,
                                                       "max_times": 4, "min_times": 1},
                        "segm_proba": 0}, (256, 256), False),
    "lama-train-thin-256": ({"irregular_proba": 1, "irregular_kwargs": {"max_angle": 4, "max_len": 80,
                                                                        "max_width": 40, "max_times": 12,
                                                                        "min_times": 4},
                             "box_proba": 1, "box_kwargs": {"margin": 0, "bbox_min_size": 30, "bbox_max_size": 128,
                                                            "max_times": 1, "min_times": 1},
                             "segm_proba": 0}, (256, 256), False),
}
for _name in ("lama-thin-256", "lama-medium-256", "lama-thick-256"):
    LAMA[f"{_name}-4x3"] = (LAMA[_name][0], (256, 341), True)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class SharedStream:
    """A legacy RandomState under the method names inpaintbench's drawers call."""

    def __init__(self, seed: int) -> None:
        self.state = np.random.RandomState(seed)

    def integers(self, *args):  # noqa: D102
        return self.state.randint(*args)

    def uniform(self, *args, **kwargs):  # noqa: D102
        return self.state.uniform(*args, **kwargs)

    def normal(self, *args, **kwargs):  # noqa: D102
        return self.state.normal(*args, **kwargs)

    def choice(self, *args, **kwargs):  # noqa: D102
        return self.state.choice(*args, **kwargs)


def _function_from(path: Path, name: str, namespace: dict) -> types.FunctionType:
    """A top-level function of a source file, compiled alone (its module's imports are not needed)."""
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def load_lama(root: Path) -> tuple[type, types.FunctionType]:
    """LaMa's MixedMaskGenerator and propose_random_square_crop, from a checkout of advimman/lama."""
    crop = _function_from(root / "saicinpainting/evaluation/masks/mask.py", "propose_random_square_crop", {"np": np})
    stand_ins = {"saicinpainting": types.ModuleType("saicinpainting"),
                 "saicinpainting.evaluation": types.ModuleType("saicinpainting.evaluation"),
                 "saicinpainting.evaluation.masks": types.ModuleType("saicinpainting.evaluation.masks"),
                 "saicinpainting.evaluation.masks.mask": types.ModuleType("saicinpainting.evaluation.masks.mask"),
                 "saicinpainting.utils": types.ModuleType("saicinpainting.utils")}
    stand_ins["saicinpainting.evaluation.masks.mask"].SegmentationMask = None  # segmentation masks are not used
    stand_ins["saicinpainting.utils"].LinearRamp = None  # no config here ramps its masks
    sys.modules.update(stand_ins)
    spec = importlib.util.spec_from_file_location("lama_masks", root / "saicinpainting/training/data/masks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MixedMaskGenerator, crop


def load_deepfill(root: Path) -> types.FunctionType:
    """DeepFill v2's generate_mask(H, W) from brush_stroke_mask, from a checkout of JiahuiYu/generative_inpainting."""
    tree = ast.parse((root / "inpaint_ops.py").read_text())
    outer = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "brush_stroke_mask")
    body = [s for s in outer.body if isinstance(s, (ast.Assign, ast.FunctionDef))]  # constants + generate_mask
    namespace = {"math": math, "np": np, "Image": Image, "ImageDraw": ImageDraw}
    exec(compile(ast.Module(body=body, type_ignores=[]), "inpaint_ops.py", "exec"), namespace)
    return namespace["generate_mask"]


def lama_official(generator: object, crop: types.FunctionType, shape: tuple[int, int]) -> np.ndarray:
    """One official LaMa draw on a canvas of ``shape``, square-cropped when it is not square."""
    mask = generator(np.zeros((3, *shape), np.uint8))[0]
    if shape[0] != shape[1]:
        left, top, right, bottom = crop(mask, min_overlap=1)
        mask = mask[top:bottom, left:right]
    return mask > 0.5


def lama_evaluation_set(generator: object, crop: types.FunctionType, shape: tuple[int, int], count: int,
                        seed: int) -> np.ndarray:
    """``count`` masks as LaMa's gen_mask_dataset keeps them: 5 variants per image, crop, <= 50%, pick one."""
    np.random.seed(seed)
    kept = []
    while len(kept) < count:
        variants = []
        for _ in range(5):
            mask = generator(np.zeros((3, *shape), np.uint8))[0]
            left, top, right, bottom = crop(mask, min_overlap=1)
            mask = mask[top:bottom, left:right]
            if mask.mean() <= 0.5:
                variants.append(mask > 0.5)
        for i in np.random.choice(len(variants), size=min(len(variants), 1), replace=False):
            kept.append(variants[i])
    return np.stack(kept)


def summary(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hole-area fractions and component counts of N x H x W masks."""
    return masks.reshape(len(masks), -1).mean(axis=1), np.array([count_holes(m) for m in masks])


def main() -> None:
    """Run both checks and print (and optionally write) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lama", type=Path, required=True, help="checkout of advimman/lama")
    parser.add_argument("--deepfill", type=Path, required=True, help="checkout of JiahuiYu/generative_inpainting")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--stream", type=int, default=500, help="masks per shared-stream check")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    mixed, crop = load_lama(args.lama)
    brush = load_deepfill(args.deepfill)

    stream_rows = []
    for name, (kwargs, shape, _) in LAMA.items():
        generator, ours, params = mixed(**kwargs), SharedStream(7), dict(resolve_spec(name).params)
        np.random.seed(7)  # the official code draws from numpy's global stream
        same = sum(np.array_equal(lama_official(generator, crop, shape), draw_lama(ours, 256, params) > 0)
                   for _ in range(args.stream))
        stream_rows.append([name, f"{shape[0]}x{shape[1]}", f"{same}/{args.stream}"])
    np.random.seed(7)
    ours = SharedStream(7)
    same = sum(np.array_equal(brush(256, 256)[0, :, :, 0] > 0, draw_deepfill(ours, 256) > 0)
               for _ in range(args.stream))
    stream_rows.append(["deepfillv2-ff", "256x256", f"{same}/{args.stream}"])

    rows = []
    for name, (kwargs, shape, evaluation) in LAMA.items():
        if evaluation:
            reference = lama_evaluation_set(mixed(**kwargs), crop, shape, args.count, seed=0)
        else:
            np.random.seed(0)
            generator = mixed(**kwargs)
            reference = np.stack([lama_official(generator, crop, shape) for _ in range(args.count)])
        rows += _compare(name, reference, args.count)
    np.random.seed(0)
    rows += _compare("deepfillv2-ff", np.stack([brush(256, 256)[0, :, :, 0] > 0 for _ in range(args.count)]),
                     args.count)
    headers = ["preset", "masks", "mean", "std", *[f"q{round(q * 100)}" for q in QUANTILES], "components", "KS"]
    text = emit("Same random stream: masks byte-identical to the official generator's", ["preset", "canvas",
                                                                                       "identical"],
                stream_rows, None)
    critical = 1.36 * math.sqrt(2 / args.count)  # two-sample KS at 5% for two samples of this size
    text += "\n" + emit(f"Distributions at 256 ({args.count} masks each, seed 0; KS: two-sample statistic on the "
                        f"hole area, {critical:.3f} being its 5% critical value at this count)", headers, rows, None)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


def _compare(name: str, reference: np.ndarray, count: int) -> list[list[str]]:
    ours = draw_masks(name, count, size=256, seed=0)[:, 0].astype(bool)
    (ref_area, ref_holes), (our_area, our_holes) = summary(reference), summary(ours)
    ks = stats.ks_2samp(ref_area, our_area).statistic
    out = []
    for label, area, holes in ((f"{name} (official)", ref_area, ref_holes), (f"{name} (inpaintbench)", our_area,
                                                                           our_holes)):
        out.append([label, str(len(area)), f"{area.mean():.4f}", f"{area.std():.4f}",
                    *[f"{q:.4f}" for q in np.quantile(area, QUANTILES)], f"{holes.mean():.2f}",
                    f"{ks:.3f}" if label.endswith("(inpaintbench)") else ""])
    return out


if __name__ == "__main__":
    main()
