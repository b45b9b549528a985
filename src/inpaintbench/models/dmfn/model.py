"""DMFN's networks, config, losses and model: the generator, the discriminator and the training step.

The family's sources, losses and deviations from the official code are in the package docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..._registry import InpaintbenchError
from ..adversarial import ragan_d_loss, ragan_g_loss
from ..base import InpaintModel, OptimizerGroup, register_model
from ..glcic import crop_patches, hole_patch_origins
from ..layers import conv_norm_act, make_norm
from ..losses import EDGECONNECT_PERCEPTUAL_LAYERS, VGGFeatures

__all__ = ["DMFB", "DMFN", "DMFNConfig", "DMFNDiscriminator", "DMFNGenerator", "center_loss", "feature_centroids",
           "self_guided_error_map"]

_LAYER_WEIGHTS = tuple(1e3 / n**2 for n in (64, 128, 256, 512, 512))  # VGG and D-feature layer weights (official)


@dataclass(frozen=True)
class DMFNConfig:
    """DMFN hyper-parameters (official ``celeba-hq-regular_list.yaml`` by default)."""

    size: int = 256  # training image side; the discriminator's FC sizes follow it (a multiple of 4, >= 16)
    width: int = 64  # nf: channels of the first layer (64 -> 128 -> 256 in the DMFBs)
    blocks: int = 8  # n_res: number of DMFBs
    d_width: int = 64  # discriminator: channels of the first conv, doubled per layer, capped at 8 x
    d_fc: int = 512  # output features of each branch's FC layer
    pixel_weight: float = 1.0
    feature_weight: float = 25.0  # VGG19 feature loss (self-guided on relu1_1 and relu2_1)
    center_weight: float = 1.0  # geometrical alignment on relu4_1
    dis_feature_weight: float = 5.0  # discriminator feature matching on the local branch
    gan_weight: float = 0.003  # RaGAN
    lr: float | None = 2e-4  # both networks; None takes the Trainer's (-T lr=...)
    betas: tuple[float, float] = (0.5, 0.999)
    lr_milestones: tuple[int, ...] = (100_000,)
    lr_gamma: float = 0.5
    vgg_weights_dir: str | None = None  # folder with torchvision's vgg19-dcbb9e9d.pth (the torch hub cache is searched)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "lr_milestones", tuple(self.lr_milestones))
        if self.size < 16 or self.size % 4:
            raise InpaintbenchError(f"dmfn size must be a multiple of 4 and >= 16, got {self.size}")
        if self.width < 4 or self.width % 4 or self.blocks < 0 or self.d_width < 1 or self.d_fc < 1:
            raise InpaintbenchError("dmfn needs width a multiple of 4, blocks >= 0, d_width >= 1 and d_fc >= 1")


# --------------------------------------------------------------------------------------------------
# generator


class DMFB(nn.Module):
    """Dense multi-scale fusion block (the official ``ResBlock_new``), ``channels`` in and out.

    Args:
        channels: input and output channels (256 in DMFN); the four dilated branches have a quarter each.

    """

    dilations = (1, 2, 4, 8)

    def __init__(self, channels: int) -> None:
        super().__init__()
        quarter = channels // 4
        self.reduce = conv_norm_act(channels, quarter, 3, norm="instance", act="relu", bias=True)
        self.branches = nn.ModuleList(nn.Conv2d(quarter, quarter, 3, padding=d, dilation=d) for d in self.dilations)
        self.combine_act = nn.Sequential(make_norm("instance", channels), nn.ReLU())
        self.fuse = nn.Conv2d(channels, channels, 3, padding=1)  # 3x3 in the code (1x1 in the paper's figure)
        self.out_norm = make_norm("instance", channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + IN(fuse(ReLU(IN(cat(d1, d1 + d2, d1 + d2 + d3, d1 + d2 + d3 + d4)))))``."""
        h = self.reduce(x)
        combined, running = [], None
        for branch in self.branches:
            d = branch(h)
            running = d if running is None else running + d
            combined.append(running)
        return x + self.out_norm(self.fuse(self.combine_act(torch.cat(combined, dim=1))))


class _UpBlock(nn.Module):
    """The official ``upconv_block``: deconv4x4 s2 (bias) + IN + ReLU, then conv3x3 + IN + ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
        self.deconv_act = nn.Sequential(make_norm("instance", c_out), nn.ReLU())
        self.conv = conv_norm_act(c_out, c_out, 3, norm="instance", act="relu", bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Double the side."""
        return self.conv(self.deconv_act(self.deconv(x)))


