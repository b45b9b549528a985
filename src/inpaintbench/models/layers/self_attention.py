"""Short+long term attention (PICNet, Zheng, Cham, Cai, CVPR 2019: ``model/base_function.py`` ``Auto_Attn``).

Short term: self-attention within the decoder's features ``x`` (N = H x W positions): a 1x1 convolution to C/4
channels serves as both query and key, ``A = softmax_j(q_i . q_j)``, the attended features ``x A^T`` are scaled by a
learnable ``gamma`` (initialised to 0) and added to ``x``.

Long term: the same attention map copies the encoder's features ``pre`` of the same scale ("context flow") into the
holes: ``flow = alpha * hole * (pre A^T) + (1 - hole) * pre`` with a learnable ``alpha`` (0 at start), and a
residual block (spectral norm) fuses ``cat(short, flow)`` back to C channels. PICNet's mask is 1 on visible pixels
(``alpha (1 - mask) flow + mask pre``); here ``hole`` is inpaintbench's 1 = hole, so the formula reads the same.
Without ``pre`` only the short-term part runs (PICNet's discriminator use).
"""

from __future__ import annotations

import torch
from torch import nn

from .residual import PicnetResidualBlock

__all__ = ["ShortLongAttention"]


class ShortLongAttention(nn.Module):
    """PICNet's short+long term attention on C-channel features.

    Args:
        channels: C, the channels of ``x``.
        context_channels: the channels of ``pre`` (default C, as PICNet).
        slope: LeakyReLU slope of the fusing residual block (PICNet: 0.1).
        spectral_norm: spectral norm on the fusing block's convolutions (PICNet: on; the query conv has none).
        long_term: build the fusing block for the long-term (context flow) part.

    Example:
        >>> attn = ShortLongAttention(8)
        >>> x, pre, hole = torch.rand(2, 8, 6, 6), torch.rand(2, 8, 6, 6), torch.zeros(2, 1, 6, 6)
        >>> out, attention = attn(x, pre, hole)
        >>> tuple(out.shape), tuple(attention.shape)
        ((2, 8, 6, 6), (2, 36, 36))

    """

    def __init__(self, channels: int, context_channels: int | None = None, slope: float = 0.1,
                 spectral_norm: bool = True, long_term: bool = True) -> None:
        super().__init__()
        context = channels if context_channels is None else context_channels
        self.query = nn.Conv2d(channels, max(channels // 4, 1), 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.fuse = (PicnetResidualBlock(channels + context, channels, slope=slope, spectral_norm=spectral_norm)
                     if long_term else None)

    def forward(self, x: torch.Tensor, pre: torch.Tensor | None = None, hole: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend within ``x`` and, with ``pre`` and ``hole``, copy ``pre``'s context into the holes.

        Args:
            x: N x C x H x W decoder features.
            pre: N x context_channels x H x W encoder features of the same scale, or None (short term only).
            hole: N x 1 x H x W, 1 = hole (needed with ``pre``).

        Returns:
            ``(out, attention)``: N x C x H x W, and the N x HW x HW attention map (rows sum to 1).

        Raises:
            ValueError: ``pre`` without ``hole`` or without the fusing block.

        """
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # N x C/4 x HW, also the key
        attention = torch.softmax(torch.bmm(q.transpose(1, 2), q), dim=-1)  # N x HW x HW
        out = self.gamma * torch.bmm(x.flatten(2), attention.transpose(1, 2)).view(n, c, h, w) + x
        if pre is None:
            return out, attention
        if hole is None or self.fuse is None:
            raise ValueError("the long-term part needs the hole mask and a block built with long_term=True")
        flow = torch.bmm(pre.flatten(2), attention.transpose(1, 2)).view(n, -1, h, w)
        flow = self.alpha * hole * flow + (1 - hole) * pre
        return self.fuse(torch.cat([out, flow], dim=1)), attention
