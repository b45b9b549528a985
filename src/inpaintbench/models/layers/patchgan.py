"""PatchGAN discriminators: a stack of strided convolutions whose output is one logit per image patch.

One module serves the PatchGANs of the literature; each family picks its widths, strides, kernel, padding,
normalisation and spectral norm:

* pix2pix / EdgeConnect 70x70 (``networks.py: Discriminator``): 4x4 convs, widths 64, 128, 256, 512, 1, strides
  2, 2, 2, 1, 1, padding 1, LeakyReLU(0.2), spectral norm and no bias on every conv;
* AOT-GAN's SM-PatchGAN: the same stack, spectral norm without bias on all but the last conv;
* LaMa's pix2pixHD ``NLayerDiscriminator``: 4x4 convs with padding 2 and BatchNorm on the inner layers;
* DeepFill v2's SN-PatchGAN: 5x5 convs, all stride 2, LeakyReLU after every layer including the last, and the
  hinge loss on every element of the last feature map (``last_activation=True``, no 1-channel output).

:meth:`PatchDiscriminator.receptive_field` gives the side of the input patch each output element sees (70 for
the pix2pix stack).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..._registry import InpaintbenchError
from .common import make_norm

__all__ = ["PatchDiscriminator", "receptive_field"]


def receptive_field(kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int] | None = None) -> int:
    """Side of the input window that one output element of a stack of convolutions sees.

    Args:
        kernels: kernel size of each layer, input first.
        strides: stride of each layer.
        dilations: dilation of each layer (default 1).

    Returns:
        The receptive field in input pixels (70 for kernels 4 and strides 2, 2, 2, 1, 1).

    """
    dilations = dilations or [1] * len(kernels)
    field = 1
    for k, s, d in reversed(list(zip(kernels, strides, dilations, strict=True))):
        field = (field - 1) * s + d * (k - 1) + 1
    return field


class PatchDiscriminator(nn.Module):
    """A PatchGAN: ``len(widths)`` convolutions, each followed by an optional norm and LeakyReLU(0.2).

    The first layer has no normalisation (pix2pix); the last has neither normalisation nor activation unless
    ``last_activation`` is set (DeepFill v2's SN-PatchGAN, whose loss reads the last feature map).

    Args:
        in_channels: input channels (3 for RGB, 4 with a mask, 2 for EdgeConnect's gray + edge).
        widths: output channels of each layer, the last usually 1.
        strides: stride of each layer (same length as ``widths``).
        kernel: square kernel size of every layer.
        padding: padding of every layer (default ``(kernel - 1) // 2``, i.e. 1 for 4x4 and 2 for 5x5).
        norm: ``none``, ``batch`` or ``instance`` on the inner layers.
        spectral_norm: wrap every conv (``last_spectral_norm`` for the last one) in spectral normalisation.
        bias: conv biases of the inner layers (pix2pix: off under spectral norm or batch norm).
        last_bias: bias of the last conv.
        last_spectral_norm: spectral norm on the last conv (default: as ``spectral_norm``).
        last_activation: LeakyReLU after the last layer too (its output is then a feature map, not logits).

    Example:
        >>> d = PatchDiscriminator(3, widths=(64, 128, 256, 512, 1), strides=(2, 2, 2, 1, 1))
        >>> d.receptive_field(), tuple(d(torch.zeros(1, 3, 256, 256)).shape)
        (70, (1, 1, 30, 30))

    """

    def __init__(self, in_channels: int, widths: Sequence[int] = (64, 128, 256, 512, 1),
                 strides: Sequence[int] = (2, 2, 2, 1, 1), kernel: int = 4, padding: int | None = None,
                 norm: str = "none", spectral_norm: bool = False, bias: bool = True, last_bias: bool = True,
                 last_spectral_norm: bool | None = None, last_activation: bool = False) -> None:
        super().__init__()
        if len(widths) != len(strides) or not widths:
            raise InpaintbenchError(f"PatchDiscriminator needs one stride per layer, got {len(widths)} widths and "
                                    f"{len(strides)} strides")
        self.kernel, self.strides = kernel, tuple(strides)
        padding = (kernel - 1) // 2 if padding is None else padding
        last_sn = spectral_norm if last_spectral_norm is None else last_spectral_norm
        self.layers = nn.ModuleList()
        c_in = in_channels
        for i, (c_out, stride) in enumerate(zip(widths, strides, strict=True)):
            last = i == len(widths) - 1
            conv: nn.Module = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding,
                                        bias=last_bias if last else bias)
            if (last_sn if last else spectral_norm):
                conv = nn.utils.spectral_norm(conv)
            inner = 0 < i < len(widths) - 1
            block = [conv, make_norm(norm if inner else "none", c_out)]
            if not last or last_activation:
                block.append(nn.LeakyReLU(0.2, inplace=False))
            self.layers.append(nn.Sequential(*block))
            c_in = c_out

    def receptive_field(self) -> int:
        """Side of the input patch that one output element sees."""
        return receptive_field([self.kernel] * len(self.strides), self.strides)

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """The output map (logits, or the last feature map with ``last_activation``).

        Args:
            x: N x in_channels x H x W.
            return_features: also return every layer's output (for feature-matching losses).

        Returns:
            The N x widths[-1] x h x w map, and with ``return_features`` the list of every layer's output
            (the map is its last element).

        """
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return (x, features) if return_features else x
