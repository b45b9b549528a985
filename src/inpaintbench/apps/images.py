"""Reading the user's files for the single-image commands: photos, masks and strokes, with one-line errors.

Conventions (what ``inpaintbench inpaint`` and ``replace`` accept):

* a photo is any image file Pillow reads (PNG, JPEG, WebP, TIFF...), or an H x W x 3 array (uint8, or float in
  [0, 1]); grey and RGBA files are converted to RGB; the EXIF orientation of phone photos is applied;
* a mask is an image file or an H x W array where **white (> 127, or True / non-zero) is the hole**, as the masks
  of EdgeConnect, IOPaint and this project's mask sets; an RGBA painting with a transparent background works too;
* strokes (``--edges``, ``--sketch``) are the minority colour of their file: white lines on black or black lines
  on white both work (strokes are sparse, so whichever colour covers less than half the picture is the stroke).

A mask or stroke file of another size than the photo is resized (nearest neighbour) with a warning when its aspect
ratio is the photo's (within 1%: a mask drawn on a scaled preview); any other size is an error.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._registry import InpaintbenchError
from ..datasets.shards import MAX_IMAGE_PIXELS, to_rgb

__all__ = ["IMAGE_SUFFIXES", "as_rgb", "as_binary", "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def _open(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise InpaintbenchError(f"{path} not found")
    try:
        with Image.open(path) as img:
            # the project's one size limit (the builders' and the metrics'), checked before the pixels are decoded
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise InpaintbenchError(f"{path} is refused: {img.width}x{img.height} pixels exceeds the "
                                        f"decompression-bomb limit of {MAX_IMAGE_PIXELS:,}")
            img.load()
            return ImageOps.exif_transpose(img)
    except Image.DecompressionBombError as err:
        raise InpaintbenchError(f"{path} is refused: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise InpaintbenchError(f"{path} is not an image file Pillow can read ({type(err).__name__})") from None


def as_rgb(image: Any, what: str = "image") -> np.ndarray:
    """A photo as an H x W x 3 array: uint8 from a file, a PIL image or a uint8 array; float arrays are kept.

    Args:
        image: a path, a PIL image, or an H x W x 3 (or H x W) array (uint8, or float in [0, 1]).
        what: the argument's name, for messages.

    Returns:
        H x W x 3 uint8, or the float array as given (H x W x 3).

    Raises:
        InpaintbenchError: a missing or unreadable file, or an array of another shape or range.

    """
    if isinstance(image, (str, Path)):
        image = _open(image)
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb(image)).copy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise InpaintbenchError(f"{what} must be H x W x 3 (RGB), got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InpaintbenchError(f"{what} is a float array: its values must be in [0, 1]")
        return array
    raise InpaintbenchError(f"{what} must be uint8 or float in [0, 1], got {array.dtype}")


def as_binary(source: Any, shape: tuple[int, int], what: str = "mask", minority: bool = False) -> np.ndarray:
    """A mask or stroke map as an H x W bool array of the photo's ``shape``.

    Args:
        source: a path, a PIL image or an array (H x W, or H x W x C: any channel above 127 / non-zero counts).
        shape: the photo's (height, width).
        what: the argument's name, for messages.
        minority: strokes: the True pixels are the minority colour (white on black or black on white); else
            white (> 127, True, non-zero) is True.

    Returns:
        H x W bool.

    Raises:
        InpaintbenchError: unreadable file, or a size whose aspect ratio differs from the photo's.

    """
    if isinstance(source, (str, Path)):
        source = _open(source)
    if isinstance(source, Image.Image):
        if source.mode in ("RGBA", "LA", "PA"):  # a painted layer: the alpha is what was painted
            alpha = np.asarray(source.getchannel("A"))
            values = np.asarray(source.convert("L")) if alpha.min() == 255 else alpha
        else:
            values = np.asarray(source.convert("L"))
        on = values > 127
    else:
        array = np.asarray(source)
        if array.ndim == 3:
            array = array.max(axis=2)
        if array.ndim != 2:
            raise InpaintbenchError(f"{what} must be H x W, got shape {np.asarray(source).shape}")
        on = array > (127 if array.dtype == np.uint8 else 0.5 if np.issubdtype(array.dtype, np.floating) else 0)
    if minority and on.mean() > 0.5:
        on = ~on
    if on.shape != tuple(shape):
        on = _fit(on, shape, what)
    return on


def _fit(mask: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    """Resize a mask of the photo's aspect ratio (nearest neighbour, with a warning); refuse any other size."""
    (h, w), (mh, mw) = shape, mask.shape
    if abs(mh / mw - h / w) > 0.01 * (h / w):
        raise InpaintbenchError(f"the {what} is {mw}x{mh} and the image {w}x{h}: they must have the same size (or "
                                "at least the same aspect ratio, for a mask drawn on a scaled preview)")
    warnings.warn(f"the {what} is {mw}x{mh} and the image {w}x{h}: resized to the image (nearest neighbour)",
                  stacklevel=3)
    resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)
    return np.asarray(resized) > 127


def write_image(array: np.ndarray, path: str | Path) -> Path:
    """Write an H x W x 3 (or H x W) uint8 array atomically (a temporary file, then renamed).

    Args:
        array: the pixels.
        path: the destination; its suffix picks the format (PNG keeps every pixel exactly).

    Returns:
        The path written.

    Raises:
        InpaintbenchError: for an unknown image suffix, or a folder in the file's place.

    """
    path = Path(path)
    if path.is_dir():
        raise InpaintbenchError(f"{path} is a folder: the output is an image file (a .png, for example)")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InpaintbenchError(f"{path}: the output needs an image suffix ({', '.join(IMAGE_SUFFIXES)})")
    if path.suffix.lower() in (".jpg", ".jpeg", ".webp"):
        warnings.warn(f"{path.name}: {path.suffix} re-encodes every pixel lossily; use .png to keep the known pixels "
                      "exact", stacklevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        Image.fromarray(array).save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
