"""Classical methods that need no training: mean fill, biharmonic, OpenCV's Telea and Navier-Stokes, PatchMatch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._registry import InpaintbenchError
from .base import InpaintModel, register_model


@dataclass(frozen=True)
class MeanFillConfig:
    """Mean fill has no options; the config exists so every model has one."""


class MeanFill(InpaintModel):
    """Fill every hole with the mean colour of the image's known pixels (0.5 grey if none is known)."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per image and channel, the mean of the known pixels in every hole pixel."""
        known = 1 - mask
        count = known.sum(dim=(2, 3), keepdim=True)
        mean = (image * known).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1)
        mean = torch.where(count > 0, mean, torch.full_like(mean, 0.5))
        return image * known + mean * mask


@dataclass(frozen=True)
class BiharmonicConfig:
    """Options of skimage.restoration.inpaint_biharmonic."""

    split_into_regions: bool = False  # solve each hole separately (faster on many small holes)


class Biharmonic(InpaintModel):
    """Biharmonic inpainting (Damelin and Hoang 2018) through scikit-image, image by image on the CPU.

    An image with no known pixel has no boundary values to extend: it is filled with 0.5 grey, as mean fill does.
    """

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Solve the biharmonic equation in the holes of each image (float64, on the CPU)."""
        from skimage.restoration import inpaint_biharmonic

        images = image.detach().cpu().double().permute(0, 2, 3, 1).numpy()
        holes = mask.detach().cpu().numpy()[:, 0] > 0.5
        out = np.stack([
            inpaint_biharmonic(img, hole, channel_axis=-1, split_into_regions=self.config.split_into_regions)
            if hole.any() and not hole.all() else np.where(hole[..., None], 0.5, img)
            for img, hole in zip(images, holes, strict=True)
        ])
        return torch.from_numpy(out).permute(0, 3, 1, 2).clamp(0, 1).to(image.device, image.dtype)


@dataclass(frozen=True)
class OpenCVConfig:
    """Options of ``cv2.inpaint``."""

    radius: float = 3.0  # inpaintRadius: the neighbourhood (px) that fills each point (OpenCV's examples use 3)


class OpenCVInpaint(InpaintModel):
    """OpenCV's ``cv2.inpaint`` on each image (CPU, 8-bit: the input is rounded to uint8, the output read back).

    Subclasses pick the method: :class:`Telea` (fast marching, Telea 2004) or :class:`NavierStokes`
    (Bertalmio, Bertozzi and Sapiro 2001). Both fill each colour channel from the hole's boundary inwards.
    """

    flag = 0

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint each image of the batch with ``cv2.inpaint``."""
        import cv2

        images = (image.detach().cpu().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().cpu().numpy()[:, 0] > 0.5).astype(np.uint8)
        out = np.stack([cv2.inpaint(np.ascontiguousarray(img), hole, self.config.radius, self.flag)
                        if hole.any() else img for img, hole in zip(images, holes, strict=True)])
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(image.device, image.dtype) / 255


class Telea(OpenCVInpaint):
    """Telea's fast-marching inpainting (``cv2.INPAINT_TELEA``)."""

    flag = 1  # cv2.INPAINT_TELEA


class NavierStokes(OpenCVInpaint):
    """Navier-Stokes based inpainting (``cv2.INPAINT_NS``)."""

    flag = 0  # cv2.INPAINT_NS


@dataclass(frozen=True)
class PatchMatchConfig:
    """Options of PyPatchMatch's ``patchmatch.inpaint``."""

    patch_size: int = 3  # radius of the compared patches ((2r + 1)^2 pixels); the package's examples use 3
    seed: int = 0  # seed of the randomised search, set before every image: equal inputs give equal outputs

    def __post_init__(self) -> None:
        if self.patch_size < 1:
            raise InpaintbenchError(f"patchmatch patch_size must be >= 1, got {self.patch_size}")


class PatchMatch(InpaintModel):
    """PatchMatch inpainting (Barnes et al. 2009) through the PyPatchMatch package, image by image on the CPU.

    The package (MIT; the maintained continuation of vacancy/PyPatchMatch, after Younesse Andam's C++ code)
    fills the holes coarse to fine with the nearest-neighbour field of patches from the known pixels. Inputs
    are rounded to uint8 as for OpenCV's methods. The search is seeded (``seed``) before every image, so a
    run is reproducible. Deviation from the paper's tool: no user constraints, the package's defaults otherwise.
    """

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint each image of the batch with ``patchmatch.inpaint``."""
        from patchmatch import patch_match

        images = (image.detach().cpu().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().cpu().numpy()[:, 0] > 0.5).astype(np.uint8)
        out = []
        for img, hole in zip(images, holes, strict=True):
            if not hole.any() or hole.all():  # nothing to fill, or no source patch to fill from
                out.append(img if not hole.all() else np.full_like(img, 128))
                continue
            patch_match.set_random_seed(self.config.seed)
            out.append(patch_match.inpaint(np.ascontiguousarray(img), hole, patch_size=self.config.patch_size))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(image.device, image.dtype) / 255


register_model("mean-fill", MeanFill, MeanFillConfig(), paper="-",
               description="each hole filled with the mean colour of the known pixels")
register_model("biharmonic", Biharmonic, BiharmonicConfig(), paper="Damelin & Hoang 2018",
               description="classical biharmonic inpainting (scikit-image)")
register_model("telea", Telea, OpenCVConfig(), paper="Telea 2004 (fast marching)",
               description="OpenCV cv2.inpaint, INPAINT_TELEA, radius 3")
register_model("navier-stokes", NavierStokes, OpenCVConfig(), paper="Bertalmio, Bertozzi & Sapiro 2001",
               description="OpenCV cv2.inpaint, INPAINT_NS, radius 3")
register_model("patchmatch", PatchMatch, PatchMatchConfig(), paper="Barnes et al. 2009 (PatchMatch)",
               description="PyPatchMatch patchmatch.inpaint, patch radius 3, seeded search")
