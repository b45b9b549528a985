"""Residual blocks: EdgeConnect's dilated block, and PICNet's blocks (Zheng et al. 2019, ``model/base_function.py``).

* :class:`ResidualBlock`: ``x + body(x)`` with ``body`` = conv3x3 (dilation ``d``) - norm - activation - conv3x3
  (dilation 1) - norm, both convolutions padded by reflection so the side is kept; there is no activation after the
  sum (EdgeConnect's ``networks.py: ResnetBlock``, following the torch.ch ResNet note it cites).
* :class:`PicnetResidualBlock`: two 3x3 convolutions and a skip (identity, or a 1x1 convolution when the channel
  count changes), pre-activation, optional 2x average-pool after the sum (PICNet's ``ResBlock`` with
  ``sample_type='down'`` pools both branches, which is the same as pooling their sum), and optionally the second
  convolution "3x3, stride 1, padding 0" on a reflection-padded input (the CycleGAN ``ResnetBlock`` way of writing
  a padding-0 convolution that keeps the size, so that the skip needs neither cropping nor padding). The
  dual-path GAN's encoders.
* :class:`ResidualUpBlock`: PICNet's ``ResBlockDecoder``: norm, activation, 3x3 conv, norm, activation, 3x3
  transposed conv stride 2; the skip is a 3x3 transposed conv stride 2 of the input. The dual-path GAN's decoders.

Spectral norm (``torch.nn.utils.spectral_norm``, which normalises transposed convolutions along their output
dimension) is on every convolution of the PICNet blocks when asked, as PICNet's ``use_spect=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import conv_norm_act

__all__ = ["PicnetResidualBlock", "ResidualBlock", "ResidualUpBlock", "maybe_spectral_norm", "settle_spectral_norm"]


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """``torch.nn.utils.spectral_norm(module)`` when ``enabled``, else ``module``.

    Args:
        module: a convolution or linear layer.
        enabled: whether to wrap it.

    Returns:
        The (wrapped) module.

    """
    return nn.utils.spectral_norm(module) if enabled else module


def settle_spectral_norm(module: nn.Module, iterations: int = 3) -> None:
    """Run power iterations on every spectral-normalised layer of ``module`` (after a re-initialisation).

    ``torch.nn.utils.spectral_norm`` starts from random singular vectors and refines them by one iteration per
    training-mode forward; a network evaluated before any training (or re-initialised after wrapping) would divide
    by a poor estimate of the spectral norm. This brings the estimate to the weights' actual value.

    Args:
        module: any module.
        iterations: power iterations per layer.

    """
    from torch.nn.utils.spectral_norm import SpectralNorm

    with torch.no_grad():
        for sub in module.modules():
            for hook in sub._forward_pre_hooks.values():
                if isinstance(hook, SpectralNorm):
                    for _ in range(iterations):
                        setattr(sub, hook.name, hook.compute_weight(sub, do_power_iteration=True))


class PicnetResidualBlock(nn.Module):
    """``pool(body(x) + skip(x))`` with ``body = [act] conv3x3 act conv3x3`` (no normalisation, as PICNet's encoder).

    Args:
        in_channels: input channels.
        out_channels: output channels (the hidden width is the same).
        slope: LeakyReLU slope (PICNet: 0.1).
        pre_activation: start the body with the activation (False for a block that reads an image).
        reflect_second: run the second conv with padding 0 on a reflection-padded (1 px) input; else zero
            padding 1. Either way the output has the input's size.
        downsample: 2x average pooling after the sum.
        spectral_norm: spectral norm on every convolution.

    Example:
        >>> block = PicnetResidualBlock(4, 32, pre_activation=False, reflect_second=True, downsample=True)
        >>> tuple(block(torch.zeros(1, 4, 16, 16)).shape)
        (1, 32, 8, 8)

    """

    def __init__(self, in_channels: int, out_channels: int, slope: float = 0.1, pre_activation: bool = True,
                 reflect_second: bool = False, downsample: bool = False, spectral_norm: bool = True) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.LeakyReLU(slope)] if pre_activation else []
        body += [maybe_spectral_norm(nn.Conv2d(in_channels, out_channels, 3, padding=1), spectral_norm),
                 nn.LeakyReLU(slope)]
        if reflect_second:
            body += [nn.ReflectionPad2d(1),
                     maybe_spectral_norm(nn.Conv2d(out_channels, out_channels, 3, padding=0), spectral_norm)]
        else:
            body.append(maybe_spectral_norm(nn.Conv2d(out_channels, out_channels, 3, padding=1), spectral_norm))
        self.body = nn.Sequential(*body)
        self.skip = (nn.Identity() if in_channels == out_channels
                     else maybe_spectral_norm(nn.Conv2d(in_channels, out_channels, 1), spectral_norm))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x in x H x W -> N x out x H x W (H/2 x W/2 with ``downsample``)."""
        out = self.body(x) + self.skip(x)
        return F.avg_pool2d(out, 2) if self.downsample else out


class ResidualUpBlock(nn.Module):
    """PICNet's ``ResBlockDecoder``: doubles the side; body and skip end in 3x3 stride-2 transposed convolutions.

    ``body = IN act conv3x3 IN act convT3x3/2``, ``skip = convT3x3/2`` (padding 1, output padding 1), summed.
    The instance norms have affine parameters (PICNet's ``get_norm_layer('instance')``).

    Args:
        in_channels: input channels.
        out_channels: output channels (also the hidden width).
        slope: LeakyReLU slope (PICNet: 0.1).
        norm: instance norm before each activation of the body (PICNet's generator); False for none.
        spectral_norm: spectral norm on every convolution.

    Example:
        >>> tuple(ResidualUpBlock(8, 4)(torch.zeros(1, 8, 5, 7)).shape)
        (1, 4, 10, 14)

    """

    def __init__(self, in_channels: int, out_channels: int, slope: float = 0.1, norm: bool = True,
                 spectral_norm: bool = True) -> None:
        super().__init__()

        def up(c_in: int) -> nn.Module:
            return maybe_spectral_norm(nn.ConvTranspose2d(c_in, out_channels, 3, stride=2, padding=1,
                                                          output_padding=1), spectral_norm)

        def norm_layer(c: int) -> nn.Module:
            return nn.InstanceNorm2d(c, affine=True) if norm else nn.Identity()

        self.body = nn.Sequential(
            norm_layer(in_channels), nn.LeakyReLU(slope),
            maybe_spectral_norm(nn.Conv2d(in_channels, out_channels, 3, padding=1), spectral_norm),
            norm_layer(out_channels), nn.LeakyReLU(slope), up(out_channels))
        self.skip = up(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x in x H x W -> N x out x 2H x 2W."""
        return self.body(x) + self.skip(x)


class ResidualBlock(nn.Module):
    """``x + body(x)``: two 3x3 convolutions, the first dilated, each followed by a normalisation.

    Args:
        channels: input and output channels.
        dilation: dilation of the first convolution (EdgeConnect: 2).
        norm: normalisation after each convolution (``instance`` for EdgeConnect).
        act: activation between the convolutions.
        padding_mode: padding of both convolutions (``reflect`` keeps the image statistics at the border).
        spectral_norm: spectral normalisation of both convolutions.
        bias: conv biases (EdgeConnect: off under spectral norm, on otherwise).

    Example:
        >>> block = ResidualBlock(8, dilation=2)
        >>> tuple(block(torch.zeros(1, 8, 16, 16)).shape)
        (1, 8, 16, 16)

    """

    def __init__(self, channels: int, dilation: int = 1, norm: str = "instance", act: str = "relu",
                 padding_mode: str = "reflect", spectral_norm: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, 3, dilation=dilation, norm=norm, act=act, bias=bias,
                          padding_mode=padding_mode, spectral_norm=spectral_norm),
            conv_norm_act(channels, channels, 3, norm=norm, act="none", bias=bias, padding_mode=padding_mode,
                          spectral_norm=spectral_norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The input plus the body's output."""
        return x + self.body(x)
