"""U-Net baseline: an encoder-decoder with skip connections and the mask as a fourth input channel.

Ronneberger et al. (MICCAI 2015): per level two 3x3 convolutions with ReLU, 2x2 max-pooling down, a 2x2
"up-convolution" (transposed, stride 2) that halves the channels, concatenation with the encoder features of
the same level, two 3x3 convolutions, and a 1x1 output convolution. Differences, on purpose:

* "same" padding (the paper's convolutions are unpadded and its output smaller than its input), so the output
  has the input's size; inputs whose sides are not a multiple of ``2**depth`` are padded (replicate) and the
  output cropped back, so any size works;
* BatchNorm after every 3x3 convolution (``norm="batch"``, as most PyTorch U-Nets; ``norm="none"`` is the
  paper's plain network);
* channels double per level from ``width`` and are capped at ``max_width``; the default (depth 5, 64 -> 512)
  has a bottleneck of 8x8 at 256x256, so its receptive field spans the image (pix2pix's U-Net generator caps
  at 512 the same way; the paper's depth 4 reaches 1024 channels at 16x16);
* input ``[image * (1 - mask), mask]`` (holes filled with 0, DESIGN.md "Tensors"), sigmoid output in [0, 1],
  the whole image predicted (the harness composites);
* loss: L1 on the hole and on the known pixels with PConv's weights, hole 6 and valid 1 (Liu et al. 2018;
  naoto0804 ``opt.py`` LAMBDA_DICT = mmagic ``base_pconv.py``; model_anchors.md section 5), no perceptual,
  style or adversarial term: the U-Net is the reconstruction-only baseline of the encoder-decoders with skips.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .base import InpaintModel, hole_valid_l1, register_model
from .layers import conv_norm_act

__all__ = ["UNet", "UNetConfig"]


@dataclass(frozen=True)
class UNetConfig:
    """U-Net hyper-parameters."""

    depth: int = 5  # number of 2x downsamplings (the bottleneck is at 1/2**depth of the input side)
    width: int = 64  # channels of the first level, doubled per level
    max_width: int = 512  # cap on the channels of a level
    norm: str = "batch"  # "batch", "instance" or "none" after each 3x3 convolution
    hole_weight: float = 6.0  # L1 weight on hole pixels (PConv)
    valid_weight: float = 1.0  # L1 weight on known pixels (PConv)

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise InpaintbenchError(f"unet depth must be >= 1, got {self.depth}")
        if self.width < 1 or self.max_width < self.width:
            raise InpaintbenchError(f"unet needs 1 <= width <= max_width, got {self.width} and {self.max_width}")
        if self.norm not in ("batch", "instance", "none"):
            raise InpaintbenchError(f"unet norm must be batch, instance or none, got {self.norm!r}")


def _double_conv(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by ``norm`` and ReLU."""
    return nn.Sequential(conv_norm_act(c_in, c_out, 3, norm=norm), conv_norm_act(c_out, c_out, 3, norm=norm))


class UNet(InpaintModel):
    """U-Net over ``[masked image, mask]`` with L1 hole/valid loss.

    Args:
        config: a :class:`UNetConfig`.

    Example:
        >>> model = UNet(UNetConfig(depth=2, width=4, max_width=8))
        >>> tuple(model(torch.zeros(1, 3, 20, 20), torch.zeros(1, 1, 20, 20)).shape)
        (1, 3, 20, 20)

    """

    trainable = True

    def __init__(self, config: UNetConfig) -> None:
        super().__init__(config)
        chans = [min(config.width * 2**i, config.max_width) for i in range(config.depth + 1)]
        self.down = nn.ModuleList()
        c_in = 4
        for c in chans[:-1]:
            self.down.append(_double_conv(c_in, c, config.norm))
            c_in = c
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(chans[-2], chans[-1], config.norm)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for c_deep, c_skip in zip(chans[:0:-1], chans[-2::-1], strict=True):
            self.up.append(nn.ConvTranspose2d(c_deep, c_skip, 2, stride=2))
            self.dec.append(_double_conv(2 * c_skip, c_skip, config.norm))
        self.head = nn.Conv2d(chans[0], 3, 1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predict the full image from ``[image * (1 - mask), mask]``.

        Args:
            image: N x 3 x H x W in [0, 1] (holes may hold anything: they are zeroed here).
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W in [0, 1].

        """
        h, w = image.shape[-2:]
        x = torch.cat([image * (1 - mask), mask], dim=1)
        multiple = 2**self.config.depth
        pad_h, pad_w = -h % multiple, -w % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return torch.sigmoid(self.head(x))[..., :h, :w]

    def loss(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """L1 on hole and known pixels with the configured weights (PConv: 6 and 1).

        Args:
            pred: the prediction N x 3 x H x W.
            image: the ground truth.
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            ``{"l1_hole": ..., "l1_valid": ...}``, already weighted.

        """
        return hole_valid_l1(pred, image, mask, self.config.hole_weight, self.config.valid_weight)


register_model("unet", UNet, UNetConfig(),
               paper="Ronneberger et al. 2015 (U-Net), same padding + BN, L1 hole 6 / valid 1 as PConv",
               description="U-Net with the mask as input channel, depth 5, 64->512 channels, for 256x256")
register_model("unet-tiny", UNet, UNetConfig(depth=3, width=8, max_width=32), paper="-",
               description="CPU test size (any input size)")
