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
    sq = (pred.float() - target.float()) ** 2  # float32 squares, float64 sums
    if mask is None:
        mse = sq.flatten(1).mean(1, dtype=torch.float64)
    else:
        weight = mask.float().expand_as(sq)
        mse = (sq * weight).flatten(1).sum(1, dtype=torch.float64) / weight.flatten(1).sum(1, dtype=torch.float64)
    return (10 * torch.log10(1.0 / mse.clamp_min(MSE_FLOOR))).float()


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    radius = SSIM_TAPS // 2
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    taps = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return taps / taps.sum()


def _gaussian_filter_valid(maps: torch.Tensor) -> torch.Tensor:
    """Separable 11-tap Gaussian filter of every channel, keeping the region the window fully covers.

    That region is exactly what scikit-image keeps after cropping its reflect-padded borders. Runs as a
    float32 depthwise convolution in channels-last layout, the fast path of PyTorch's CPU kernels (float64
    is an order of magnitude slower there); the error against float64 is below 1e-6 on SSIM.
    """
    groups = maps.shape[1]
    taps = _gaussian_taps(maps.device).float()
    maps = maps.float().contiguous(memory_format=torch.channels_last)
    maps = F.conv2d(maps, taps.view(1, 1, -1, 1).expand(groups, 1, -1, 1).contiguous(), groups=groups)
    return F.conv2d(maps, taps.view(1, 1, 1, -1).expand(groups, 1, 1, -1).contiguous(), groups=groups)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004), mean over RGB channels.

    Convention: Gaussian window of 11 taps with sigma 1.5, population covariance, data_range 1,
    K1 = 0.01, K2 = 0.03, mean over the map without the 5-pixel border that the window cannot cover.
    Equal to ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1)`` (float32 filtering, float64 means).
    """
    _check(pred, target)
    h, w = pred.shape[-2:]
    if min(h, w) < SSIM_TAPS:
        raise ValueError(f"SSIM needs images of at least {SSIM_TAPS}x{SSIM_TAPS}, got {h}x{w}")
    s, _ = _ssim_cs(pred.float(), target.float())
    return s.mean(dim=1).float()


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



def l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over all pixels and channels, in [0, 1] units."""
    _check(pred, target)
    return ((pred.double() - target.double()) ** 2).flatten(1).mean(1).float()


def l2_hole(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over hole pixels only (NaN for an image without a hole)."""
    _check(pred, target)
    sq = (pred.double() - target.double()) ** 2
    weight = mask.double().expand_as(sq)
    return ((sq * weight).flatten(1).sum(1) / weight.flatten(1).sum(1)).float()


def dataset_psnr(mse: torch.Tensor) -> float:
    """The dataset PSNR: ``10 log10(1 / mean MSE)`` from per-image MSEs (not the mean of per-image PSNRs)."""
    return float(10 * torch.log10(1.0 / mse.double().mean().clamp_min(MSE_FLOOR)))


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli and Bovik 2003


def ms_ssim_scales(height: int, width: int) -> int:
    """Scales that fit: the smallest side must exceed (taps - 1) * 2**(scales - 1), at most five."""
    scales = 5
    while scales > 1 and min(height, width) <= (SSIM_TAPS - 1) * 2 ** (scales - 1):
        scales -= 1
    return scales


def _ssim_cs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean SSIM and contrast-structure term (valid Gaussian window), float64."""
    c = x.shape[1]
    # filter x, y, x^2, y^2 and xy in one pass
    ux, uy, uxx, uyy, uxy = _gaussian_filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1)).split(c, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    s = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs
    return s.mean(dim=(2, 3), dtype=torch.float64), cs.mean(dim=(2, 3), dtype=torch.float64)


def ms_ssim(pred: torch.Tensor, target: torch.Tensor, scales: int | None = None) -> torch.Tensor:
    """Per-image multi-scale SSIM (Wang et al. 2003), mean over RGB channels.

    Five scales with the standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); images too small for
    five scales (side <= 160 px) use fewer, with the first weights renormalised to sum to 1. Each scale uses
    the SSIM window of ``ssim`` (11 taps, sigma 1.5, valid region), 2x2 average pooling between scales (an
    odd side is zero-padded by one, as pytorch-msssim does), negative terms clamped to 0, product per
    channel, then the mean over channels.
    """
    _check(pred, target)
    available = ms_ssim_scales(*pred.shape[-2:])
    scales = available if scales is None else scales
    if not 1 <= scales <= available:
        raise ValueError(f"{scales} MS-SSIM scales do not fit {tuple(pred.shape[-2:])} images (at most {available})")
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64, device=pred.device)
    weights = weights / weights.sum()
    x, y = pred.float(), target.float()
    terms = []
    for level in range(scales):
        s, cs = _ssim_cs(x, y)
        if level < scales - 1:
            terms.append(torch.relu(cs))
            pad = [x.shape[-1] % 2, x.shape[-2] % 2]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    terms.append(torch.relu(s))
    stacked = torch.stack(terms, dim=0)  # scales x N x C
    per_channel = torch.prod(stacked ** weights.view(-1, 1, 1), dim=0)
    return per_channel.mean(dim=1).float()
