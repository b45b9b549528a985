"""The embedded sample dataset: square crops of the RGB photos that scikit-image ships (no network).

Splits are by source photo, so no photo appears in two splits. Each crop takes a random square window
(a quarter to two thirds of the photo's short side) and resizes it with Pillow's antialiased Lanczos filter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._registry import InpaintbenchError
from .shards import Rejected, Sample, write_dataset

# name -> (loader in skimage.data, license note, split). Only photos bundled in the wheel are used.
PHOTOS: dict[str, tuple[str, str, str]] = {
    "astronaut": ("astronaut", "public domain (NASA)", "train"),
    "coffee": ("coffee", "CC0 (Rachel Michetti)", "train"),
    "rocket": ("rocket", "public domain (SpaceX)", "train"),
    "hubble": ("hubble_deep_field", "public domain (NASA)", "train"),
    "retina": ("retina", "CC0 1.0 (Wikimedia Commons)", "train"),
    "ihc": ("immunohistochemistry", "no known copyright restrictions", "val"),
    "chelsea": ("chelsea", "CC0 (Stefan van der Walt)", "test"),
    "motorcycle": ("stereo_motorcycle", "no known copyright restrictions (Middlebury stereo)", "test"),
}
CROPS_PER_PHOTO = {"train": 128, "val": 96, "test": 64}


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, PHOTOS[name][0])()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity): keep the left view
        image = image[0]
    return np.ascontiguousarray(image[..., :3])


def sample_candidates(seed: int, crops_per_photo: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Plan the crops: split -> list of {photo, index, box}, deterministic for a seed."""
    candidates: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for label, (name, (_, _, split)) in enumerate(PHOTOS.items()):
        height, width = _load_photo(name).shape[:2]
        rng = np.random.default_rng([seed, label])
        short = min(height, width)
        for index in range(crops_per_photo[split]):
            side = int(rng.integers(short // 4, 2 * short // 3 + 1))
            top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
            candidates[split].append({"photo": name, "label": label, "index": index,
                                      "box": [left, top, left + side, top + side], "original_size": [width, height]})
    return candidates


def build_sample(out: str | Path = "datasets/sample", size: int = 64, seed: int = 0,
                 image_format: str = "png", crops_per_photo: dict[str, int] | None = None,
                 workers: int = 1) -> dict[str, Any]:
    """Build the sample dataset into ``out`` (resumable; complete shards are kept).

    Args:
        out: dataset folder.
        size: side of the square images in pixels.
        seed: seed of the crop windows.
        image_format: ``png`` (default: lossless ground truth) or ``jpg``.
        crops_per_photo: crops per photo for each split (default CROPS_PER_PHOTO).
        workers: decoding processes.

    Returns:
        The dataset.json content.

    """
    if not 16 <= size <= 512:
        raise InpaintbenchError(f"--size must be between 16 and 512, got {size}")
    crops = dict(CROPS_PER_PHOTO if crops_per_photo is None else crops_per_photo)
    photos: dict[str, np.ndarray] = {}

    def make(candidate: dict[str, Any]) -> Sample | Rejected:
        name = candidate["photo"]
        if name not in photos:
            photos[name] = _load_photo(name)
        crop = Image.fromarray(photos[name]).crop(tuple(candidate["box"]))
        image = np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=None))
        meta = {"label_name": name, "original_size": candidate["original_size"], "crop_box": candidate["box"],
                "license": PHOTOS[name][1], "attribution": f"scikit-image sample data: skimage.data.{PHOTOS[name][0]}",
                "url": f"skimage.data.{PHOTOS[name][0]}"}
        return Sample(key=f"sample-{name}_{candidate['index']:04d}", image=image, label=candidate["label"], meta=meta)

    return write_dataset(
        Path(out), "sample", sample_candidates(seed, crops), make,
        classes=list(PHOTOS),
        build_params={"source": "sample", "size": size, "seed": seed, "image_format": image_format,
                      "crops_per_photo": crops, "resize": "PIL Lanczos (antialiased)"},
        card={"title": f"inpaintbench sample dataset ({size}x{size})",
              "description": "Square crops of the photos bundled with scikit-image, split by source photo "
                             "(train: " + ", ".join(n for n, p in PHOTOS.items() if p[2] == "train")
                             + "; val: " + ", ".join(n for n, p in PHOTOS.items() if p[2] == "val")
                             + "; test: " + ", ".join(n for n, p in PHOTOS.items() if p[2] == "test")
                             + "). Labels are the source photo. Made for demos and tests, not for research "
                               "claims: it has eight photos."},
        image_format=image_format,
        samples_per_shard=256,
        workers=workers,
    )
