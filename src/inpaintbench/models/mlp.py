"""MLP baseline: fully connected layers on the flattened masked image and mask (no spatial prior).

In the lineage of Burger et al. (CVPR 2012) and Koehler et al. (GCPR 2014, mask as input); see
shared/reference/model_anchors.md section 11.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._registry import InpaintbenchError
from .base import InpaintModel, hole_valid_l1, register_model


@dataclass(frozen=True)
class MLPConfig:
    """MLP hyper-parameters."""

    size: int = 64  # input side in pixels; the MLP works at this resolution only
    hidden: tuple[int, ...] = (1024, 1024)  # widths of the hidden layers
    hole_weight: float = 6.0  # L1 weight on hole pixels
    valid_weight: float = 1.0  # L1 weight on known pixels


class MLP(InpaintModel):
    """Input: flatten(concat[masked image, mask]) (4*S*S); GELU hidden layers; sigmoid output 3*S*S."""

    trainable = True

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        widths = [4 * config.size**2, *config.hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=False):
            layers += [nn.Linear(a, b), nn.GELU()]
        layers += [nn.Linear(widths[-1], 3 * config.size**2), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def fixed_size(self) -> int:
        """The mlp works at ``config.size`` only."""
        return self.config.size

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Map the flattened [masked image, mask] to the flattened image."""
        n, _, h, w = image.shape
        if (h, w) != (self.config.size, self.config.size):
            raise InpaintbenchError(f"mlp was built for {self.config.size}x{self.config.size} images, got {h}x{w}")
        x = torch.cat([image * (1 - mask), mask], dim=1).flatten(1)
        return self.net(x).view(n, 3, h, w)

    def loss(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """L1 on hole and known pixels with the configured weights."""
        return hole_valid_l1(pred, image, mask, self.config.hole_weight, self.config.valid_weight)


register_model("mlp", MLP, MLPConfig(), paper="Burger et al. 2012; Koehler et al. 2014",
               description="fully connected on flattened masked image + mask")
register_model("mlp-tiny", MLP, MLPConfig(size=32, hidden=(256,)), paper="-", description="CPU test size")
