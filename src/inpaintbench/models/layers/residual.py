"""Residual blocks with dilated convolutions: the middle of EdgeConnect's generators (and of pix2pixHD-style nets).

:class:`ResidualBlock` is ``x + body(x)`` with ``body`` = conv3x3 (dilation ``d``) - norm - activation - conv3x3
(dilation 1) - norm, both convolutions padded by reflection so the side is kept; there is no activation after the
sum (EdgeConnect's ``networks.py: ResnetBlock``, following the torch.ch ResNet note it cites).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import conv_norm_act

__all__ = ["ResidualBlock"]


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
