"""AOT-GAN: Aggregated Contextual Transformations for High-Resolution Image Inpainting (Zeng et al., TVCG 2022).

Sources (model_anchors.md sections 10 and 14): ``researchmm/AOT-GAN-for-Inpainting`` ``src/model/aotgan.py``,
``src/model/common.py`` (init), ``src/loss/loss.py``, ``src/loss/common.py`` (VGG19, Gaussian blur),
``src/trainer/trainer.py``, ``src/utils/option.py``, ``src/test.py``; mmagic ``models/editors/aotgan/*``,
``models/archs/smpatch_disc.py`` and ``configs/aot_gan/aot-gan_smpgan_4xb4_places-512x512.py``.

Conventions (the official ``test.py``; mmagic's pipeline is the same): the image is mapped to ``x = 2 * img - 1``,
holes are painted white, ``x * (1 - m) + m``, the generator sees ``cat(x, m)`` and its tanh output ``y`` becomes
``(clamp(y, -1, 1) + 1) / 2``. RGB order: the official code and mmagic's AOT config both load RGB for training
(mmagic's 0.x test pipeline flips it to BGR with ``to_rgb=True`` and its 1.x ``InpaintingInferencer`` loads BGR:
both differ from the config the weights were trained with, so the layouts below run the weights on RGB).

Generator (15.20M parameters, 108 keys as the official ``G*.pt``): reflection pad 3 + conv 7x7 4 -> 64, conv 4x4
stride 2 -> 128, conv 4x4 stride 2 -> 256 (ReLU, no normalisation); 8 :class:`~.layers.aot.AOTBlock` with rates 1,
2, 4, 8; two (bilinear x2 with ``align_corners=True``, conv 3x3, ReLU) to 128 and 64; conv 3x3 -> 3; tanh. Weights
are initialised N(0, 0.02) with zero biases (``BaseNetwork.init_weights``).

Discriminator (SM-PatchGAN, a :class:`~.layers.patchgan.PatchDiscriminator` configuration): 4x4 convs 64, 128,
256 (stride 2), 512 (stride 1) with spectral norm and no bias, LeakyReLU(0.2), then a plain 4x4 conv to 1 channel.
It sees the composite ``(1 - m) * gt + m * pred`` and the truth, both in [-1, 1]. The spectrally normalised convs
keep torch's default init (the official ``init_weights`` writes into their derived ``weight``, which the next
forward overwrites); the last conv gets N(0, 0.02).

Adversarial loss ``smgan``: the discriminator's map is resized bilinearly (``align_corners=True``) to the image,
the soft mask is ``blur(m)``, a 71x71 Gaussian of sigma 10 with zero padding. The paper's labels are the default
(``sm_labels="paper"``): real -> 1, fake -> ``1 - blur(m)`` (the paper writes ``blur(1 - m)``; we blur the mask
and subtract, which is the same away from the border, where the zero padding of ``blur(1 - m)`` would mark known
pixels as half fake); the generator minimises ``mean((D(z) - 1)^2 * m) / mean(m)``. The official code inverts the
labels (AOT-GAN issue #2, PR #11, neither merged): real -> 0, fake -> ``blur(m)``, generator target 1, and its
mask weighting multiplies an already averaged MSE, so it cancels: ``sm_labels="official"`` reproduces exactly
that (generator loss ``mean((D(z) - 1)^2)`` over every position). ``adversarial="nsgan"`` is the plain PatchGAN of
the paper's ablation (the official ``nsgan`` class: non-saturating softplus on every patch, composite = fake).

Generator loss (``--rec_loss 1*L1+250*Style+0.1*Perceptual --adv_weight 0.01``), reconstruction terms on the raw
prediction: L1 on [-1, 1] values (twice the [0, 1] L1), style (Gram L1 of VGG19 relu2_2, relu3_4, relu4_4,
relu5_2) and perceptual (L1 of relu1_1 ... relu5_1) on ImageNet-normalised [0, 1] images, plus 0.01 x the
adversarial term on the composite. The discriminator loss is not weighted. Adam lr 1e-4 for both, betas
(0.5, 0.999); batch 8 at 512x512 for 1e6 iterations in the paper's code.

Choices and deviations:

* update order: generator, then discriminator, from the same prediction (the official code steps both after one
  forward, so the generator's adversarial term sees the discriminator before its update, as here). The official
  backward of the generator's loss also leaves gradients in the discriminator, which its optimiser then applies
  along with the discriminator loss's; our Trainer gives each group only its own loss's gradients;
* the VGG19 of the losses has torchvision's ImageNet weights (``inpaintbench weights import vgg19-dcbb9e9d.pth``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .adversarial import nsgan_d_loss, nsgan_g_loss
from .base import InpaintModel, OptimizerGroup, register_model
from .checkpoints import map_keys, register_layout, strip_prefix, unwrap
from .layers.aot import AOTBlock
from .layers.common import conv_norm_act
from .layers.patchgan import PatchDiscriminator
from .losses import (
    EDGECONNECT_PERCEPTUAL_LAYERS,
    EDGECONNECT_STYLE_LAYERS,
    LossNetworkSlot,
    VGGFeatures,
    perceptual_loss,
    style_loss,
)

__all__ = ["AOTGAN", "AOTGANConfig", "AOTGenerator", "gaussian_blur", "smgan_d_loss", "smgan_g_loss"]

_ADVERSARIAL = ("smgan", "nsgan")
_LABELS = ("paper", "official")


@dataclass(frozen=True)
class AOTGANConfig:
    """AOT-GAN's generator, SM-PatchGAN, losses and optimiser (defaults: the official code's)."""

    blocks: int = 8  # --block_num
    rates: tuple[int, ...] = (1, 2, 4, 8)  # --rates
    width: int = 64  # channels of the first conv; 2x and 4x after the two downsamplings
    d_width: int = 64  # channels of the discriminator's first conv
    adversarial: str = "smgan"  # smgan (SM-PatchGAN) or nsgan (plain PatchGAN, the paper's ablation)
    sm_labels: str = "paper"  # paper or official (the code's inverted labels)
    blur_kernel: int = 71  # side of the Gaussian that softens the mask
    blur_sigma: float = 10.0
    l1_weight: float = 1.0
    style_weight: float = 250.0
    perceptual_weight: float = 0.1
    adversarial_weight: float = 0.01  # --adv_weight
    lr: float = 1e-4  # --lrg = --lrd
    betas: tuple[float, float] = (0.5, 0.999)
    vgg_weights_dir: str | None = None  # folder with torchvision's vgg19-dcbb9e9d.pth (the torch hub cache is searched)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rates", tuple(self.rates))
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.blocks < 0 or self.width < 1 or self.d_width < 1 or not self.rates or (4 * self.width) % len(
                self.rates):
            raise InpaintbenchError("aot-gan needs blocks >= 0, widths >= 1 and 4 * width divisible by the rates")
        if self.adversarial not in _ADVERSARIAL:
            raise InpaintbenchError(f"aot-gan adversarial must be one of {', '.join(_ADVERSARIAL)}, "
                                    f"got {self.adversarial!r}")
        if self.sm_labels not in _LABELS:
            raise InpaintbenchError(f"aot-gan sm_labels must be one of {', '.join(_LABELS)}, got {self.sm_labels!r}")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0 or self.blur_sigma <= 0:
            raise InpaintbenchError("aot-gan needs an odd blur_kernel and a positive blur_sigma")


class AOTGenerator(nn.Module):
    """The generator on AOT-GAN's conventions: ``cat(x, m)`` with x in [-1, 1] (holes +1) -> tanh output.

    ``encoder[0..2]`` (conv, ReLU), ``blocks[i]`` (:class:`~.layers.aot.AOTBlock`), ``decoder[0..1]`` (conv, ReLU
    after a bilinear x2) and ``head`` (conv 3x3 to RGB). H and W must be multiples of 4.

    Args:
        blocks: AOT blocks.
        rates: dilation rates of each block.
        width: channels of the first conv.

    """

    def __init__(self, blocks: int = 8, rates: tuple[int, ...] = (1, 2, 4, 8), width: int = 64) -> None:
        super().__init__()
        w1, w2, w4 = width, 2 * width, 4 * width
        self.encoder = nn.Sequential(
            conv_norm_act(4, w1, 7, padding=3, norm="none", bias=True, padding_mode="reflect"),
            conv_norm_act(w1, w2, 4, stride=2, padding=1, norm="none", bias=True),
            conv_norm_act(w2, w4, 4, stride=2, padding=1, norm="none", bias=True))
        self.blocks = nn.Sequential(*[AOTBlock(w4, rates) for _ in range(blocks)])
        self.decoder = nn.ModuleList([conv_norm_act(w4, w2, 3, norm="none", bias=True),
                                      conv_norm_act(w2, w1, 3, norm="none", bias=True)])
        self.head = nn.Conv2d(w1, 3, 3, padding=1)
        _init_normal(self)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Tanh output N x 3 x H x W from ``x`` (N x 3 x H x W in [-1, 1], holes +1) and ``mask``."""
        h = self.blocks(self.encoder(torch.cat([x, mask], dim=1)))
        for layer in self.decoder:
            h = layer(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=True))
        return torch.tanh(self.head(h))


