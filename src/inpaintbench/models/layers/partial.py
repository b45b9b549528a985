"""Partial convolution (Liu et al., ECCV 2018).

Mask polarity: inpaintbench masks are 1 = hole (see DESIGN.md, "Tensors"). :class:`PartialConv2d` follows
Liu et al. and takes masks with **1 = valid**; a model converts once at its input (``valid = 1 - mask``) and
then passes the valid masks returned by each layer on to the next one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._registry import InpaintbenchError

__all__ = ["PartialConv2d"]


class PartialConv2d(nn.Conv2d):
    """Partial convolution (Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions", 2018).

    For each sliding window with input ``X`` and valid mask ``M`` (**1 = valid**, 0 = hole):

    ``out = W^T (X * M) * sum(1) / sum(M) + b`` where ``sum(M) > 0``, else ``0`` (bias included),

    and the updated mask is 1 where ``sum(M) > 0``. ``sum(1)`` is the number of mask elements in the window:
    ``kernel_h * kernel_w * in_channels`` for a per-channel mask (N x C_in x H x W) and
    ``kernel_h * kernel_w`` for a single-channel mask (N x 1 x H x W, broadcast over the input channels).
    This is the NVIDIA ``partialconv2d.py`` formula (re-implementations that divide by ``sum(M)`` alone differ
    by a constant factor). Zero padding counts as hole, so the border is renormalised too ("partial padding").

    The mask sums are computed in float32 outside autocast with a fixed all-ones kernel and no gradient, so
    they stay exact under bf16 training. The mask kind is taken from the mask's channel count at each call.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size (int or pair).
        stride: stride (int or pair).
        padding: zero padding (int or pair); string paddings are not supported.
        dilation: dilation (int or pair).
        bias: whether to add a learnable bias.
        groups: must be 1 (kept for ``nn.Conv2d`` compatibility).
        padding_mode: must be ``"zeros"``: padded pixels count as hole.

    Raises:
        InpaintbenchError: for ``groups != 1``, a non-zero padding mode or a string padding.

    Example:
        >>> conv = PartialConv2d(3, 8, 3, padding=1)
        >>> valid = torch.ones(2, 1, 16, 16)
        >>> out, new_valid = conv(torch.rand(2, 3, 16, 16), valid)
        >>> tuple(out.shape), tuple(new_valid.shape)
        ((2, 8, 16, 16), (2, 1, 16, 16))

    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True, groups: int = 1,
                 padding_mode: str = "zeros") -> None:
        if groups != 1:
            raise InpaintbenchError(f"PartialConv2d supports groups=1 only, got groups={groups}")
        if padding_mode != "zeros":
            raise InpaintbenchError(f"PartialConv2d pads with zeros (padding counts as hole), got {padding_mode!r}")
        if isinstance(padding, str):
            raise InpaintbenchError(f"PartialConv2d needs an explicit integer padding, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=1, bias=bias, padding_mode="zeros")
        kh, kw = self.kernel_size
        self.register_buffer("mask_kernel", torch.ones(1, in_channels, kh, kw), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """Apply the partial convolution.

        Args:
            x: input N x C_in x H x W.
            mask: valid mask (**1 = valid**), N x 1 x H x W or N x C_in x H x W, values in {0, 1};
                ``None`` means all valid (only the zero padding is treated as hole).

        Returns:
            ``(out, new_mask)``: ``out`` is N x C_out x H' x W' (0 where the window saw no valid element);
            ``new_mask`` is the updated valid mask in ``x``'s dtype, N x 1 x H' x W' for a single-channel
            mask and N x C_out x H' x W' (one plane expanded, no copy) for a per-channel mask, so it can be
            fed to a following partial convolution either way.

        Raises:
            InpaintbenchError: when the mask's shape does not fit ``x``.

        """
        if mask is None:
            mask = torch.ones(x.shape[0], 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        if mask.dim() != 4 or mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:]:
            raise InpaintbenchError(f"PartialConv2d: mask {tuple(mask.shape)} does not fit input {tuple(x.shape)}")
        channels = mask.shape[1]
        if channels not in (1, self.in_channels):
            raise InpaintbenchError(f"PartialConv2d: mask has {channels} channels; expected 1 or {self.in_channels}")
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            kernel = self.mask_kernel[:, :channels].to(torch.float32)
            mask_sum = F.conv2d(mask.detach().to(torch.float32), kernel, None, self.stride, self.padding,
                                self.dilation)
            window = float(kernel[0].numel())  # sum(1): k_h * k_w * channels of the mask
            updated = mask_sum > 0
            ratio = torch.where(updated, window / mask_sum.clamp_min(1e-8), torch.zeros_like(mask_sum))
        raw = F.conv2d(x * mask.to(x.dtype), self.weight, None, self.stride, self.padding, self.dilation)
        out = raw * ratio.to(raw.dtype)
        if self.bias is not None:
            out = (out + self.bias.view(1, -1, 1, 1).to(out.dtype)) * updated.to(out.dtype)
        new_mask = updated.to(x.dtype)
        if channels > 1:
            new_mask = new_mask.expand(-1, self.out_channels, -1, -1)
        return out, new_mask
