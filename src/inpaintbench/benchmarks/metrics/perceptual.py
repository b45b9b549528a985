"""LPIPS through the lpips package (v0.1 linear layers shipped in its wheel; the trunk from torchvision)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..._weights import load_state_dict

TRUNKS = {"alex": "alexnet", "vgg": "vgg16"}


class LPIPS:
    """Per-image LPIPS v0.1 (Zhang et al. 2018) of images in [0, 1].

    Args:
        net: ``alex`` (the lpips default, used by MAT) or ``vgg`` (used by LaMa).
        weights_dir: where the torchvision trunk file is looked for (default: the torch hub cache).
        verify: check the trunk file's checksum (tests with random trunks pass False).
        device: where to run (default: CUDA when available).

    Raises:
        WeightsUnavailable: the trunk file is missing or fails its checksum.

    """

    def __init__(self, net: str = "alex", weights_dir: str | Path | None = None, verify: bool = True,
                 device: torch.device | None = None) -> None:
        import lpips

        state = load_state_dict(TRUNKS[net], weights_dir, verify)
        with warnings.catch_warnings():  # lpips 0.1.4 still passes torchvision's deprecated `pretrained=`
            warnings.simplefilter("ignore")
            # pnet_rand builds the trunk without downloading; its weights are then loaded from our file
            model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        _load_trunk(model.net, state)
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.net = net

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image distances (N,) of N x 3 x H x W images in [0, 1]."""
        out = self.model(pred.to(self.device).float(), target.to(self.device).float(), normalize=True)
        return out.flatten().cpu()


def _load_trunk(trunk: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy torchvision ``features.<i>.*`` weights into lpips' slices, whose children keep the index ``i``."""
    for slice_module in trunk.children():
        for index, layer in slice_module.named_children():
            for param in ("weight", "bias"):
                if getattr(layer, param, None) is not None:
                    getattr(layer, param).data.copy_(state[f"features.{index}.{param}"])
