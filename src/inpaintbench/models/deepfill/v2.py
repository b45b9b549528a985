"""DeepFill v2: the gated generator, the optional sketch channel, SN-PatchGAN with the hinge loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..._registry import InpaintbenchError
from ..adversarial import hinge_d_loss, hinge_g_loss
from ..base import OptimizerGroup
from ..layers.patchgan import PatchDiscriminator
from .generator import _DeepFill, _GeneratorOptions

__all__ = ["DeepFillV2", "DeepFillV2Config"]


@dataclass(frozen=True)
class DeepFillV2Config(_GeneratorOptions):
    """DeepFill v2: gated generator, optional sketch channel, SN-PatchGAN (official v2 values)."""

    gated: bool = True
    width: int = 24
    refine_mask_input: bool = False
    output: str = "tanh"
    sketch: bool = False  # a sketch input channel (user-guided editing)
    d_width: int = 64  # SN-PatchGAN's first width (64, 128, 256, 256, 256, 256)
    gan_weight: float = 1.0  # gan_loss_alpha
    l1_weight: float = 1.0  # l1_loss_alpha
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.d_width < 1:
            raise InpaintbenchError(f"deepfill-v2 d_width must be >= 1, got {self.d_width}")


class DeepFillV2(_DeepFill):
    """DeepFill v2: gated two-stage generator with contextual attention, SN-PatchGAN, optional sketch channel.

    ``guidance`` is ``"sketch"`` on the class (the family can take sketches) and on instances built with
    ``sketch=true``; an instance without the channel has ``guidance == ""`` and refuses a guide.

    Args:
        config: a :class:`DeepFillV2Config`.

    """

    guidance = "sketch"
    family = "deepfill-v2"

    def __init__(self, config: DeepFillV2Config) -> None:
        super().__init__(config)
        d = config.d_width
        self.discriminator = PatchDiscriminator(4 + int(config.sketch), (d, 2 * d, 4 * d, 4 * d, 4 * d, 4 * d),
                                                (2,) * 6, kernel=5, spectral_norm=True, last_activation=True)

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """SN-PatchGAN, then the generator, one step each; Adam 1e-4, betas (0.5, 0.999).

        Returns:
            The two groups.

        """
        return self._groups(("discriminator",), 1)

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of one update of ``group`` (on the [-1, 1] scale).

        Args:
            group: ``discriminator`` or ``generator``.
            image: ground truth N x 3 x H x W in [0, 1] (sides multiples of 8).
            mask: N x 1 x H x W, 1 = hole.
            step: 0-based step.
            cache: shared by the groups of one step.

        Returns:
            ``discriminator``: ``{"d_hinge"}``; ``generator``: ``{"g_hinge", "l1"}``.

        Raises:
            InpaintbenchError: for an unknown group.

        """
        if group not in ("generator", "discriminator"):
            raise InpaintbenchError(f"deepfill-v2 has no optimizer group {group!r}")
        cfg = self.config
        coarse, refined = self._generated(image, mask, step, cache, True)
        real = image.float() * 2 - 1
        mask = mask.float()
        completed = refined * mask + real * (1 - mask)
        conditions = [mask] + ([cache["sketch"].float()] if cfg.sketch else [])
        if group == "discriminator":
            both = torch.cat([torch.cat([real, *conditions], 1), torch.cat([completed.detach(), *conditions], 1)])
            real_out, fake_out = self.discriminator(both).float().chunk(2)
            return {"d_hinge": 0.5 * hinge_d_loss(real_out, fake_out)}
        fake_out = self.discriminator(torch.cat([completed, *conditions], 1)).float()
        l1 = (coarse - real).abs().mean() + (refined - real).abs().mean()
        return {"g_hinge": cfg.gan_weight * hinge_g_loss(fake_out), "l1": cfg.l1_weight * l1}
