"""A folder of images (your own photos, or an evaluation set as distributed) into a one-split shard dataset.

The papers' evaluation sets that have no builder of their own come as plain image folders: CelebA-HQ at 256
(``data256x256/``, with LaMa's ``val_shuffled.flist`` naming its 2,000 evaluation images), Places365's
high-resolution ``val_large/`` (LaMa and AOT-GAN evaluate at 512). ``list_file`` picks and orders the images
(one relative path or file name per line, as LaMa's ``.flist`` files); without it every image under the folder is
taken in sorted path order. Each image is centre-cropped to a square and resized to ``size`` with antialiased
Lanczos (upscaled when smaller, as LaMa's evaluation does), then stored losslessly as PNG by default.

LaMa crops its 512 evaluation images around each mask instead of at the centre: the areas of the masks are the
same, but the pixels near the image border differ. Files that do not decode are rejected with the reason; a listed
path that is not inside the folder is matched by its file name among the folder's images, never opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._registry import InpaintbenchError
from .shards import IMAGE_ERRORS, MAX_IMAGE_PIXELS, Rejected, Sample, image_error, to_rgb, write_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _listed(source: Path, list_file: Path) -> list[str]:
    """The relative paths a list file names, each resolved inside ``source`` (bare names searched once)."""
    try:
        lines = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    except OSError as err:
        raise InpaintbenchError(f"cannot read the list file {list_file}: {err.strerror or err}") from None
    by_name: dict[str, str] | None = None
    paths = []
    root = source.resolve()
    for line in lines:
        candidate = (source / line).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            paths.append(str(candidate.relative_to(root)))
            continue
        # LaMa's flists hold bare file names or paths under another root: match the file name among the
        # folder's images (a path outside the folder is never opened)
        if by_name is None:
            by_name = {p.name: str(p.relative_to(source)) for p in _images(source)}
        name = Path(line).name
        if name not in by_name:
            raise InpaintbenchError(f"{list_file} names {line!r}, which is not in {source}")
        paths.append(by_name[name])
    return paths


def _images(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def build_folder(out: str | Path, source_dir: str | Path, size: int = 256, list_file: str | Path | None = None,
                 split: str = "test", image_format: str = "png", limit: int | None = None,
                 workers: int = 1) -> dict[str, Any]:
    """Build a one-split dataset from the images of a folder (resumable; complete shards are kept).

    Args:
        out: dataset folder.
        source_dir: the folder of images (searched recursively).
        size: side of the square images.
        list_file: a file naming the images to take, in order (LaMa's ``.flist``); default: all, sorted.
        split: the split they form (``test`` by default: evaluation sets).
        image_format: ``png`` (default, lossless ground truth) or ``jpg``.
        limit: keep only the first N images.
        workers: decoding processes.

    Returns:
        The dataset.json content.

    Raises:
        InpaintbenchError: a missing folder or list, a listed image that is not there, no images at all.

    """
    source = Path(source_dir).expanduser()
    if not source.is_dir():
        raise InpaintbenchError(f"--source {source} is not a folder")
    if not 16 <= size <= 2048:
        raise InpaintbenchError(f"--size must be between 16 and 2048, got {size}")
    paths = (_listed(source, Path(list_file)) if list_file else [str(p.relative_to(source)) for p in _images(source)])
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise InpaintbenchError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {source}")

    def make(candidate: tuple[int, str]) -> Sample | Rejected:
        index, relative = candidate
        key = f"folder-{index:07d}"
        meta = {"label_name": "image", "file": relative, "license": "as distributed with the source",
                "attribution": relative, "url": ""}
        try:
            with Image.open(source / relative) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    return Rejected(key, f"decompression bomb guard: {img.width}x{img.height}", meta)
                rgb = to_rgb(img)
        except IMAGE_ERRORS as err:
            return Rejected(key, image_error(err), meta)
        side = min(rgb.size)
        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
        square = rgb.crop((left, top, left + side, top + side))
        image = np.asarray(square.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=None))
        meta.update(original_size=[rgb.width, rgb.height], crop_box=[left, top, left + side, top + side])
        return Sample(key=key, image=image, label=0, meta=meta)

    return write_dataset(
        Path(out), "folder", {split: list(enumerate(paths))}, make,
        classes=["image"],
        build_params={"source": "folder", "folder": source.name, "list_file": Path(list_file).name if list_file
                      else None, "images": len(paths), "size": size, "split": split, "image_format": image_format,
                      "resize": "centre square crop, PIL Lanczos (antialiased)"},
        card={"title": f"{source.name} ({size}x{size}, {len(paths)} images)",
              "description": f"The images of the folder `{source.name}`"
                             + (f" listed in `{Path(list_file).name}`" if list_file else "")
                             + ", centre-cropped to a square and resized with Lanczos, as one split "
                               f"`{split}`. Licenses are those of the source."},
        image_format=image_format,
        samples_per_shard=1000,
        workers=workers,
    )
