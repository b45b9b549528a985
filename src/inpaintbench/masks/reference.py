"""Measured mask distributions of the papers' own generators: what the paper presets must reproduce.

Each reference was measured by running the official code (advimman/lama at 786f593,
JiahuiYu/generative_inpainting at 3a53243), numpy's global seed 1 for LaMa and 0 for DeepFill, with the
procedure of ``benchmarks/mask_fidelity.py``: LaMa's evaluation sets as ``bin/gen_mask_dataset.py`` makes them
(``MixedMaskGenerator``, 5 variants per image, ``propose_random_square_crop``, masks over 50% dropped, one
kept), LaMa's training masks as one ``MixedMaskGenerator`` call each, DeepFill v2's as ``brush_stroke_mask``.
Hole area is the fraction of the mask; components are 8-connected holes. An earlier 2,000-mask measurement
of LaMa's sets with seed 0 (means: thin 0.2912, medium 0.2376, thick 0.2630) agrees within its sampling noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .generators import count_holes

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class AreaDistribution:
    """Hole-area statistics of a set of masks.

    Attributes:
        mean: mean hole-area fraction.
        std: its standard deviation (population).
        quantiles: the hole-area fraction at QUANTILES (5%, 25%, 50%, 75%, 95%).
        components: mean number of connected holes (8-connectivity).
        count: masks measured.
        source: how the masks were made.
        size: side of the masks in pixels.

    """

    mean: float
    std: float
    quantiles: tuple[float, ...]
    components: float
    count: int
    source: str = ""
    size: int = 256


def measure(masks: np.ndarray, source: str = "") -> AreaDistribution:
    """The AreaDistribution of N x H x W masks (nonzero = hole)."""
    masks = np.asarray(masks) > 0
    areas = masks.reshape(len(masks), -1).mean(axis=1)
    return AreaDistribution(mean=float(areas.mean()), std=float(areas.std()),
                            quantiles=tuple(float(q) for q in np.quantile(areas, QUANTILES)),
                            components=float(np.mean([count_holes(m) for m in masks])), count=len(masks),
                            source=source, size=int(masks.shape[-1]))


_LAMA_EVAL = "LaMa's gen_mask_dataset: 5 variants, square crop, <= 50% kept, one picked"
_LAMA_PHOTO = "LaMa's gen_mask_dataset on a 256x341 image (a 4:3 photo at short side 256), then its square crop"
_LAMA_TRAIN = "LaMa's MixedMaskGenerator, one call per mask (training)"

# preset -> the official generator's distribution
REFERENCES: dict[str, AreaDistribution] = {
    "lama-thin-256": AreaDistribution(0.2880, 0.1282, (0.0736, 0.1815, 0.2987, 0.3996, 0.4736), 6.37, 20000,
                                      f"{_LAMA_EVAL}; configs/data_gen/random_thin_256.yaml"),
    "lama-medium-256": AreaDistribution(0.2377, 0.1318, (0.0190, 0.1353, 0.2621, 0.3375, 0.4290), 2.58, 20000,
                                        f"{_LAMA_EVAL}; configs/data_gen/random_medium_256.yaml"),
    "lama-thick-256": AreaDistribution(0.2662, 0.1302, (0.0569, 0.1612, 0.2642, 0.3740, 0.4738), 1.41, 20000,
                                       f"{_LAMA_EVAL}; configs/data_gen/random_thick_256.yaml"),
    "lama-thin-256-4x3": AreaDistribution(0.2417, 0.1121, (0.0591, 0.1485, 0.2471, 0.3345, 0.4126), 7.35, 20000,
                                          f"{_LAMA_PHOTO}; random_thin_256.yaml"),
    "lama-medium-256-4x3": AreaDistribution(0.2062, 0.1223, (0.0162, 0.0959, 0.2188, 0.2980, 0.3985), 2.58, 20000,
                                            f"{_LAMA_PHOTO}; random_medium_256.yaml"),
    "lama-thick-256-4x3": AreaDistribution(0.2603, 0.1337, (0.0444, 0.1516, 0.2620, 0.3718, 0.4716), 1.53, 20000,
                                           f"{_LAMA_PHOTO}; random_thick_256.yaml"),
    "lama-thin-512": AreaDistribution(0.2823, 0.1305, (0.0649, 0.1751, 0.2951, 0.3943, 0.4737), 6.93, 4000,
                                      f"{_LAMA_EVAL}; configs/data_gen/random_thin_512.yaml", size=512),
    "lama-medium-512": AreaDistribution(0.2724, 0.1387, (0.0398, 0.1512, 0.2869, 0.3903, 0.4742), 2.70, 4000,
                                        f"{_LAMA_EVAL}; configs/data_gen/random_medium_512.yaml", size=512),
    "lama-thick-512": AreaDistribution(0.2673, 0.1314, (0.0466, 0.1650, 0.2717, 0.3739, 0.4742), 1.44, 4000,
                                       f"{_LAMA_EVAL}; configs/data_gen/random_thick_512.yaml", size=512),
    "lama-train-256": AreaDistribution(0.3521, 0.2021, (0.0694, 0.1989, 0.3192, 0.4808, 0.7330), 1.34, 20000,
                                       f"{_LAMA_TRAIN}; configs/training/data/abl-04-256-mh-dist.yaml"),
    "lama-train-thin-256": AreaDistribution(0.2239, 0.1575, (0.0373, 0.0841, 0.1793, 0.3542, 0.5068), 1.95, 20000,
                                            f"{_LAMA_TRAIN}; configs/training/data/abl-02-thin-bb.yaml"),
    "deepfillv2-ff": AreaDistribution(0.1513, 0.0799, (0.0367, 0.0874, 0.1443, 0.2052, 0.2940), 1.49, 20000,
                                      "DeepFill v2's brush_stroke_mask at 256x256 (inpaint_ops.py)"),
}
