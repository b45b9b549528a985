"""Edge maps as EdgeConnect computes them: scikit-image's ``rgb2gray`` and ``canny``, image by image on the CPU.

Used by EdgeConnect (its training edges and the known edges at inference) and by ``replace`` (the edges of the
photo and of the reference), so that both see the same edges.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["canny_edges", "gray_image"]


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


def canny_edges(gray: torch.Tensor, sigma: float = 2.0, known: torch.Tensor | None = None) -> torch.Tensor:
    """Canny edge maps (``skimage.feature.canny``, default thresholds), image by image on the CPU.

    Args:
        gray: N x 1 x H x W gray images in [0, 1] (:func:`gray_image`).
        sigma: the Gaussian's sigma (EdgeConnect: 2).
        known: N x 1 x H x W, 1 on the pixels Canny may use (EdgeConnect's test mode: the known pixels); None = all.

    Returns:
        N x 1 x H x W float32 on ``gray``'s device, 1 on an edge.

    """
    from skimage.feature import canny

    images = gray.detach().to("cpu", torch.float64).numpy()[:, 0]
    masks = [None] * len(images) if known is None else list(known.detach().cpu().numpy()[:, 0] > 0.5)
    edges = np.stack([canny(img, sigma=sigma, mask=m) for img, m in zip(images, masks, strict=True)])
    return torch.from_numpy(edges.astype(np.float32)).unsqueeze(1).to(gray.device)