class DMFNGenerator(nn.Module):
    """DMFN's generator: 4 channels in ([-1, 1] image with holes 0, mask) -> 3 channels in [-1, 1] (tanh).

    Args:
        width: nf (64); the DMFBs run at ``4 * width`` channels.
        blocks: number of DMFBs (8).

    """

    def __init__(self, width: int = 64, blocks: int = 8) -> None:
        super().__init__()
        w1, w2, w4 = width, 2 * width, 4 * width
        self.encoder = nn.Sequential(
            conv_norm_act(4, w1, 5, norm="none", act="relu", bias=True),
            conv_norm_act(w1, w2, 3, stride=2, norm="instance", act="relu", bias=True),
            conv_norm_act(w2, w2, 3, norm="instance", act="relu", bias=True),
            conv_norm_act(w2, w4, 3, stride=2, norm="instance", act="relu", bias=True),
        )
        self.blocks = nn.Sequential(*[DMFB(w4) for _ in range(blocks)])
        self.decoder = nn.Sequential(
            conv_norm_act(w4, w4, 3, norm="instance", act="relu", bias=True),
            _UpBlock(w4, w2),
            _UpBlock(w2, w1),
            conv_norm_act(w1, 3, 3, norm="none", act="tanh", bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x 4 x H x W (H, W multiples of 4) -> N x 3 x H x W in [-1, 1]."""
        return self.decoder(self.blocks(self.encoder(x)))


# --------------------------------------------------------------------------------------------------
# discriminator


def _d_branch(n: int, width: int) -> nn.ModuleList:
    """``n`` conv5x5 s2 layers with BatchNorm and LeakyReLU(0.2), channels ``width * 2**i`` capped at 8x."""
    layers, c_in = nn.ModuleList(), 3
    for i in range(n):
        c_out = min(width * 2**i, 8 * width)
        layers.append(conv_norm_act(c_in, c_out, 5, stride=2, norm="batch", act="lrelu", bias=True))
        c_in = c_out
    return layers


class DMFNDiscriminator(nn.Module):
    """Global (six convs) and local (five convs) branches, each to an FC of ``fc`` features, joined to one logit.

    Args:
        size: side of the whole image (the local patch is half of it).
        width: channels of the first conv of each branch (64).
        fc: output features of each branch's FC (512).

    """

    def __init__(self, size: int, width: int = 64, fc: int = 512) -> None:
        super().__init__()
        self.size = size
        self.global_convs = _d_branch(6, width)
        self.local_convs = _d_branch(5, width)
        global_side, local_side = size, size // 2
        for _ in range(6):
            global_side = (global_side + 1) // 2
        for _ in range(5):
            local_side = (local_side + 1) // 2
        c_last = 8 * width  # both branches end at the cap
        self.global_fc = nn.Linear(c_last * global_side**2, fc)
        self.local_fc = nn.Linear(c_last * local_side**2, fc)
        self.classifier = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(2 * fc, 1))

    def forward(self, patch: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (N x 1) and the local branch's five feature maps.

        Args:
            patch: N x 3 x size/2 x size/2 in [-1, 1] (around the hole).
            image: N x 3 x size x size in [-1, 1].

        Returns:
            ``(logits, local_features)``.

        """
        features, h = [], patch
        for layer in self.local_convs:
            h = layer(h)
            features.append(h)
        g = image
        for layer in self.global_convs:
            g = layer(g)
        joined = torch.cat([self.local_fc(h.flatten(1)), self.global_fc(g.flatten(1))], dim=1)
        return self.classifier(joined), features


def _official_init(module: nn.Module) -> None:
    """The official ``weights_init``: N(0, 0.02) for ``Conv2d`` weights, zero biases; N(1, 0.02) for BatchNorm."""
    if type(module) is nn.Conv2d:  # the official class-name test does not match ConvTranspose2d
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------------------------------
# losses


def self_guided_error_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The self-guided regression loss's guidance: per-pixel squared error normalised by its per-image maximum.

    Args:
        pred: N x C x H x W (detached here).
        target: N x C x H x W.

    Returns:
        N x 1 x H x W in [0, 1]: ``mean_c (pred - target)^2 / max_{y,x}`` (the maximum floored at 1e-12).

    """
    error = (pred.detach() - target).square().mean(dim=1, keepdim=True)
    return error / error.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)


def feature_centroids(feat: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Centre coordinates of each channel of a non-negative feature map read as a spatial distribution.

    The grid is the official one, ``k / n * 2 - 1`` for ``k = 0 .. n - 1`` along each axis.

    Args:
        feat: N x C x H x W (ReLU features).
        eps: added to every element before normalising (official 1e-7).

    Returns:
        N x C x 2: the (x, y) centroid of each channel.

    """
    n, c, h, w = feat.shape
    pdf = feat + eps
    pdf = pdf / pdf.sum(dim=(2, 3), keepdim=True)
    xs = torch.arange(w, device=feat.device, dtype=feat.dtype) / w * 2 - 1
    ys = torch.arange(h, device=feat.device, dtype=feat.dtype) / h * 2 - 1
    x_centre = (pdf.sum(dim=2) * xs).sum(dim=2)
    y_centre = (pdf.sum(dim=3) * ys).sum(dim=2)
    return torch.stack([x_centre, y_centre], dim=2)


def center_loss(feat_pred: torch.Tensor, feat_target: torch.Tensor) -> torch.Tensor:
    """Geometrical alignment constraint: MSE between the feature centroids of prediction and truth.

    Args:
        feat_pred: N x C x H x W features of the prediction.
        feat_target: the same of the truth (detached by the caller).

    Returns:
        The scalar loss.

    """
    return F.mse_loss(feature_centroids(feat_pred), feature_centroids(feat_target))


# --------------------------------------------------------------------------------------------------
# model


class DMFN(InpaintModel):
    """DMFN: generator (``generator``), global + local discriminator (``discriminator``) and their losses.

    The VGG19 of the losses is built on the first training step (inference never needs its weights), kept out of
    ``state_dict`` and frozen.

    Args:
        config: a :class:`DMFNConfig`.

    """

    trainable = True
    inference_modules = ("generator",)

    def __init__(self, config: DMFNConfig) -> None:
        super().__init__(config)
        self.generator = DMFNGenerator(config.width, config.blocks)
        self.discriminator = DMFNDiscriminator(config.size, config.d_width, config.d_fc)
        self.generator.apply(_official_init)
        self.discriminator.apply(_official_init)
        self._vgg: list[VGGFeatures] = []  # a plain list: not a submodule, not in state_dict

    def generate(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The generator's output on the [-1, 1] scale (official convention: holes 0, mask as 4th channel).

        Args:
            image: N x 3 x H x W in [0, 1] (hole pixels are ignored).
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W in [-1, 1].

        """
        h, w = image.shape[-2:]
        mask = mask.to(image.dtype)
        x = torch.cat([(image * 2 - 1) * (1 - mask), mask], dim=1)
        pad_h, pad_w = -h % 4, -w % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.generator(x)[..., :h, :w]

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint: the full image in [0, 1], ``(G(...) + 1) / 2``.

        Args:
            image: N x 3 x H x W in [0, 1], holes filled with 0 (their values do not matter).
            mask: N x 1 x H x W, 1 = hole. Any H, W.

        Returns:
            N x 3 x H x W in [0, 1].

        """
        return (self.generate(image, mask) + 1) / 2

    # ----------------------------------------------------------------------------------------------
    # training

    def prepare_training(self, image_size: int) -> None:
        """Check the fixed training size (the discriminator's FC layers) and the VGG19 weights of the losses.

        Args:
            image_size: the training images' side.

        Raises:
            InpaintbenchError: with the option or command that fixes it.

        """
        from ..losses import find_vgg_weights, random_loss_networks

        if image_size != self.config.size:
            raise InpaintbenchError(f"dmfn's discriminator is built for {self.config.size}x{self.config.size} images "
                                    f"and the dataset's are {image_size}x{image_size}: add -O size={image_size}")
        if not random_loss_networks():
            find_vgg_weights("vgg19", self.config.vgg_weights_dir)

    def vgg(self, device: torch.device) -> VGGFeatures:
        """The loss network (VGG19 up to relu5_1), built on first use and moved to ``device``."""
        if not self._vgg:
            self._vgg.append(VGGFeatures("vgg19", EDGECONNECT_PERCEPTUAL_LAYERS,
                                         weights_dir=self.config.vgg_weights_dir))
        vgg = self._vgg[0]
        if vgg.mean.device != device:
            vgg.to(device)
        return vgg

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """Generator first, then discriminator (the official order), both Adam(2e-4, (0.5, 0.999)), MultiStepLR.

        Returns:
            The two groups.

        """
        cfg = self.config
        common = {"lr": cfg.lr, "betas": cfg.betas, "lr_milestones": cfg.lr_milestones, "lr_gamma": cfg.lr_gamma}
        return (OptimizerGroup("generator", ("generator",), **common),
                OptimizerGroup("discriminator", ("discriminator",), **common))

    def _discriminate(self, x: torch.Tensor, origins: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and local features of the discriminator on images ``x`` ([-1, 1]) and their hole patches."""
        return self.discriminator(crop_patches(x, origins, self.config.size // 2), x)

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The weighted losses of one update of ``group``.

        ``cache["out"]`` holds the composite on the [-1, 1] scale, computed once per batch with its graph; the
        discriminator update uses it detached.

        Args:
            group: ``generator`` or ``discriminator``.
            image: the ground truth N x 3 x size x size in [0, 1].
            mask: N x 1 x size x size, 1 = hole.
            step: 0-based step (unused: DMFN has no phases).
            cache: shared by the groups of one step.

        Returns:
            ``generator``: ``pixel``, ``vgg``, ``center``, ``dis_feature``, ``g_adv``; ``discriminator``: ``d_adv``.

        Raises:
            InpaintbenchError: for an unknown group or images of another side than ``config.size``.

        """
        if group not in ("generator", "discriminator"):
            raise InpaintbenchError(f"dmfn has no optimizer group {group!r}")
        size = self.config.size
        if image.shape[-2:] != (size, size):
            raise InpaintbenchError(f"dmfn's discriminator was built for {size}x{size} images, got "
                                    f"{image.shape[-2]}x{image.shape[-1]}; set size={image.shape[-1]}")
        image, mask = image.float(), mask.float()
        target = image * 2 - 1
        if "out" not in cache:
            cache["out"] = mask * self.generate(image * (1 - mask), mask).float() + (1 - mask) * target
            cache["dmfn_origins"] = hole_patch_origins(mask, size // 2)
        out, origins = cache["out"], cache["dmfn_origins"]
        if group == "discriminator":
            real_logits, _ = self._discriminate(target, origins)
            fake_logits, _ = self._discriminate(out.detach(), origins)
            return {"d_adv": 0.5 * ragan_d_loss(real_logits.float(), fake_logits.float())}
        return self.generator_losses(out, target, origins)

    def generator_losses(self, out: torch.Tensor, target: torch.Tensor, origins: torch.Tensor
                         ) -> dict[str, torch.Tensor]:
        """The generator's five weighted terms on the composite ``out`` and the truth ``target`` (both [-1, 1]).

        Args:
            out: N x 3 x H x W composite ``m G + (1 - m) x``.
            target: N x 3 x H x W ground truth.
            origins: the local patches' corners (:func:`~inpaintbench.models.glcic.hole_patch_origins`).

        Returns:
            ``pixel``, ``vgg``, ``center``, ``dis_feature``, ``g_adv``.

        """
        cfg = self.config
        terms = {"pixel": cfg.pixel_weight * F.l1_loss(out, target)}
        vgg = self.vgg(out.device)
        feats_out = list(vgg((out + 1) / 2).values())
        with torch.no_grad():
            feats_gt = list(vgg((target + 1) / 2).values())
        guide = 1 + self_guided_error_map(out, target)
        vgg_terms = []
        for i, (f_out, f_gt) in enumerate(zip(feats_out, feats_gt, strict=True)):
            if i < 2:  # self-guided on relu1_1 (full size) and relu2_1 (half size)
                weight = guide if i == 0 else F.avg_pool2d(guide, 2)
                vgg_terms.append(_LAYER_WEIGHTS[i] * F.l1_loss(f_out * weight, f_gt * weight))
            else:
                vgg_terms.append(_LAYER_WEIGHTS[i] * F.l1_loss(f_out, f_gt))
        terms["vgg"] = cfg.feature_weight * sum(vgg_terms)
        terms["center"] = cfg.center_weight * center_loss(feats_out[3], feats_gt[3])
        fake_logits, fake_feats = self._discriminate(out, origins)
        real_logits, real_feats = self._discriminate(target, origins)
        terms["dis_feature"] = cfg.dis_feature_weight * sum(
            w * F.l1_loss(fake, real.detach()) for w, fake, real in zip(_LAYER_WEIGHTS, fake_feats, real_feats,
                                                                       strict=True))
        terms["g_adv"] = cfg.gan_weight * 0.5 * ragan_g_loss(fake_logits.float(), real_logits.detach().float())
        return terms


register_model("dmfn", DMFN, DMFNConfig(),
               paper="Hui et al. 2020 (DMFN, arXiv 2002.02609): 8 DMFBs, global + local D, RaGAN, self-guided "
                     "regression, geometrical alignment, VGG and D feature matching",
               description="dense multi-scale fusion network, 256x256 (training needs vgg19 weights)",
               reference_params="9.04M generator (Zheng222/DMFN InpaintingGenerator rebuilt: 9.0374M)",
               reference_count=9_037_443)
register_model("dmfn-tiny", DMFN, DMFNConfig(size=64, width=8, blocks=2, d_width=8, d_fc=32, lr=None),
               paper="-", description="CPU test size: 64x64, nf 8, 2 DMFBs, the Trainer's lr")
