"""DeepFill v1: the generator with plain convolutions, WGAN-GP global and local critics, spatially discounted L1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..._registry import InpaintbenchError
from ..adversarial import gradient_penalty, wgan_d_loss, wgan_g_loss
from ..base import OptimizerGroup
from ..glcic import crop_patches, hole_patch_origins
from ..layers.patchgan import PatchDiscriminator
from .generator import MULTIPLE, _DeepFill, _GeneratorOptions

__all__ = ["DeepFillV1", "DeepFillV1Config", "spatial_discount"]


@dataclass(frozen=True)
class DeepFillV1Config(_GeneratorOptions):
    """DeepFill v1: generator options, WGAN-GP critics and loss weights (official v1 values; gamma: the paper's)."""

    size: int = 256  # training image side (the critics' dense layers follow it)
    local_size: int = 0  # side of the local critic's patch; 0 = size // 2
    critic_width: int = 64  # channels of the critics' first convolution
    critic_steps: int = 5  # critic updates per generator update
    gan_weight: float = 0.001  # GAN_LOSS_ALPHA
    global_weight: float = 1.0  # GLOBAL_WGAN_LOSS_ALPHA
    gp_weight: float = 10.0  # WGAN_GP_LAMBDA
    l1_weight: float = 1.2  # L1_LOSS_ALPHA (discounted L1 of the hole)
    ae_weight: float = 1.2  # AE_LOSS_ALPHA (L1 of the known pixels)
    coarse_weight: float = 1.2  # COARSE_L1_ALPHA (the coarse output's share of both)
    gamma: float = 0.99  # spatial discount (paper; official config 0.9)
    betas: tuple[float, float] = (0.5, 0.9)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.size < 16 or self.size % MULTIPLE:
            raise InpaintbenchError(f"deepfill-v1 size must be a multiple of {MULTIPLE} and >= 16, got {self.size}")
        if not 0 <= self.local_size <= self.size or self.local_size % MULTIPLE:
            raise InpaintbenchError(f"deepfill-v1 local_size must be 0 or a multiple of {MULTIPLE} <= size, got "
                                    f"{self.local_size}")
        if self.critic_steps < 1 or self.critic_width < 1:
            raise InpaintbenchError("deepfill-v1 needs critic_steps >= 1 and critic_width >= 1")
        if not 0 < self.gamma <= 1:
            raise InpaintbenchError(f"deepfill-v1 gamma must be in (0, 1], got {self.gamma}")

    @property
    def patch(self) -> int:
        """Side of the local critic's patch."""
        return self.local_size or self.size // 2


def spatial_discount(mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Spatially discounted weights of the hole: ``gamma ** l``, ``l`` = distance to the nearest known pixel.

    ``l`` is the chessboard distance minus one (0 on the hole's border); pixels outside the image count as known.

    Args:
        mask: N x 1 x H x W, 1 = hole.
        gamma: the discount (paper 0.99, official config 0.9).

    Returns:
        N x 1 x H x W weights, 0 on known pixels.

    Example:
        >>> m = torch.zeros(1, 1, 7, 7)
        >>> m[..., 1:6, 1:6] = 1
        >>> spatial_discount(m, 0.5)[0, 0, 3, 1:6].tolist()
        [1.0, 0.5, 0.25, 0.5, 1.0]

    """
    with torch.no_grad():
        inside = (mask > 0.5).float()
        weights = torch.zeros_like(inside)
        # a fixed number of 3x3 erosions (enough for a hole covering the image) rather than "until empty", which
        # would read a value on the host at every erosion
        for level in range((min(mask.shape[-2:]) + 1) // 2):
            eroded = 1 - F.max_pool2d(F.pad(1 - inside, (1, 1, 1, 1), value=1.0), 3, stride=1)
            weights = weights + (gamma ** level) * (inside - eroded)
            inside = eroded
    return weights


class _Critic(nn.Module):
    """A WGAN critic of DeepFill v1: conv5x5 stride-2 layers with LeakyReLU, flattened, one dense output."""

    def __init__(self, widths: tuple[int, ...], side: int) -> None:
        super().__init__()
        self.features = PatchDiscriminator(3, widths, (2,) * len(widths), kernel=5, last_activation=True)
        for _ in widths:
            side = (side + 1) // 2
        self.fc = nn.Linear(widths[-1] * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x 1 critic values."""
        return self.fc(self.features(x).flatten(1))


class DeepFillV1(_DeepFill):
    """DeepFill v1: two-stage generator with contextual attention, WGAN-GP global and local critics.

    Args:
        config: a :class:`DeepFillV1Config`.

    """

    guidance = ""
    family = "deepfill-v1"

    def __init__(self, config: DeepFillV1Config) -> None:
        super().__init__(config)
        c = config.critic_width
        self.critic_global = _Critic((c, 2 * c, 4 * c, 4 * c), config.size)
        self.critic_local = _Critic((c, 2 * c, 4 * c, 8 * c), config.patch)

    def prepare_training(self, image_size: int) -> None:
        """The critics' dense layers fix the training size: it must be the images' side.

        Args:
            image_size: the training images' side.

        Raises:
            InpaintbenchError: with the option that fixes it (``-O size=...``).

        """
        super().prepare_training(image_size)
        if image_size != self.config.size:
            raise InpaintbenchError(f"deepfill-v1's critics are built for {self.config.size}x{self.config.size} "
                                    f"images and the dataset's are {image_size}x{image_size}: add -O size={image_size}")

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """Critics (every step), then the generator (every ``critic_steps`` steps); Adam 1e-4, betas (0.5, 0.9).

        Returns:
            The two groups.

        """
        return self._groups(("critic_global", "critic_local"), self.config.critic_steps)

    def _critics(self, image: torch.Tensor, origins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        patch = crop_patches(image, origins, self.config.patch)
        return self.critic_global(image).float(), self.critic_local(patch).float()

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of one update of ``group`` (all on the [-1, 1] scale).

        Args:
            group: ``discriminator`` (both critics) or ``generator``.
            image: ground truth N x 3 x size x size in [0, 1].
            mask: N x 1 x size x size, 1 = hole.
            step: 0-based step (the generator trains when ``step % critic_steps == 0``).
            cache: shared by the groups of one step.

        Returns:
            ``discriminator``: ``{"d_wgan", "d_gp"}``; generator: ``{"g_wgan", "l1_hole", "l1_known"}``.

        Raises:
            InpaintbenchError: for an unknown group or images of another size than ``config.size``.

        """
        if group not in ("generator", "discriminator"):
            raise InpaintbenchError(f"deepfill-v1 has no optimizer group {group!r}")
        cfg = self.config
        if image.shape[-2:] != (cfg.size, cfg.size):
            raise InpaintbenchError(f"deepfill-v1's critics were built for {cfg.size}x{cfg.size} images, got "
                                    f"{image.shape[-2]}x{image.shape[-1]}; set size={image.shape[-1]}")
        coarse, refined = self._generated(image, mask, step, cache, step % cfg.critic_steps == 0)
        real = image.float() * 2 - 1
        mask = mask.float()
        completed = refined * mask + real * (1 - mask)
        origins = cache.setdefault("deepfill_origins", hole_patch_origins(mask, cfg.patch))
        if group == "discriminator":
            fake = completed.detach()
            real_g, real_l = self._critics(real, origins)
            fake_g, fake_l = self._critics(fake, origins)
            patch = cfg.patch
            local = (crop_patches(real, origins, patch), crop_patches(fake, origins, patch),
                     crop_patches(mask, origins, patch))
            gp = (gradient_penalty(lambda x: self.critic_global(x).float(), real, fake, cfg.gp_weight, mask=mask)
                  + gradient_penalty(lambda x: self.critic_local(x).float(), local[0], local[1], cfg.gp_weight,
                                     mask=local[2]))
            return {"d_wgan": wgan_d_loss(real_g, fake_g) + wgan_d_loss(real_l, fake_l), "d_gp": gp}
        if "discount" not in cache:
            cache["discount"] = spatial_discount(mask, cfg.gamma)
        discount, known = cache["discount"], 1 - mask
        fake_g, fake_l = self._critics(completed, origins)

        def hole_l1(x: torch.Tensor) -> torch.Tensor:
            return ((x - real).abs().mean(1, keepdim=True) * discount).sum() / mask.sum().clamp_min(1)

        def known_l1(x: torch.Tensor) -> torch.Tensor:
            return ((x - real).abs().mean(1, keepdim=True) * known).sum() / known.sum().clamp_min(1)

        return {"g_wgan": cfg.gan_weight * (cfg.global_weight * wgan_g_loss(fake_g) + wgan_g_loss(fake_l)),
                "l1_hole": cfg.l1_weight * (cfg.coarse_weight * hole_l1(coarse) + hole_l1(refined)),
                "l1_known": cfg.ae_weight * (cfg.coarse_weight * known_l1(coarse) + known_l1(refined))}
