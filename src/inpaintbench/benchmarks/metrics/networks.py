"""The network metrics as public functions on tensors or image folders: LPIPS, FID, KID, P-IDS / U-IDS.

They run the code the harness runs (:class:`.perceptual.LPIPS`, :func:`.distribution.fid_kid`,
:func:`.distribution.inception_features` and :func:`.distribution.paired_ids`) on the same inputs: float
images in [0, 1] are rounded to uint8 exactly as the harness rounds its composites before the set metrics.
A missing network file raises :class:`WeightsUnavailable`, one line with the ``inpaintbench weights import`` hint.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..._registry import InpaintbenchError
from ...datasets.shards import IMAGE_ERRORS, MAX_IMAGE_PIXELS, image_error, to_rgb

__all__ = ["IMAGE_SUFFIXES", "fid", "kid", "load_images", "lpips", "p_ids_u_ids", "to_uint8"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
Images = torch.Tensor | str | Path


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] as uint8 (rounded, as the harness saves its composites); uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    return (images.float().clamp(0, 1) * 255).round().byte()


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_images(source: Images, names: list[str] | None = None) -> tuple[torch.Tensor, list[str]]:
    """Images as uint8 N x 3 x H x W with their names: a tensor (names are indices) or a folder of image files.

    A folder's files are read in name order (RGB); with ``names``, exactly those files are read, so two folders
    pair by file name. Every image of a folder must have the same size.
    """
    from PIL import Image

    if isinstance(source, torch.Tensor):
        if source.ndim != 4 or source.shape[1] != 3:
            raise InpaintbenchError(f"expected images N x 3 x H x W, got a tensor of shape {tuple(source.shape)}")
        return to_uint8(source.detach().cpu()), [str(i) for i in range(len(source))]
    folder = Path(source)
    if not folder.is_dir():
        raise InpaintbenchError(f"{folder} is neither a tensor nor a folder of images")
    files = _image_files(folder)
    if names is not None:
        have = {p.name for p in files}
        missing = [n for n in names if n not in have]
        if missing or len(have) != len(names):
            extra = sorted(have - set(names))
            raise InpaintbenchError(f"{folder} does not hold the same file names as the other folder "
                                    f"(missing: {missing[:3]}, extra: {extra[:3]})")
        files = [folder / n for n in names]
    if not files:
        raise InpaintbenchError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    arrays = []
    for path in files:
        try:
            with Image.open(path) as image:
                # the datasets' own pixel limit, below Pillow's: a metric folder is a user's files too
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ValueError(f"{image.width}x{image.height} pixels exceeds the decompression-bomb limit")
                arrays.append(np.asarray(to_rgb(image)))
        except IMAGE_ERRORS as err:
            raise InpaintbenchError(f"{path} is refused: {image_error(err)}") from None
    sizes = {a.shape for a in arrays}
    if len(sizes) > 1:
        raise InpaintbenchError(f"{folder} holds images of different sizes {sorted(sizes)[:3]}; resize them first")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(), [p.name for p in files]


def _pair(pred: Images, target: Images) -> tuple[torch.Tensor, torch.Tensor]:
    """Two image sets as uint8 tensors, folders paired by file name; same count and size required."""
    a, names = load_images(pred)
    b, _ = load_images(target, names=names if not isinstance(pred, torch.Tensor) and
                       not isinstance(target, torch.Tensor) else None)
    if a.shape != b.shape:
        raise InpaintbenchError(f"the two image sets differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b


@lru_cache(maxsize=4)
def _lpips_model(net: str, weights_dir: str | None, verify: bool):
    from .perceptual import LPIPS

    return LPIPS(net, weights_dir, verify)


def lpips(pred: Images, target: Images, net: str = "alex", weights_dir: str | Path | None = None,
          verify: bool = True) -> torch.Tensor:
    """Per-image LPIPS v0.1 (the harness's ``lpips`` / ``lpips_vgg`` columns) of pred against target.

    Args:
        pred: float images in [0, 1] (N x 3 x H x W), uint8 images, or a folder of image files.
        target: the same for the ground truth (two folders pair by file name).
        net: ``alex`` (the ``lpips`` column) or ``vgg`` (``lpips_vgg``).
        weights_dir: where the trunk's torchvision file is looked for (default: the torch hub cache).
        verify: check the file's checksum (False only for tests with random networks).

    Returns:
        N distances (lower is more similar).

    Raises:
        WeightsUnavailable: the trunk file is missing; the message says how to import it.

    Example:
        >>> ib.metrics.lpips(pred, target)  # doctest: +SKIP

    """
    if isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor) and pred.is_floating_point() \
            and target.is_floating_point():
        if pred.shape != target.shape:
            raise InpaintbenchError(f"pred and target differ in shape: {tuple(pred.shape)} and {tuple(target.shape)}")
        a, b = pred.float(), target.float()  # the harness computes LPIPS on the float composites
    else:
        a, b = (x.float() / 255 for x in _pair(pred, target))
    model = _lpips_model(net, None if weights_dir is None else str(weights_dir), verify)
    return model(a, b)


def _fid_kid(pred: Images, real: Images, weights_dir: str | Path | None, verify: bool, **options) -> dict:
    from .distribution import fid_kid

    fake, reals = load_images(pred)[0], load_images(real)[0]
    return fid_kid(fake, reals, weights_dir, verify, **options)


def fid(pred: Images, real: Images, weights_dir: str | Path | None = None, verify: bool = True) -> float:
    """FID of ``pred`` against ``real`` (torch-fidelity inception-v3-compat, 2048 features), as the harness runs it.

    Args:
        pred: inpainted images (float in [0, 1], uint8, or a folder of image files).
        real: the real images (the same kinds; the two sets may differ in count).
        weights_dir: where the Inception file is looked for (default: the torch hub cache).
        verify: check the file's checksum.

    Raises:
        WeightsUnavailable: the Inception file is missing; the message says how to import it.

    Example:
        >>> ib.metrics.fid("outputs/", "ground_truth/")  # doctest: +SKIP

    """
    return _fid_kid(pred, real, weights_dir, verify)["fid"]


def kid(pred: Images, real: Images, weights_dir: str | Path | None = None, verify: bool = True,
        subset_size: int = 1000, subsets: int = 100) -> tuple[float, float]:
    """KID of ``pred`` against ``real``: mean and standard deviation over ``subsets`` subsets, as the harness runs it.

    The subset size is never larger than either set; the deviation is NaN when a subset is a whole set (every
    subset is then the same images in another order). Arguments and errors as :func:`fid`.
    """
    values = _fid_kid(pred, real, weights_dir, verify, kid_subset_size=subset_size, kid_subsets=subsets)
    return values["kid"], values["kid_std"]


def p_ids_u_ids(pred: Images, real: Images, weights_dir: str | Path | None = None,
                verify: bool = True) -> dict[str, float]:
    """P-IDS and U-IDS (CoModGAN) of paired images: ``pred[i]`` inpaints ``real[i]`` (folders pair by file name).

    Returns:
        ``{"p_ids": ..., "u_ids": ...}``.

    Raises:
        WeightsUnavailable: the Inception file (or scikit-learn, the optional extra ``ids``) is missing.

    """
    from .distribution import inception_features, paired_ids

    fake, reals = _pair(pred, real)
    return paired_ids(inception_features(fake, weights_dir, verify), inception_features(reals, weights_dir, verify))