def _init_normal(module: nn.Module, std: float = 0.02) -> None:
    """``BaseNetwork.init_weights("normal", 0.02)``: conv weights N(0, std), biases 0 (parameters named weight)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and isinstance(m.weight, nn.Parameter):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def gaussian_blur(mask: torch.Tensor, kernel: int = 71, sigma: float = 10.0) -> torch.Tensor:
    """The official (kornia-style) Gaussian blur: normalised kernel, zero padding, same size out (float32).

    Args:
        mask: N x 1 x H x W.
        kernel: odd kernel side.
        sigma: standard deviation in pixels.

    Returns:
        The blurred mask, float32.

    """
    x = torch.arange(kernel, dtype=torch.float32, device=mask.device) - kernel // 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = (g / g.sum()).view(1, 1, 1, kernel)
    m = mask.float()
    m = F.conv2d(m, g, padding=(0, kernel // 2))
    return F.conv2d(m, g.transpose(2, 3), padding=(kernel // 2, 0))


def smgan_d_loss(real: torch.Tensor, fake: torch.Tensor, soft_mask: torch.Tensor, labels: str = "paper"
                 ) -> torch.Tensor:
    """SM-PatchGAN discriminator loss on outputs already resized to the image (mean squared errors, summed).

    Args:
        real: D on the truth, N x 1 x H x W.
        fake: D on the composite (detached), N x 1 x H x W.
        soft_mask: ``gaussian_blur(mask)``.
        labels: ``paper`` (real 1, fake ``1 - soft_mask``) or ``official`` (real 0, fake ``soft_mask``).

    Returns:
        The scalar loss.

    """
    if labels == "paper":
        return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, 1 - soft_mask)
    return F.mse_loss(fake, soft_mask) + F.mse_loss(real, torch.zeros_like(real))


def smgan_g_loss(fake: torch.Tensor, mask: torch.Tensor, labels: str = "paper") -> torch.Tensor:
    """SM-PatchGAN generator loss on D's output (resized to the image) for the composite.

    Args:
        fake: D on the composite, N x 1 x H x W.
        mask: N x 1 x H x W, 1 = hole.
        labels: ``paper``: ``mean((fake - 1)^2 * m) / mean(m)``; ``official``: ``mean((fake - 1)^2)`` (the code's
            mask weighting cancels, see the module docstring).

    Returns:
        The scalar loss.

    """
    sq = (fake - 1).square()
    if labels == "official":
        return sq.mean()
    return (sq * mask).mean() / mask.mean().clamp_min(1e-8)


class AOTGAN(InpaintModel):
    """AOT-GAN: the generator (``generator``), the SM-PatchGAN (``discriminator``) and the official losses.

    The VGG19 of the losses is built on the first generator update, kept out of ``state_dict`` and frozen.

    Args:
        config: an :class:`AOTGANConfig`.

    """

    trainable = True
    inference_modules = ("generator",)

    def __init__(self, config: AOTGANConfig) -> None:
        super().__init__(config)
        self.generator = AOTGenerator(config.blocks, config.rates, config.width)
        d = config.d_width
        self.discriminator = PatchDiscriminator(3, (d, 2 * d, 4 * d, 8 * d, 1), strides=(2, 2, 2, 1, 1), kernel=4,
                                                padding=1, spectral_norm=True, bias=False, last_bias=True,
                                                last_spectral_norm=False)
        _init_normal(self.discriminator)
        self.vgg = LossNetworkSlot(self._build_vgg)  # VGG19 of the style and perceptual losses, built on first use

    def raw(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The generator's tanh output (unclamped, [-1, 1]) under AOT-GAN's input convention.

        Args:
            image: N x 3 x H x W in [0, 1].
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W in [-1, 1]. Sides that are not multiples of 4 are padded (reflect) and cropped back.

        Raises:
            InpaintbenchError: for sides below ``4 * max(rates) + 1`` (33 for AOT-GAN; the official code fails too).

        """
        h, w = image.shape[-2:]
        smallest = 4 * max(self.config.rates) + 1
        if min(h, w) < smallest:
            raise InpaintbenchError(f"aot-gan needs images of at least {smallest}x{smallest} (its reflection padding "
                                    f"of {max(self.config.rates)} at 1/4 scale), got {h}x{w}")
        mask = mask.to(image.dtype)
        x = (2 * image - 1) * (1 - mask) + mask
        pad_h, pad_w = -h % 4, -w % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
            mask = F.pad(mask, (0, pad_w, 0, pad_h), mode="reflect")
        return self.generator(x, mask)[..., :h, :w]

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Complete ``image``: ``(clamp(y, -1, 1) + 1) / 2`` of the generator's output, as the official test.py.

        Args:
            image: N x 3 x H x W in [0, 1].
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W in [0, 1].

        """
        return (self.raw(image, mask).clamp(-1, 1) + 1) / 2

    # ----------------------------------------------------------------------------------------------
    # training

    def prepare_training(self, image_size: int) -> None:
        """Fail before a run starts when the VGG19 weights of the losses are missing.

        Args:
            image_size: the training images' side (any multiple of 4 from 32 on).

        Raises:
            InpaintbenchError: with the command that provides the file.

        """
        from .losses import find_vgg_weights, random_loss_networks

        if not random_loss_networks() and (self.config.style_weight or self.config.perceptual_weight):
            find_vgg_weights("vgg19", self.config.vgg_weights_dir)

    def _build_vgg(self) -> VGGFeatures:
        layers = tuple(dict.fromkeys(EDGECONNECT_PERCEPTUAL_LAYERS + EDGECONNECT_STYLE_LAYERS))
        return VGGFeatures("vgg19", layers, weights_dir=self.config.vgg_weights_dir)

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """Generator then discriminator, both Adam lr 1e-4, betas (0.5, 0.999).

        Returns:
            The two groups.

        """
        cfg = self.config
        return (OptimizerGroup("generator", ("generator",), "adam", cfg.lr, cfg.betas),
                OptimizerGroup("discriminator", ("discriminator",), "adam", cfg.lr, cfg.betas))

    def _discriminate(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """D's map resized to ``size`` (bilinear, align_corners=True, as smgan), float32."""
        out = self.discriminator(x).float()
        if self.config.adversarial == "smgan" and out.shape[-2:] != size:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        return out

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of one update of ``group``; the raw prediction is computed once per step and kept in ``cache``.

        Args:
            group: ``generator`` or ``discriminator``.
            image: the ground truth N x 3 x H x W in [0, 1].
            mask: N x 1 x H x W, 1 = hole.
            step: 0-based step (no phases).
            cache: shared by the groups of one step.

        Returns:
            ``generator``: ``l1``, ``style``, ``perceptual``, ``g_adv`` (weighted); ``discriminator``: ``d_adv``.

        Raises:
            InpaintbenchError: for an unknown group, or missing VGG19 weights.

        """
        if group not in ("generator", "discriminator"):
            raise InpaintbenchError(f"aot-gan has no optimizer group {group!r}")
        cfg = self.config
        if "raw" not in cache:
            cache["raw"] = self.raw(image, mask)
        pred, mask = cache["raw"], mask.to(image.dtype)
        truth = 2 * image - 1
        comp = (1 - mask) * truth + mask * pred
        size = tuple(image.shape[-2:])
        if group == "discriminator":
            real, fake = self._discriminate(truth, size), self._discriminate(comp.detach(), size)
            if cfg.adversarial == "nsgan":
                return {"d_adv": nsgan_d_loss(real, fake)}
            soft = gaussian_blur(mask, cfg.blur_kernel, cfg.blur_sigma)
            return {"d_adv": smgan_d_loss(real, fake, soft, cfg.sm_labels)}
        pred32 = pred.float()
        losses = {"l1": cfg.l1_weight * F.l1_loss(pred32, truth.float())}
        if cfg.style_weight or cfg.perceptual_weight:
            vgg = self.vgg.get(pred.device)
            feats = vgg((pred32 + 1) / 2)
            with torch.no_grad():
                target = vgg(image.float())
            if cfg.style_weight:
                losses["style"] = cfg.style_weight * style_loss(
                    {k: feats[k] for k in EDGECONNECT_STYLE_LAYERS}, {k: target[k] for k in EDGECONNECT_STYLE_LAYERS})
            if cfg.perceptual_weight:
                losses["perceptual"] = cfg.perceptual_weight * perceptual_loss(
                    {k: feats[k] for k in EDGECONNECT_PERCEPTUAL_LAYERS},
                    {k: target[k] for k in EDGECONNECT_PERCEPTUAL_LAYERS})
        g_fake = self._discriminate(comp, size)
        g_adv = nsgan_g_loss(g_fake) if cfg.adversarial == "nsgan" else smgan_g_loss(g_fake, mask.float(),
                                                                                     cfg.sm_labels)
        losses["g_adv"] = cfg.adversarial_weight * g_adv
        return losses


# --------------------------------------------------------------------------------------------------
# official checkpoints: the authors' bare G*.pt and mmagic's {'meta', 'state_dict'}

_OFFICIAL_RULES = (
    (r"encoder\.1\.(weight|bias)", r"generator.encoder.0.0.\1"),
    (r"encoder\.3\.(weight|bias)", r"generator.encoder.1.0.\1"),
    (r"encoder\.5\.(weight|bias)", r"generator.encoder.2.0.\1"),
    (r"middle\.(\d+)\.block0*(\d+)\.1\.(weight|bias)", r"generator.blocks.\1.branches.\2.0.\3"),
    (r"middle\.(\d+)\.(fuse|gate)\.1\.(weight|bias)", r"generator.blocks.\1.\2.\3"),
    (r"decoder\.0\.conv\.(weight|bias)", r"generator.decoder.0.0.\1"),
    (r"decoder\.2\.conv\.(weight|bias)", r"generator.decoder.1.0.\1"),
    (r"decoder\.4\.(weight|bias)", r"generator.head.\1"),
)
_MMAGIC_RULES = (
    (r"encoder\.encoder\.1\.conv\.(weight|bias)", r"generator.encoder.0.0.\1"),  # encoder.encoder.0: the pad
    (r"encoder\.encoder\.2\.conv\.(weight|bias)", r"generator.encoder.1.0.\1"),
    (r"encoder\.encoder\.3\.conv\.(weight|bias)", r"generator.encoder.2.0.\1"),
    (r"dilation_neck\.model\.(\d+)\.blocks\.(\d+)\.1\.conv\.(weight|bias)", r"generator.blocks.\1.branches.\2.0.\3"),
    (r"dilation_neck\.model\.(\d+)\.(fuse|gate)\.1\.conv\.(weight|bias)", r"generator.blocks.\1.\2.\3"),
    (r"decoder\.decoder\.([01])\.conv\.(weight|bias)", r"generator.decoder.\1.0.\2"),
    (r"decoder\.decoder\.2\.conv\.(weight|bias)", r"generator.head.\1"),
)


def _is_official(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "middle.0.block00.1.weight" in obj and "encoder.1.weight" in obj


def _is_mmagic(obj: Any) -> bool:
    state = obj.get("state_dict") if isinstance(obj, Mapping) else None
    return isinstance(state, Mapping) and "generator.dilation_neck.model.0.blocks.0.1.conv.weight" in state


@register_layout("aot-gan", "official", AOTGAN, _is_official, config={},
                 source="researchmm/AOT-GAN-for-Inpainting: G0000000.pt (torch.save of InpaintGenerator.state_dict())",
                 description="bare state dict, 108 keys: encoder.{1,3,5}, middle.N.block0K/fuse/gate, decoder.{0,2,4}")
def convert_official(obj: Any) -> dict[str, torch.Tensor]:
    """The authors' ``G*.pt`` in our keys.

    Args:
        obj: the state dict read from the file.

    Returns:
        Our inference state dict.

    """
    return map_keys(unwrap(obj), _OFFICIAL_RULES)


@register_layout("aot-gan", "mmagic", AOTGAN, _is_mmagic, config={},
                 source="open-mmlab/mmagic: AOT-GAN_512x512_4x12_places_20220509-6641441b.pth",
                 description="{'meta', 'state_dict'}: generator.encoder.encoder.*, generator.dilation_neck.model.*, "
                             "generator.decoder.decoder.* (ConvModule .conv); disc.* dropped")
def convert_mmagic(obj: Any) -> dict[str, torch.Tensor]:
    """MMagic's AOT-GAN file in our keys (RGB, [-1, 1], white holes: the official conventions).

    Args:
        obj: the ``{'meta', 'state_dict'}`` dict read from the file.

    Returns:
        Our inference state dict.

    """
    return map_keys(strip_prefix(unwrap(obj, "state_dict"), "generator."), _MMAGIC_RULES)


register_model("aot-gan", AOTGAN, AOTGANConfig(),
               paper="Zeng et al. 2022 (AOT-GAN): 8 AOT blocks, SM-PatchGAN, 512x512",
               description="AOT generator + SM-PatchGAN (paper labels); L1, style, perceptual (training needs vgg19)",
               reference_params="15.20M (official InpaintGenerator rebuilt, 108 keys)",
               reference_count=15_200_835)
register_model("aot-gan-patchgan", AOTGAN, AOTGANConfig(adversarial="nsgan"),
               paper="Zeng et al. 2022 (AOT-GAN), ablation: plain PatchGAN (official nsgan) instead of SM-PatchGAN",
               description="aot-gan with a plain non-saturating PatchGAN")
register_model("aot-gan-tiny", AOTGAN, AOTGANConfig(blocks=2, rates=(1, 2, 4), width=12, d_width=8, blur_kernel=15,
                                                    blur_sigma=3.0, style_weight=0.0, perceptual_weight=0.0, lr=2e-3),
               paper="-", description="CPU test size (2 AOT blocks with rates 1, 2, 4; 12-48 channels, as the "
                                      "N(0, 0.02) init barely trains at 6; no VGG losses; lr 2e-3); sides from 17")
