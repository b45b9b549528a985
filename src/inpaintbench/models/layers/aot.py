"""The AOT block of AOT-GAN (Zeng et al., TVCG 2022): aggregated contextual transformations with a learned gate.

Source: ``researchmm/AOT-GAN-for-Inpainting: src/model/aotgan.py`` (``AOTBlock``, ``my_layer_norm``); mmagic's
``aot_neck.py`` is the same block (model_anchors.md section 10).

``x`` (C channels) goes through one 3x3 convolution per dilation rate (C -> C/4 each, reflection padding equal to
the rate, ReLU); the branches are concatenated back to C channels and fused by a 3x3 convolution. A second 3x3
convolution of ``x`` gives the gate ``g = sigmoid(gate_norm(conv(x)))`` and the block returns
``x * (1 - g) + fused * g``. ``gate_norm`` is the official ``my_layer_norm``: per sample and channel,
``5 * (2 * (f - mean) / (std + 1e-9) - 1)`` over the spatial positions, with the unbiased standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .common import conv_norm_act

__all__ = ["AOTBlock", "gate_norm"]


def gate_norm(feat: torch.Tensor) -> torch.Tensor:
    """The official ``my_layer_norm``: ``5 * (2 * (f - mean) / (std + 1e-9) - 1)`` per sample and channel (float32).

    Args:
        feat: N x C x H x W (more than one position, or the unbiased std is undefined).

    Returns:
        The normalised map, float32.

    """
    feat = feat.float()
    mean = feat.mean((2, 3), keepdim=True)
    std = feat.std((2, 3), keepdim=True) + 1e-9
    return 5 * (2 * (feat - mean) / std - 1)


class AOTBlock(nn.Module):
    """One AOT block (``branches``, ``fuse``, ``gate``).

    Args:
        channels: C (AOT-GAN: 256); must be divisible by ``len(rates)``.
        rates: the dilation rates of the branches (AOT-GAN: 1, 2, 4, 8).

    """

    def __init__(self, channels: int, rates: Sequence[int] = (1, 2, 4, 8)) -> None:
        super().__init__()
        if channels % len(rates):
            raise ValueError(f"AOTBlock: {channels} channels do not split into {len(rates)} branches")
        width = channels // len(rates)
        self.branches = nn.ModuleList(conv_norm_act(channels, width, 3, dilation=r, norm="none", act="relu",
                                                    bias=True, padding_mode="reflect") for r in rates)
        self.fuse = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.gate = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H x W -> N x C x H x W."""
        fused = self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))
        g = torch.sigmoid(gate_norm(self.gate(x))).to(fused.dtype)
        return x * (1 - g) + fused * g
