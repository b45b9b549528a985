"""Pixel metrics on batches: PSNR, SSIM and L1 (whole image and hole only), per-image values.

Inputs are N x 3 x H x W tensors in [0, 1]; masks are N x 1 x H x W with 1 = hole. The harness passes
the composite ``mask * pred + (1 - mask) * image`` as ``pred``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# PSNR of identical images would be infinite; MSE is floored so that such an image scores 100 dB.
MSE_FLOOR = 1e-10
SSIM_SIGMA = 1.5
SSIM_TAPS = 11  # 2 * int(3.5 * sigma + 0.5) + 1, scikit-image's window for sigma 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 4:
        shapes = f"{tuple(pred.shape)} and {tuple(target.shape)}"
        raise ValueError(f"pred and target must both be N x C x H x W of one shape, got {shapes}")


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR in dB with data range 1: ``10 log10(1 / MSE)``, MSE over all pixels and channels.

    With ``mask``, the MSE is taken over hole pixels only (images without a hole score NaN).
    MSE is floored at 1e-10 (100 dB) so identical images give a finite number.
    """
    _check(pred, target)
    sq = (pred.double() - target.double()) ** 2
    if mask is None:
        mse = sq.flatten(1).mean(1)
    else:
        weight = mask.double().expand_as(sq)
        mse = (sq * weight).flatten(1).sum(1) / weight.flatten(1).sum(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(MSE_FLOOR))).float()


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    radius = SSIM_TAPS // 2
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    taps = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return taps / taps.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004), mean over RGB channels.

    Convention: Gaussian window of 11 taps with sigma 1.5, population covariance, data_range 1,
    K1 = 0.01, K2 = 0.03, mean over the map without the 5-pixel border that the window cannot cover.
    Equal to ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1)``. Computed in float64.
    """
    _check(pred, target)
    n, c, h, w = pred.shape
    if min(h, w) < SSIM_TAPS:
        raise ValueError(f"SSIM needs images of at least {SSIM_TAPS}x{SSIM_TAPS}, got {h}x{w}")
    x, y = pred.double(), target.double()
    taps = _gaussian_taps(pred.device)
    # Filter x, y, x^2, y^2 and xy at once with a separable depthwise "valid" convolution; the valid
    # region is exactly what scikit-image keeps after cropping its reflect-padded borders.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    groups = stack.shape[1]
    stack = F.conv2d(stack, taps.view(1, 1, -1, 1).expand(groups, 1, -1, 1), groups=groups)
    stack = F.conv2d(stack, taps.view(1, 1, 1, -1).expand(groups, 1, 1, -1), groups=groups)
    ux, uy, uxx, uyy, uxy = stack.split(c, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(2, 3)).mean(dim=1).float()


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error over all pixels and channels, in [0, 1] units."""
    _check(pred, target)
    return (pred.double() - target.double()).abs().flatten(1).mean(1).float()


def l1_hole(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error over hole pixels only (NaN for an image without a hole)."""
    _check(pred, target)
    diff = (pred.double() - target.double()).abs()
    weight = mask.double().expand_as(diff)
    return ((diff * weight).flatten(1).sum(1) / weight.flatten(1).sum(1)).float()

