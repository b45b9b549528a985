"""Edge maps for edge- and sketch-guided models: Canny edges as EdgeConnect computes them.

EdgeConnect (``knazeri/edge-connect: src/dataset.py``) takes ``skimage.feature.canny(gray, sigma=2)`` of the
grayscale image (``skimage.color.rgb2gray``); DeepFill v2's sketch variant trains on the same edges of the
ground truth, inside the hole, standing for the user's strokes.
"""

from __future__ import annotations

import numpy as np
import torch

from .._registry import InpaintbenchError

__all__ = ["canny_edges"]


def canny_edges(image: torch.Tensor, sigma: float = 2.0, where: torch.Tensor | None = None) -> torch.Tensor:
    """Canny edges of each image (scikit-image, on the CPU), as EdgeConnect computes them.

    Args:
        image: N x 3 x H x W RGB (or N x 1 x H x W grayscale) in [0, 1], any device.
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
    from skimage.color import rgb2gray
    from skimage.feature import canny

    if image.dim() != 4 or image.shape[1] not in (1, 3):
        raise InpaintbenchError(f"canny_edges takes N x 3 x H x W or N x 1 x H x W images, got {tuple(image.shape)}")
    pixels = image.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    regions = None if where is None else (where.detach().cpu().numpy()[:, 0] > 0)
    edges = []
    for i, rgb in enumerate(pixels):
        gray = rgb2gray(rgb) if rgb.shape[2] == 3 else rgb[..., 0]
        edges.append(canny(gray, sigma=sigma, mask=None if regions is None else regions[i]))
    return torch.from_numpy(np.stack(edges)[:, None].astype(np.float32)).to(image.device)
