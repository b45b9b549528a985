"""A toy two-network model for Trainer tests: a linear generator and a linear critic, no BatchNorm.

Small enough that a step takes milliseconds; it records what each training call saw, so tests can check
which data a process trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from inpaintbench.models.base import InpaintModel, OptimizerGroup


@dataclass(frozen=True)
class ToyConfig:
    size: int = 32
    critic_every: int = 1  # the generator steps every `generator_every` steps
    generator_every: int = 2
    generator_only_until: int = 0  # a phase: before this step only the generator trains
    nan_at: int = -1  # make the generator loss NaN at this step (tests the guard)


class ToyGAN(InpaintModel):
    trainable = True

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.generator = nn.Conv2d(4, 3, 3, padding=1)
        self.critic = nn.Sequential(nn.Conv2d(3, 4, 4, 4), nn.Flatten(), nn.LazyLinear(1))
        self.critic(torch.zeros(1, 3, config.size, config.size))  # materialise the lazy layer
        self.seen: list[tuple[int, str, float]] = []

    def forward(self, image, mask):
        return torch.sigmoid(self.generator(torch.cat([image * (1 - mask), mask], 1)))

    def optimizer_groups(self):
        return (OptimizerGroup("critic", ("critic",), lr=1e-3, every=self.config.critic_every),
                OptimizerGroup("generator", ("generator",), lr=1e-2, every=self.config.generator_every))

    def active_groups(self, step):
        return ("generator",) if step < self.config.generator_only_until else ("critic", "generator")

    def training_losses(self, group, image, mask, step, cache):
        self.seen.append((step, group, float(image.sum())))
        if "pred" not in cache:
            cache["pred"] = self(image * (1 - mask), mask)
        pred = cache["pred"]
        if group == "critic":
            return {"wgan": self.critic(pred.detach()).mean() - self.critic(image).mean()}
        l1 = ((pred - image).abs() * mask).mean()
        if step == self.config.nan_at:
            l1 = l1 * float("nan")
        return {"l1": l1, "adv": -1e-3 * self.critic(pred).mean()}
