"""Fast Fourier Convolution (Chi, Jiang, Mu, NeurIPS 2020) as LaMa uses it (Suvorov et al., WACV 2022).

Source of the layer list, shapes and conventions: ``advimman/lama: saicinpainting/training/modules/ffc.py``
(``FourierUnit``, ``SpectralTransform``, ``FFC``, ``FFC_BN_ACT``, ``FFCResnetBlock``; model_anchors.md section 9).
Our modules keep the official arithmetic exactly, under names of our own; ``models/lama.py`` maps the official
keys onto them.

An FFC splits its channels into a *local* part (ordinary k x k convolutions) and a *global* part (a spectral
transform whose 1 x 1 convolution acts on the 2-D real FFT of the whole feature map, so one layer sees the whole
image). With ``global_in``/``global_out`` the fractions of global channels (LaMa: 0.75 inside the residual
blocks, 0 in the stem and the first two downsampling layers):

* ``out_local = local_to_local(x_local) + global_to_local(x_global)``
* ``out_global = local_to_global(x_local) + global_to_global(x_global)``  (``global_to_global`` = spectral)

A branch whose input or output has no channels does not exist (the official ``nn.Identity`` applied to 0).

Precision: the Fourier unit (FFT, spectral 1 x 1 convolution, its BatchNorm, inverse FFT) always runs in float32,
with autocast switched off inside it. Half-precision FFTs fail on cuFFT for sizes that are not powers of two
(advimman/lama issue #360) and bf16 FFTs do not exist on the CPU; the unit is about 5% of an FFC block's FLOPs.

Not implemented: the official options LaMa's configs leave off (``enable_lfu``, ``gated``, squeeze-excitation,
spectral positional encoding, spatial rescaling, 3-D FFT).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FFC", "FFCNormAct", "FFCResBlock", "FourierUnit", "SpectralTransform", "split_channels"]

Pair = tuple[torch.Tensor | None, torch.Tensor | None]


def split_channels(channels: int, global_ratio: float) -> tuple[int, int]:
    """``(local, global)`` channel counts, as the official code rounds them: ``global = int(channels * ratio)``.

    Args:
        channels: total channels.
        global_ratio: fraction of global channels in [0, 1].

    Returns:
        The local and global counts (they add up to ``channels``).

    """
    n_global = int(channels * global_ratio)
    return channels - n_global, n_global


class FourierUnit(nn.Module):
    """A 1 x 1 convolution in the frequency domain: rfft2 -> conv (real and imaginary parts as channels) -> irfft2.

    ``torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")`` gives C x H x (W/2 + 1) complex values; they are laid out
    as 2C real channels in the official interleaved order (real and imaginary part of channel 0, then of channel
    1, ...), convolved 1 x 1 without bias to 2C', batch-normalised, passed through ReLU, regrouped into C' complex
    channels and brought back with ``irfftn(..., s=(H, W), norm="ortho")``: any H and W work.

    Args:
        in_channels: C.
        out_channels: C'.

    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * in_channels, 2 * out_channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(2 * out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The unit's output, N x C' x H x W in float32 (the whole unit runs in float32, outside autocast).

        Args:
            x: N x C x H x W, any floating dtype.

        Returns:
            N x C' x H x W float32.

        """
        n, _, h, w = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")  # N x C x H x W/2+1, complex
            parts = torch.stack((spectrum.real, spectrum.imag), dim=2)  # N x C x 2 x H x W/2+1
            y = self.act(self.norm(self.conv(parts.reshape(n, -1, h, spectrum.shape[-1]))))
            y = y.reshape(n, -1, 2, h, spectrum.shape[-1])
            return torch.fft.irfftn(torch.complex(y[:, :, 0], y[:, :, 1]), s=(h, w), dim=(-2, -1), norm="ortho")


class SpectralTransform(nn.Module):
    """The global-to-global branch: 1 x 1 conv to C'/2 (+BN, ReLU), a Fourier unit with a skip, 1 x 1 conv to C'.

    ``expand(reduce(x) + fourier(reduce(x)))`` (stride 1 only: LaMa's spectral transforms never downsample).

    Args:
        in_channels: global input channels.
        out_channels: global output channels C'.

    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, half, 1, bias=False), nn.BatchNorm2d(half),
                                    nn.ReLU(inplace=True))
        self.fourier = FourierUnit(half, half)
        self.expand = nn.Conv2d(half, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x in_channels x H x W -> N x out_channels x H x W."""
        x = self.reduce(x)
        return self.expand(x + self.fourier(x).to(x.dtype))


class FFC(nn.Module):
    """One fast Fourier convolution: four branches between the local and global channel groups.

    Args:
        in_channels: input channels (local + global).
        out_channels: output channels (local + global).
        kernel_size: kernel of the three spatial branches.
        global_in: fraction of global input channels.
        global_out: fraction of global output channels.
        stride: stride of the spatial branches (1 or 2; the spectral branch needs stride 1).
        padding: padding of the spatial branches.
        dilation: dilation of the spatial branches.
        padding_mode: padding of the spatial branches (LaMa: ``reflect`` everywhere).

    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, global_in: float, global_out: float,
                 stride: int = 1, padding: int = 0, dilation: int = 1, padding_mode: str = "reflect") -> None:
        super().__init__()
        in_l, in_g = split_channels(in_channels, global_in)
        out_l, out_g = split_channels(out_channels, global_out)
        if in_g and out_g and stride != 1:
            raise ValueError("FFC: the spectral (global-to-global) branch supports stride 1 only")
        self.out_channels = (out_l, out_g)

        def spatial(c_in: int, c_out: int) -> nn.Conv2d | None:
            if not (c_in and c_out):
                return None
            return nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation, bias=False,
                             padding_mode=padding_mode)

        self.local_to_local = spatial(in_l, out_l)
        self.local_to_global = spatial(in_l, out_g)
        self.global_to_local = spatial(in_g, out_l)
        self.global_to_global = SpectralTransform(in_g, out_g) if in_g and out_g else None

    def forward(self, x: Pair) -> Pair:
        """``(local, global)`` -> ``(local, global)``; a missing part is None."""
        x_l, x_g = x
        out_l = _sum(_apply(self.local_to_local, x_l), _apply(self.global_to_local, x_g))
        out_g = _sum(_apply(self.local_to_global, x_l), _apply(self.global_to_global, x_g))
        return (out_l if self.out_channels[0] else None), (out_g if self.out_channels[1] else None)


