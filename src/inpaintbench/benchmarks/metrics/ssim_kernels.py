"""The two ways inpaintbench computes SSIM's local statistics: an eager path and a fused CPU kernel.

Both return, per image and channel, the mean SSIM and the mean contrast-structure term over the region the
11-tap Gaussian window fully covers (what scikit-image keeps after cropping its padded borders). They
filter four maps, x, y, xy and x^2 + y^2, since the formula only needs the sum of the two variances.

- **Eager** (any device): a float32 depthwise convolution in channels-last layout, PyTorch's fast CPU
  path (float64 is an order of magnitude slower there). On CPU, images go through it two at a time so the
  maps stay in cache (about four times faster than whole batches of 32 at 256x256).
- **Fused** (CPU): the same arithmetic written as shifted slices and compiled with ``torch.compile``, so
  the products, both filter passes, the formula and the means run as a few vectorised loops instead of a
  dozen passes over memory; 2-2.6x the eager path at 256x256 (benchmarks/metrics_speed.py). Each
  image size compiles once per process (seconds; inductor's disk cache makes later processes faster).
  When compiling is impossible here (no C++ compiler, for instance) it warns once and SSIM stays eager.

The two paths agree to float32 rounding (below 1e-6 on SSIM); tests compare both with scikit-image.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_TAPS = 11  # 2 * int(3.5 * sigma + 0.5) + 1, scikit-image's window for sigma 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
# Images at least this large (both sides) take the fused path in automatic mode; smaller ones are cheap
# either way and would only add compilations.
FUSED_MIN_SIDE = 128
# Distinct image shapes compiled per process before automatic mode stays eager for new ones; it keeps
# torch.compile below its own recompilation limit, past which it would run the slow, uncompiled slices.
FUSED_MAX_SHAPES = 6
EAGER_CPU_CHUNK = 2


def _gaussian_taps() -> tuple[float, ...]:
    """The normalised 11-tap Gaussian window (sigma 1.5), in float64."""
    radius = SSIM_TAPS // 2
    taps = [math.exp(-0.5 * (i / SSIM_SIGMA) ** 2) for i in range(-radius, radius + 1)]
    return tuple(t / sum(taps) for t in taps)


GAUSSIAN_TAPS = _gaussian_taps()


def _moments_to_terms(ux, uy, uxy, usq) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and contrast-structure per image and channel from the filtered x, y, xy and x^2 + y^2."""
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    cross, both = ux * uy, ux * ux + uy * uy
    cs = (2 * (uxy - cross) + c2) / (usq - both + c2)  # (2 cov + c2) / (var x + var y + c2)
    s = (2 * cross + c1) / (both + c1) * cs
    return s.mean(dim=(-2, -1), dtype=torch.float64), cs.mean(dim=(-2, -1), dtype=torch.float64)


