"""CNN baseline: a context-encoder-style encoder-decoder with the mask as a fourth input channel.

Pathak et al. (CVPR 2016): strided 4x4 convolutions with BatchNorm and LeakyReLU(0.2) down to 4x4, and
transposed 4x4 convolutions with BatchNorm and ReLU back to full size. Differences, on purpose: the mask is
an input channel and the whole image is predicted (the harness composites), the output is a sigmoid in
[0, 1], and the loss is the reconstruction loss only (L1 on hole and known pixels), without the adversarial
term that the GAN issue adds. By default the 4x4 feature map is decoded directly; ``bottleneck=N`` adds
the Context Encoder's 4x4 "valid" convolution to an N-vector and back (the paper: 4000). On the small
sample dataset the vector bottleneck generalises worse (see the notes in models/README.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._registry import InpaintbenchError
from .base import InpaintModel, hole_valid_l1, register_model


@dataclass(frozen=True)
class CNNConfig:
    """Encoder-decoder hyper-parameters."""

    size: int = 64  # input side; a power of two >= 8 (the encoder halves it down to 4x4)
    width: int = 32  # channels of the first layer, doubled per level, capped at 8*width
    bottleneck: int = 0  # 0 decodes the 4x4 map; N > 0 adds a 1x1 bottleneck of N channels (Context Encoder: 4000)
    hole_weight: float = 6.0  # L1 weight on hole pixels
    valid_weight: float = 1.0  # L1 weight on known pixels

    def __post_init__(self) -> None:
        if self.size < 8 or self.size & (self.size - 1):
            raise InpaintbenchError(f"cnn size must be a power of two >= 8, got {self.size}")


class CNN(InpaintModel):
    """Context-encoder-style encoder-decoder over [masked image, mask]."""

    trainable = True

    def __init__(self, config: CNNConfig) -> None:
        super().__init__(config)
        levels = int(math.log2(config.size)) - 2
        chans = [min(config.width * 2**i, config.width * 8) for i in range(levels)]
        enc: list[nn.Module] = []
        c_in = 4
        for i, c in enumerate(chans):
            enc += [nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0)]
            enc += [nn.LeakyReLU(0.2, inplace=True)] if i == 0 else [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        dec: list[nn.Module] = []
        if config.bottleneck:
            enc += [nn.Conv2d(c_in, config.bottleneck, 4, 1, 0, bias=False), nn.BatchNorm2d(config.bottleneck),
                    nn.LeakyReLU(0.2, inplace=True)]
            dec += [nn.ConvTranspose2d(config.bottleneck, chans[-1], 4, 1, 0, bias=False),
                    nn.BatchNorm2d(chans[-1]), nn.ReLU(inplace=True)]
        for c_from, c_to in zip(chans[::-1], chans[::-1][1:], strict=False):
            dec += [nn.ConvTranspose2d(c_from, c_to, 4, 2, 1, bias=False), nn.BatchNorm2d(c_to), nn.ReLU(inplace=True)]
        dec += [nn.ConvTranspose2d(chans[0], 3, 4, 2, 1), nn.Sigmoid()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def fixed_size(self) -> int:
        """The cnn works at ``config.size`` only."""
        return self.config.size

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encode [masked image, mask], decode the full image."""
        h, w = image.shape[-2:]
        if (h, w) != (self.config.size, self.config.size):
            raise InpaintbenchError(f"cnn was built for {self.config.size}x{self.config.size} images, got {h}x{w}")
        return self.decoder(self.encoder(torch.cat([image * (1 - mask), mask], dim=1)))

    def loss(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """L1 on hole and known pixels with the configured weights."""
        return hole_valid_l1(pred, image, mask, self.config.hole_weight, self.config.valid_weight)


register_model("cnn", CNN, CNNConfig(), paper="Pathak et al. 2016 (Context Encoder), reconstruction loss only",
               description="encoder-decoder with the mask as input channel")
register_model("cnn-tiny", CNN, CNNConfig(size=32, width=8), paper="-", description="CPU test size")
