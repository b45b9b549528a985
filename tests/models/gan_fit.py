"""Shared helpers of the GAN family tests: real photo crops, masks, and the Trainer's step order in small."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import inpaintbench as ib
from inpaintbench.masks import make_masks


def photos(astronaut, size: int, n: int = 4) -> torch.Tensor:
    """``n`` 256-px crops of scikit-image's astronaut resized to ``size`` (real structure to overfit)."""
    photo = torch.from_numpy(astronaut).permute(2, 0, 1).float()
    crops = [photo[:, y:y + 256, x:x + 256] for y, x in [(0, 0), (0, 256), (256, 0), (256, 256)][:n]]
    return F.interpolate(torch.stack(crops), size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)


def masks(size: int, n: int, seed: int = 0, level: str = "L2") -> torch.Tensor:
    """``n`` masks of ``level`` as float N x 1 x size x size."""
    return make_masks(level, n, size=size, seed=seed).float()


def hole_l1(model, image: torch.Tensor, mask: torch.Tensor) -> float:
    """The model's mean hole L1 in eval mode (left in training mode after)."""
    model.eval()
    with torch.no_grad():
        value = ib.metrics.l1_hole(model(image * (1 - mask), mask), image, mask).mean().item()
    model.train()
    return value


def fit(model, image: torch.Tensor, mask: torch.Tensor, steps: int) -> None:
    """What the Trainer does per step: active groups in order, each on steps its ``every`` divides, Adam with
    the group's lr and betas, gradients into the group's parameters only, one cache per step."""
    groups = model.optimizer_groups()
    params = {g.name: [p for m in g.modules for p in getattr(model, m).parameters()] for g in groups}
    opts = {g.name: torch.optim.Adam(params[g.name], lr=g.lr, betas=g.betas) for g in groups}
    every = {g.name: g.every for g in groups}
    model.train()
    for step in range(steps):
        cache: dict = {}
        for name in model.active_groups(step):
            if step % every[name]:
                continue
            opts[name].zero_grad()
            sum(model.training_losses(name, image, mask, step, cache).values()).backward(inputs=params[name])
            opts[name].step()
