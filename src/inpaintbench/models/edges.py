"""Edge maps for edge- and sketch-guided models: Canny edges as EdgeConnect computes them.

EdgeConnect (``knazeri/edge-connect: src/dataset.py``) takes ``skimage.feature.canny(gray, sigma=2)`` of the
grayscale image (``skimage.color.rgb2gray`` of the uint8 photo, so float64), with the known pixels as Canny's
``mask`` in its test mode; DeepFill v2's sketch variant trains on the same edges of the ground truth, inside the
hole, standing for the user's strokes; ``replace`` computes the photo's and the reference's edges the same way.
Everything runs image by image on the CPU, in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from .._registry import InpaintbenchError

__all__ = ["canny_edges", "gray_image", "sample_edges"]


def gray_image(image: torch.Tensor) -> torch.Tensor:
    """scikit-image's ``rgb2gray`` (ITU-R 709 luma: 0.2125 R + 0.7154 G + 0.0721 B) of a batch, in float64.

    Args:
        image: N x 3 x H x W in [0, 1].

    Returns:
        N x 1 x H x W float64 on the image's device.

    """
    from skimage.color import rgb2gray

    rgb = image.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    return torch.from_numpy(rgb2gray(rgb)).unsqueeze(1).to(image.device)


def canny_edges(image: torch.Tensor, sigma: float = 2.0, where: torch.Tensor | None = None) -> torch.Tensor:
    """Canny edges of each image (``skimage.feature.canny``, default thresholds), as EdgeConnect computes them.

    Args:
        image: N x 3 x H x W RGB (converted with :func:`gray_image`) or N x 1 x H x W grayscale, in [0, 1], any
            device.
        sigma: the Gaussian's standard deviation (EdgeConnect: 2).
        where: optional N x 1 x H x W, nonzero where edges are computed (skimage's ``mask``; EdgeConnect's test
            mode passes the known pixels); edges are 0 elsewhere.

    Returns:
        N x 1 x H x W float32 tensor of 0 and 1 on ``image``'s device.

    Raises:
        InpaintbenchError: for a tensor that is not N x 1 or N x 3 x H x W.

    Example:
        >>> square = torch.zeros(1, 3, 32, 32)
        >>> square[..., 8:24, 8:24] = 1
        >>> bool(canny_edges(square)[0, 0, 8:24, 8].any())
        True

    """
    from skimage.feature import canny

    if image.dim() != 4 or image.shape[1] not in (1, 3):
        raise InpaintbenchError(f"canny_edges takes N x 3 x H x W or N x 1 x H x W images, got {tuple(image.shape)}")
    gray = gray_image(image) if image.shape[1] == 3 else image
    pixels = gray.detach().to("cpu", torch.float64).numpy()[:, 0]
    regions = [None] * len(pixels) if where is None else list(where.detach().cpu().numpy()[:, 0] > 0)
    edges = np.stack([canny(g, sigma=sigma, mask=r) for g, r in zip(pixels, regions, strict=True)])
    return torch.from_numpy(edges[:, None].astype(np.float32)).to(image.device)


def sample_edges(image: torch.Tensor, mask: torch.Tensor, sigma: float = 2.0) -> dict[str, torch.Tensor]:
    """One training sample's gray image and Canny edges, for a DataLoader worker (``sample_inputs``).

    Args:
        image: 3 x H x W in [0, 1] on the CPU.
        mask: 1 x H x W (unused: the training edges are those of the whole image, as EdgeConnect's dataset).
        sigma: Canny's sigma.

    Returns:
        ``{"sample_gray": 1 x H x W, "sample_edges": 1 x H x W}`` (float32), the keys the models' caches read.

    """
    gray = gray_image(image[None])
    return {"sample_gray": gray[0].float(), "sample_edges": canny_edges(gray, sigma)[0]}