def _four_maps(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y, xy and x^2 + y^2 stacked along the channels (N x 4C x H x W)."""
    return torch.cat([x, y, x * y, torch.addcmul(x * x, y, y)], dim=1)


def _conv_filter_valid(maps: torch.Tensor) -> torch.Tensor:
    """Separable 11-tap Gaussian filter of every channel as two float32 depthwise convolutions (valid)."""
    groups = maps.shape[1]
    taps = torch.tensor(GAUSSIAN_TAPS, dtype=torch.float32, device=maps.device)
    maps = maps.float().contiguous(memory_format=torch.channels_last)
    maps = F.conv2d(maps, taps.view(1, 1, -1, 1).expand(groups, 1, -1, 1).contiguous(), groups=groups)
    return F.conv2d(maps, taps.view(1, 1, 1, -1).expand(groups, 1, 1, -1).contiguous(), groups=groups)


def eager_ssim_terms(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean SSIM and contrast-structure (float64, N x C), eager convolutions."""
    if x.device.type == "cpu" and len(x) > EAGER_CPU_CHUNK:
        chunks = zip(x.split(EAGER_CPU_CHUNK), y.split(EAGER_CPU_CHUNK), strict=True)
        parts = [eager_ssim_terms(a, b) for a, b in chunks]
        return torch.cat([s for s, _ in parts]), torch.cat([cs for _, cs in parts])
    channels = x.shape[1]
    return _moments_to_terms(*_conv_filter_valid(_four_maps(x, y)).split(channels, dim=1))


def _blur_valid(maps: torch.Tensor, dim: int) -> torch.Tensor:
    """The 11-tap Gaussian along one dimension as a sum of shifted slices (valid region only)."""
    taps = GAUSSIAN_TAPS
    length = maps.shape[dim] - (SSIM_TAPS - 1)
    out = taps[0] * maps.narrow(dim, 0, length)
    for k in range(1, SSIM_TAPS):
        out = out + taps[k] * maps.narrow(dim, k, length)
    return out


def _sliced_ssim_terms(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM terms in the shifted-slice form that torch.compile fuses (slow if run uncompiled)."""
    maps = torch.stack([x, y, x * y, x * x + y * y])
    return _moments_to_terms(*_blur_valid(_blur_valid(maps, -1), -2).unbind(0))


class FusedSSIM:
    """The compiled CPU kernel, one image at a time (the fastest batch size: the maps stay in cache).

    Remembers which shapes it has compiled and whether compiling works on this machine.
    """

    def __init__(self) -> None:
        self._kernel = torch.compile(_sliced_ssim_terms, dynamic=False)
        self._shapes: set[tuple[int, ...]] = set()
        self.broken: str | None = None

    def accepts(self, x: torch.Tensor) -> bool:
        """Whether automatic mode sends this batch here: CPU, large enough, and a known or affordable shape."""
        if self.broken or x.device.type != "cpu" or min(x.shape[-2:]) < FUSED_MIN_SIDE:
            return False
        return tuple(x.shape[1:]) in self._shapes or len(self._shapes) < FUSED_MAX_SHAPES

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image, per-channel mean SSIM and contrast-structure (float64, N x C).

        Raises RuntimeError, with the reason, when compiling is impossible on this machine.
        """
        if self.broken:
            raise RuntimeError(f"the fused SSIM kernel is unavailable here: {self.broken}")
        if x.device.type != "cpu":
            raise RuntimeError("the fused SSIM kernel runs on CPU; CUDA tensors take the eager path")
        self._shapes.add(tuple(x.shape[1:]))
        try:
            parts = [self._kernel(a.float().contiguous(), b.float().contiguous())
                     for a, b in zip(x.split(1), y.split(1), strict=True)]
        except Exception as error:  # any compiler failure: remember it, the caller falls back
            lines = str(error).strip().splitlines()
            self.broken = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
            raise RuntimeError(f"the fused SSIM kernel is unavailable here: {self.broken}") from error
        return torch.cat([s for s, _ in parts]), torch.cat([cs for _, cs in parts])


@functools.cache
def fused_ssim() -> FusedSSIM:
    """The process's fused kernel (created on first use, so importing inpaintbench compiles nothing)."""
    return FusedSSIM()


def ssim_terms(x: torch.Tensor, y: torch.Tensor, fused: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean SSIM and contrast-structure (float64, N x C) by the chosen path.

    ``fused``: None picks the fused kernel for CPU images of at least 128x128 and the eager path otherwise
    (and after a failed compilation, with one warning); True insists on the fused kernel; False is eager.
    """
    if fused is False:
        return eager_ssim_terms(x, y)
    kernel = fused_ssim()
    if fused is True:
        return kernel(x, y)
    if kernel.accepts(x):
        try:
            return kernel(x, y)
        except RuntimeError as error:
            warnings.warn(f"{error}; SSIM uses the eager path (same values, slower)", RuntimeWarning, stacklevel=3)
    return eager_ssim_terms(x, y)
