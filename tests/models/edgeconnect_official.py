"""An independent re-statement of knazeri/edge-connect's ``src/networks.py`` generators, for the layout tests.

It keeps the official module tree (``nn.Sequential`` indices, ``ReflectionPad2d`` layers, ``ResnetBlock.conv_block``)
so that its ``state_dict()`` has the official key names and shapes, and its forward is the official one.
"""

from __future__ import annotations

import torch
from torch import nn


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.spectral_norm(module) if on else module


class OfficialResnetBlock(nn.Module):
    """networks.py ``ResnetBlock(dim, dilation=2, use_spectral_norm)``."""

    def __init__(self, dim: int, dilation: int, sn: bool) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            _sn(nn.Conv2d(dim, dim, 3, padding=0, dilation=dilation, bias=not sn), sn),
            nn.InstanceNorm2d(dim, track_running_stats=False), nn.ReLU(True),
            nn.ReflectionPad2d(1),
            _sn(nn.Conv2d(dim, dim, 3, padding=0, dilation=1, bias=not sn), sn),
            nn.InstanceNorm2d(dim, track_running_stats=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class OfficialGenerator(nn.Module):
    """``EdgeGenerator`` (in 3, out 1, spectral norm, sigmoid) or ``InpaintGenerator`` (in 4, out 3, (tanh+1)/2)."""

    def __init__(self, edge: bool, blocks: int = 8) -> None:
        super().__init__()
        sn, c_in, c_out = (True, 3, 1) if edge else (False, 4, 3)
        self.edge = edge
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3), _sn(nn.Conv2d(c_in, 64, 7, padding=0), sn),
            nn.InstanceNorm2d(64, track_running_stats=False), nn.ReLU(True),
            _sn(nn.Conv2d(64, 128, 4, stride=2, padding=1), sn),
            nn.InstanceNorm2d(128, track_running_stats=False), nn.ReLU(True),
            _sn(nn.Conv2d(128, 256, 4, stride=2, padding=1), sn),
            nn.InstanceNorm2d(256, track_running_stats=False), nn.ReLU(True),
        )
        self.middle = nn.Sequential(*[OfficialResnetBlock(256, 2, sn) for _ in range(blocks)])
        self.decoder = nn.Sequential(
            _sn(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1), sn),
            nn.InstanceNorm2d(128, track_running_stats=False), nn.ReLU(True),
            _sn(nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), sn),
            nn.InstanceNorm2d(64, track_running_stats=False), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(64, c_out, 7, padding=0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder(self.middle(self.encoder(x)))
        return torch.sigmoid(y) if self.edge else (torch.tanh(y) + 1) / 2


def randomise(net: nn.Module, seed: int) -> nn.Module:
    """Random values in every parameter and spectral-norm buffer (u, v), seeded."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.copy_(torch.randn(tensor.shape, generator=g) * 0.05)
    return net.eval()


def official_test_forward(edge_g: OfficialGenerator, inpaint_g: OfficialGenerator, images: torch.Tensor,
                          gray: torch.Tensor, edges: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """edge_connect.py ``test()`` for MODEL 3/4: the edge model's raw output goes to the inpainting model."""
    with torch.no_grad():
        e = edge_g(torch.cat([gray * (1 - masks) + masks, edges * (1 - masks), masks], dim=1))
        return inpaint_g(torch.cat([images * (1 - masks) + masks, e], dim=1))
