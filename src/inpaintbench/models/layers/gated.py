"""Gated convolution (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019).

One convolution produces twice the output channels; the first half are features, the second half gates:
``out = act(features) * sigmoid(gate)``. The gate learns, per pixel and per channel, how much of each feature
passes, which lets a network treat hole, known and sketched pixels differently without a hand-made mask rule.

Channel convention: ``out_channels`` is the number of channels the layer *outputs* (the features after
gating); the convolution inside has ``2 * out_channels`` filters. The official TensorFlow ``gen_conv(x, cnum)``
and mmagic's ``SimpleGatedConvModule`` differ here (the first halves ``cnum``, the second doubles its
argument); this module follows mmagic and nipponjo's port, so DeepFill v2's first layer is
``GatedConv2d(5, 24, 5)`` holding a 48-filter convolution (TensorFlow's ``gen_conv(x, 48, 5)``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..._registry import InpaintbenchError
from .common import make_activation

__all__ = ["GatedConv2d"]

_PADDING_MODES = ("zeros", "reflect")


class GatedConv2d(nn.Module):
    """Gated 2-D convolution: ``act(conv_f(x)) * sigmoid(conv_g(x))`` with one convolution of ``2 * out`` filters.

    Padding keeps the size at stride 1 (``dilation * (kernel_size - 1) // 2`` on every side).

    Args:
        in_channels: input channels.
        out_channels: output channels (after gating).
        kernel_size: square kernel size (odd).
        stride: stride.
        dilation: dilation.
        activation: activation of the features (``elu`` in DeepFill v2, ``relu`` before contextual attention,
            ``none`` for mmagic's gated output layer); a name for :func:`~.common.make_activation`.
        padding_mode: ``zeros`` or ``reflect`` (mmagic's DeepFill configs).
        bias: convolution bias.

    Attributes:
        conv: the ``nn.Conv2d`` with ``2 * out_channels`` filters: features first, gates second.

    Example:
        >>> layer = GatedConv2d(5, 24, 5)
        >>> tuple(layer.conv.weight.shape), tuple(layer(torch.zeros(1, 5, 16, 16)).shape)
        ((48, 5, 5, 5), (1, 24, 16, 16))

    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 activation: str = "elu", padding_mode: str = "zeros", bias: bool = True) -> None:
        super().__init__()
        if padding_mode not in _PADDING_MODES:
            raise InpaintbenchError(f"GatedConv2d padding_mode must be one of {', '.join(_PADDING_MODES)}, "
                                    f"got {padding_mode!r}")
        if kernel_size % 2 == 0:
            raise InpaintbenchError(f"GatedConv2d needs an odd kernel size, got {kernel_size}")
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride=stride,
                              padding=dilation * (kernel_size - 1) // 2, dilation=dilation, bias=bias,
                              padding_mode=padding_mode)
        self.activation = make_activation(activation)
        if hasattr(self.activation, "inplace"):  # the features are one of two views of the conv's output
            self.activation.inplace = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gated features.

        Args:
            x: N x in_channels x H x W.

        Returns:
            N x out_channels x H' x W'.

        """
        features, gate = self.conv(x).split(self.out_channels, dim=1)
        return self.activation(features) * torch.sigmoid(gate)