def _apply(branch: nn.Module | None, x: torch.Tensor | None) -> torch.Tensor | None:
    return None if branch is None or x is None else branch(x)


def _sum(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


class FFCNormAct(nn.Module):
    """An FFC followed by BatchNorm and an activation on each non-empty output group (official ``FFC_BN_ACT``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel of the spatial branches.
        global_in: fraction of global input channels.
        global_out: fraction of global output channels.
        stride: stride.
        padding: padding.
        dilation: dilation.
        act: apply ReLU (LaMa's generator everywhere) or nothing.

    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, global_in: float, global_out: float,
                 stride: int = 1, padding: int = 0, dilation: int = 1, act: bool = True) -> None:
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, global_in, global_out, stride, padding, dilation)
        out_l, out_g = self.ffc.out_channels
        self.norm_local = nn.BatchNorm2d(out_l) if out_l else None
        self.norm_global = nn.BatchNorm2d(out_g) if out_g else None
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: Pair) -> Pair:
        """``(local, global)`` -> normalised and activated ``(local, global)``."""
        out_l, out_g = self.ffc(x)
        if out_l is not None:
            out_l = self.act(self.norm_local(out_l))
        if out_g is not None:
            out_g = self.act(self.norm_global(out_g))
        return out_l, out_g


class FFCResBlock(nn.Module):
    """LaMa's residual block: two 3 x 3 :class:`FFCNormAct` (ReLU after both) and a skip on each channel group.

    Args:
        channels: channels of the block (input = output).
        global_ratio: fraction of global channels (LaMa: 0.75; 0 gives a plain residual block of 3 x 3 convs).
        dilation: dilation (and padding) of the spatial branches.

    """

    def __init__(self, channels: int, global_ratio: float, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = FFCNormAct(channels, channels, 3, global_ratio, global_ratio, padding=dilation, dilation=dilation)
        self.conv2 = FFCNormAct(channels, channels, 3, global_ratio, global_ratio, padding=dilation, dilation=dilation)

    def forward(self, x: Pair) -> Pair:
        """``(local, global)`` + the two convolutions of it."""
        out_l, out_g = self.conv2(self.conv1(x))
        return _sum(x[0], out_l), _sum(x[1], out_g)
