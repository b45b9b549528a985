"""Pixel metrics on batches: PSNR, SSIM and L1 (whole image and hole only), per-image values.

Inputs are N x 3 x H x W tensors in [0, 1]; masks are N x 1 x H x W with 1 = hole. The harness passes
the composite ``mask * pred + (1 - mask) * image`` as ``pred``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .ssim_kernels import SSIM_TAPS, ssim_terms

# PSNR of identical images would be infinite; MSE is floored so that such an image scores 100 dB.
MSE_FLOOR = 1e-10


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Raise a ValueError that says what is wrong with the inputs, not only their shapes."""
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch tensor N x C x H x W, got a {type(x).__name__} (use "
                             "torch.from_numpy, and permute H x W x C arrays to C x H x W)")
        if x.dim() == 3:
            raise ValueError(f"{name} is {tuple(x.shape)}: a single image without the batch dimension; pass "
                             f"{name}[None] (N x C x H x W)")
        if x.dim() != 4:
            raise ValueError(f"{name} must be N x C x H x W, got {x.dim()} dimensions {tuple(x.shape)}")
        if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
            raise ValueError(f"{name} is {tuple(x.shape)}, channels last: permute it with .permute(0, 3, 1, 2)")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")


def _image_by_image_on_cpu(metric: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Run a per-image metric one image at a time on CPU, CUDA batches at once.

    On CPU an image's temporaries then stay in cache: about 5x faster than whole batches of 256x256 images.
    """

    @functools.wraps(metric)
    def per_image(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check(pred, target)
        if mask is not None and (mask.dim() != 4 or len(mask) not in (1, len(pred))):
            raise ValueError(f"mask must be N x 1 x H x W with N = 1 or {len(pred)}, got {tuple(mask.shape)}")
        if pred.device.type != "cpu" or len(pred) <= 1:
            return metric(pred, target) if mask is None else metric(pred, target, mask)
        values = []
        for i in range(len(pred)):
            args = [pred[i:i + 1], target[i:i + 1]]
            if mask is not None:
                args.append(mask[i:i + 1] if len(mask) > 1 else mask)  # a batch-1 mask serves every image
            values.append(metric(*args))
        return torch.cat(values)

    return per_image


@_image_by_image_on_cpu
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


def ssim(pred: torch.Tensor, target: torch.Tensor, fused: bool | None = None) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004), mean over RGB channels.

    Convention: Gaussian window of 11 taps with sigma 1.5, population covariance, data_range 1,
    K1 = 0.01, K2 = 0.03, mean over the map without the 5-pixel border that the window cannot cover.
    Equal to ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1)`` (float32 filtering, float64 means).
    ``fused`` picks the computation (see ssim_kernels.py): None = automatic (a compiled kernel for CPU
    images of 128x128 and up), False = eager only, True = the compiled kernel or an error.
    """
    _check(pred, target)
    h, w = pred.shape[-2:]
    if min(h, w) < SSIM_TAPS:
        raise ValueError(f"SSIM needs images of at least {SSIM_TAPS}x{SSIM_TAPS}, got {h}x{w}")
    s, _ = ssim_terms(pred.float(), target.float(), fused)
    return s.mean(dim=1).float()


@_image_by_image_on_cpu
def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error over all pixels and channels, in [0, 1] units."""
    _check(pred, target)
    return (pred.double() - target.double()).abs().flatten(1).mean(1).float()


@_image_by_image_on_cpu
def l1_hole(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error over hole pixels only (NaN for an image without a hole)."""
    _check(pred, target)
    diff = (pred.double() - target.double()).abs()
    weight = mask.double().expand_as(diff)
    return ((diff * weight).flatten(1).sum(1) / weight.flatten(1).sum(1)).float()



@_image_by_image_on_cpu
def l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over all pixels and channels, in [0, 1] units."""
    _check(pred, target)
    return ((pred.double() - target.double()) ** 2).flatten(1).mean(1).float()


@_image_by_image_on_cpu
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


def ms_ssim(pred: torch.Tensor, target: torch.Tensor, scales: int | None = None,
            fused: bool | None = None) -> torch.Tensor:
    """Per-image multi-scale SSIM (Wang et al. 2003), mean over RGB channels.

    Five scales with the standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); images too small for
    five scales (side <= 160 px) use fewer, with the first weights renormalised to sum to 1. Each scale uses
    the SSIM window of ``ssim`` (11 taps, sigma 1.5, valid region), 2x2 average pooling between scales (an
    odd side is zero-padded by one, as pytorch-msssim does), negative terms clamped to 0, product per
    channel, then the mean over channels. ``fused`` as in ``ssim``.
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
        s, cs = ssim_terms(x, y, fused)
        if level < scales - 1:
            terms.append(torch.relu(cs))
            pad = [x.shape[-2] % 2, x.shape[-1] % 2]  # avg_pool2d's padding is (H, W), as pytorch-msssim's
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    terms.append(torch.relu(s))
    stacked = torch.stack(terms, dim=0)  # scales x N x C
    per_channel = torch.prod(stacked ** weights.view(-1, 1, 1), dim=0)
    return per_channel.mean(dim=1).float()
