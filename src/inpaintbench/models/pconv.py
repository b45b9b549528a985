"""Partial Convolutions: Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions" (ECCV 2018).

The network (paper section 3.2; NVIDIA released the layer only, so the layout follows naoto0804's ``net.py`` and
mmagic's ``pconv_encoder.py`` / ``pconv_decoder.py``; see shared/reference/model_anchors.md section 5) is a U-Net
of :class:`~inpaintbench.models.layers.PartialConv2d` layers with per-channel masks (``multi_channel=True``):

* encoder, ``L`` layers (8 at 512 x 512, 7 at 256 x 256): 7x7/64 s2 (no BN), 5x5/128 s2, 5x5/256 s2, 3x3/512 s2,
  then 3x3/512 s2 for layers 5..L; BatchNorm (except layer 1) and ReLU;
* decoder, ``L`` layers: nearest x2 upsampling of the features **and** the masks, concatenation with the encoder's
  features and masks of the same scale, PConv 3x3 s1, BatchNorm and LeakyReLU(0.2); the last layer also sees the
  input image and its mask, has a bias, no BatchNorm and no activation.

Conventions inside the model: inpaintbench's mask (1 = hole) becomes PConv's valid mask ``1 - mask`` repeated over
the 3 input channels, and the image is mapped from [0, 1] to [-1, 1] (``input_norm="symmetric"``, mmagic's
normalisation; the paper's "no information" output of a PConv, 0, is then mid-grey rather than black, and the
linear output layer is centred) or with the ImageNet mean and std (``input_norm="imagenet"``, naoto0804's, which
its imported weights need). The raw output ``y`` is mapped back by the inverse; :meth:`PConv.forward` clamps it to
[0, 1] (the reference output has no activation, and clamping at inference is what mmagic's image conversion and
naoto's ``unnormalize`` + clamp do; a sigmoid would change the network and saturate). The losses see the
unclamped value, so every pixel keeps its gradient.

Official weights (``inpaintbench weights import-model pconv-256 FILE``): naoto0804's training checkpoints,
``{'n_iter', 'model', 'optimizer'}`` (its ``save_ckpt``), convert exactly (layout ``pconv:naoto0804``): its
partial convolution divides by ``sum(M)`` where ours (NVIDIA's formula) multiplies by ``sum(1) / sum(M)``, so each
weight is divided by its window size ``k * k * C_in``; its first layer has no bias (ours has one, set to zero); the
all-ones ``mask_conv`` kernels it stores are checked and dropped; it runs with ``input_norm="imagenet"``.
MMagic's zoo files, ``{'meta', 'state_dict'}`` with ``generator.encoder.enc<i>`` / ``generator.decoder.dec<j>``
MaskConvModules (layout ``pconv:mmagic``), use NVIDIA's formula like ours and the same biases; their networks take
BGR images in [-1, 1] (``input_norm="symmetric"``), so the key map reverses the colour channels of the first
layer's input, of the last layer's image skip input and of its output, which makes them RGB networks exactly; their
all-ones ``weight_mask_updater`` buffers are checked and dropped.

Losses (naoto ``loss.py`` / ``opt.py`` = mmagic ``base_pconv.py``): L1 on valid (1) and hole (6) pixels, perceptual
(0.05) and style (120) on VGG16 pool1/pool2/pool3 of both ``I_out`` and ``I_comp`` against ``I_gt``, and the paper's
total variation (0.1) of ``I_comp`` on the hole dilated by one pixel (:func:`~inpaintbench.models.losses.
total_variation`; naoto uses the whole image). All terms are computed on the [0, 1] scale of this project's losses;
mmagic's L1 and TV run on [-1, 1] (2x ours) and naoto's on ImageNet-normalised images (about 4.4x ours), while the
VGG terms are the same in all three (the VGG always sees ImageNet-normalised input).

Training (naoto ``--lr 2e-4 --lr_finetune 5e-5 --finetune``; mmagic stage 1 / stage 2): stage 1 trains everything
at the Trainer's learning rate (default 2e-4); from step ``stage1_steps`` on the learning rate is multiplied by
``finetune_lr_factor`` (0.25: 2e-4 -> 5e-5) and the encoder's BatchNorm layers are frozen (eval mode, affine
parameters without gradient). The stage is the buffer ``stage`` (1 or 2), saved in checkpoints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .base import InpaintModel, OptimizerGroup, hole_valid_l1, register_model
from .checkpoints import register_layout, strip_prefix, unwrap
from .layers import PartialConv2d, make_activation
from .losses import PCONV_LAYERS, VGGFeatures, perceptual_loss, style_loss, total_variation

__all__ = ["PConv", "PConvConfig", "PConvUNet"]

_KERNELS = (7, 5, 5)  # encoder layers 1-3; every deeper layer is 3x3
# image scaling in the network, as (mean, std) per channel: x_net = (x - mean) / std
_INPUT_NORMS = {"symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}


@dataclass(frozen=True)
class PConvConfig:
    """PConv U-Net, loss weights and the two-stage schedule (defaults: the paper's 512 x 512 network)."""

    layers: int = 8  # encoder layers L (the decoder has as many): 8 at 512 x 512, 7 at 256 x 256
    widths: tuple[int, ...] = (64, 128, 256, 512)  # encoder channels of layers 1, 2, ...; deeper ones repeat the last
    valid_weight: float = 1.0  # L1 on known pixels
    hole_weight: float = 6.0  # L1 on hole pixels
    perceptual_weight: float = 0.05  # VGG16 pool1-3 features of I_out and I_comp
    style_weight: float = 120.0  # Gram matrices of the same features
    tv_weight: float = 0.1  # total variation of I_comp on the dilated hole
    stage1_steps: int = 500_000  # steps before fine-tuning (naoto: 500k + 500k; mmagic: 800k + 500k)
    finetune_lr_factor: float = 0.25  # learning-rate factor from stage 2 on (2e-4 -> 5e-5)
    vgg_weights_dir: str | None = None  # folder with torchvision's vgg16-397923af.pth (the torch hub cache is searched)
    input_norm: str = "symmetric"  # image scaling in the network: symmetric ([-1, 1], mmagic) or imagenet (naoto)

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(self.widths))
        if self.layers < 1 or not self.widths or min(self.widths) < 1:
            raise InpaintbenchError(f"pconv needs layers >= 1 and positive widths, got layers={self.layers}, "
                                    f"widths={self.widths}")
        if self.stage1_steps < 0 or self.finetune_lr_factor <= 0:
            raise InpaintbenchError("pconv needs stage1_steps >= 0 and finetune_lr_factor > 0")
        if self.input_norm not in _INPUT_NORMS:
            raise InpaintbenchError(f"pconv input_norm must be one of {', '.join(_INPUT_NORMS)}, got "
                                    f"{self.input_norm!r}")

    def channels(self) -> list[int]:
        """Output channels of encoder layers 1..L."""
        return [self.widths[min(i, len(self.widths) - 1)] for i in range(self.layers)]


class _PConvBlock(nn.Module):
    """PartialConv2d, optional BatchNorm, activation; passes the valid mask along."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, norm: bool, act: str) -> None:
        super().__init__()
        # a bias only where no BatchNorm follows (mmcv ConvModule's bias="auto"; naoto: the last layer only)
        self.conv = PartialConv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not norm)
        self.norm = nn.BatchNorm2d(c_out) if norm else nn.Identity()
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and the updated valid mask (1 = valid)."""
        out, valid = self.conv(x, valid)
        return self.act(self.norm(out)), valid


class PConvUNet(nn.Module):
    """The U-Net itself, on PConv's conventions: image in [-1, 1], valid mask (1 = valid) per input channel.

    ``encoder[i]`` is encoder layer ``i + 1``; ``decoder[j]`` is decoder layer ``L - j`` (it runs deepest first),
    so ``decoder[-1]`` is the output layer. Any image side works: the decoder upsamples to the size of the skip
    features, which is exactly the nearest x2 of the reference when the side is a multiple of ``2**L``.
    """

    def __init__(self, config: PConvConfig) -> None:
        super().__init__()
        chans = config.channels()
        self.encoder = nn.ModuleList(
            _PConvBlock(3 if i == 0 else chans[i - 1], c, _KERNELS[i] if i < len(_KERNELS) else 3, 2, norm=i > 0,
                        act="relu")
            for i, c in enumerate(chans))
        skips = [3, *chans[:-1]]  # channels of the encoder output one scale up (the input for the last layer)
        self.decoder = nn.ModuleList(
            _PConvBlock(chans[i] + skips[i], skips[i], 3, 1, norm=i > 0, act="lrelu" if i > 0 else "none")
            for i in reversed(range(config.layers)))
        for module in self.modules():  # naoto's weights_init("kaiming"): N(0, 2 / fan_in), zero bias
            if isinstance(module, PartialConv2d):
                nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Raw output (no activation) from an image ``x`` in [-1, 1] and its valid mask (N x C x H x W, 1 = valid)."""
        h, m = x, valid
        feats, masks = [h], [m]
        for block in self.encoder:
            h, m = block(h, m)
            feats.append(h)
            masks.append(m)
        for j, block in enumerate(self.decoder):
            skip_h, skip_m = feats[-2 - j], masks[-2 - j]
            size = skip_h.shape[-2:]
            h = torch.cat([F.interpolate(h, size=size, mode="nearest"), skip_h], dim=1)
            # every mask here is one plane repeated over the channels (PartialConv2d returns it expanded), so
            # upsampling the first plane and expanding it equals upsampling all of them
            up_m = F.interpolate(m[:, :1], size=size, mode="nearest").expand(-1, m.shape[1], -1, -1)
            m = torch.cat([up_m, skip_m.to(m.dtype)], dim=1)
            h, m = block(h, m)
        return h


class PConv(InpaintModel):
    """The PConv U-Net of Liu et al. (2018) with its losses and two-stage training.

    ``unet`` is the network (:class:`PConvUNet`); this class converts to and from its conventions and owns the
    losses and the stage. The VGG16 of the losses is built on the first :meth:`loss` call (so inference never needs
    its weights), kept out of ``state_dict`` (and of ``.to()``: it follows the input's device) and frozen.
    """

    trainable = True
    inference_modules = ("unet",)
    stage: torch.Tensor

    def __init__(self, config: PConvConfig) -> None:
        super().__init__(config)
        self.unet = PConvUNet(config)
        self.register_buffer("stage", torch.tensor(1))
        self._stage = 1  # a Python mirror of the buffer, read every step without a device sync
        self.register_load_state_dict_post_hook(_apply_loaded_stage)
        self._vgg: list[VGGFeatures] = []  # a plain list: not a submodule, not in state_dict

    # ----------------------------------------------------------------------------------------------
    # network

    def predict_unclamped(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network's output on the [0, 1] scale, not clamped (what the losses see).

        Args:
            image: N x 3 x H x W in [0, 1]; hole pixels are ignored whatever their value.
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W, the raw network output ``y`` mapped back (``y * std + mean``; ``(y + 1) / 2`` for the
            default symmetric scaling).

        """
        valid = (1 - mask.to(image.dtype)).expand(-1, image.shape[1], -1, -1)  # PConv's mask, one per channel
        mean, std = (torch.tensor(v, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
                     for v in _INPUT_NORMS[self.config.input_norm])
        return self.unet((image - mean) / std, valid) * std + mean

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint: the full image in [0, 1] (the raw output clamped).

        Args:
            image: N x 3 x H x W in [0, 1], holes filled with 0 (their values do not matter).
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W in [0, 1].

        """
        return self.predict_unclamped(image, mask).clamp(0, 1)

    # ----------------------------------------------------------------------------------------------
    # two-stage training

    def encoder_norms(self) -> list[nn.BatchNorm2d]:
        """The encoder's BatchNorm layers (frozen in stage 2)."""
        return [m for m in self.unet.encoder.modules() if isinstance(m, nn.BatchNorm2d)]

    def apply_stage(self) -> None:
        """Make the encoder's BatchNorm layers follow the ``stage`` buffer (frozen in stage 2, trainable in 1)."""
        frozen = self._stage >= 2
        for norm in self.encoder_norms():
            norm.requires_grad_(not frozen)
            norm.train(self.training and not frozen)

    def enter_stage(self, step: int) -> None:
        """Switch to stage 2 (fine-tuning) once ``step >= stage1_steps``; the stage never goes back by itself."""
        if step >= self.config.stage1_steps and self._stage < 2:
            self.stage.fill_(2)
            self._stage = 2
            self.apply_stage()

    def train(self, mode: bool = True) -> PConv:
        """Set the training mode; in stage 2 the encoder's BatchNorm layers stay in eval mode.

        Args:
            mode: training (True) or evaluation (False).

        Returns:
            self.

        """
        super().train(mode)
        if self._stage >= 2:
            for norm in self.encoder_norms():
                norm.eval()
        return self

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """One ``generator`` group at the Trainer's learning rate, times ``finetune_lr_factor`` from stage 2 on."""
        return (OptimizerGroup("generator", lr_milestones=(self.config.stage1_steps,),
                               lr_gamma=self.config.finetune_lr_factor),)

    def active_groups(self, step: int) -> tuple[str, ...]:
        """``("generator",)``; also enters stage 2 at ``stage1_steps``.

        The Trainer calls this first in every step, before it collects the parameters that require gradients,
        so the frozen encoder BatchNorm parameters are left out from the first stage-2 step on.
        """
        self.enter_stage(step)
        return ("generator",)

    # ----------------------------------------------------------------------------------------------
    # losses

    def prepare_training(self, image_size: int) -> None:
        """Fail before a run starts when the VGG16 weights of the losses are missing.

        Args:
            image_size: the training images' side (any side works).

        Raises:
            InpaintbenchError: naming the file, where it was looked for, and the command that provides it.

        """
        from .losses import find_vgg_weights, random_loss_networks

        if not random_loss_networks():
            find_vgg_weights("vgg16", self.config.vgg_weights_dir)

    def vgg(self, device: torch.device) -> VGGFeatures:
        """The loss network (VGG16 up to pool3), built on first use and moved to ``device``.

        Raises:
            InpaintbenchError: (one line) when the ImageNet weights are missing (tests set
                :data:`~inpaintbench.models.losses.RANDOM_LOSS_NETWORKS` instead).

        """
        if not self._vgg:
            self._vgg.append(VGGFeatures("vgg16", PCONV_LAYERS, weights_dir=self.config.vgg_weights_dir))
        vgg = self._vgg[0]
        if vgg.mean.device != device:
            vgg.to(device)
        return vgg

    def loss(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """PConv's loss terms, weighted: ``l1_valid``, ``l1_hole``, ``perceptual``, ``style``, ``tv``.

        Args:
            pred: the network output ``I_out`` on the [0, 1] scale (unclamped, as :meth:`predict_unclamped`).
            image: the ground truth ``I_gt``, N x 3 x H x W in [0, 1].
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            The weighted terms; the Trainer minimises their sum.

        """
        cfg = self.config
        pred, image, mask = pred.float(), image.float(), mask.float()
        comp = mask * pred + (1 - mask) * image
        terms = hole_valid_l1(pred, image, mask, cfg.hole_weight, cfg.valid_weight)
        vgg = self.vgg(pred.device)
        n = pred.shape[0]
        feats = vgg(torch.cat([pred, comp]))  # one pass for I_out and I_comp (VGG has no batch statistics)
        feats_out = {k: v[:n] for k, v in feats.items()}
        feats_comp = {k: v[n:] for k, v in feats.items()}
        with torch.no_grad():
            feats_gt = vgg(image)
        terms["perceptual"] = cfg.perceptual_weight * (perceptual_loss(feats_out, feats_gt)
                                                       + perceptual_loss(feats_comp, feats_gt))
        terms["style"] = cfg.style_weight * (style_loss(feats_out, feats_gt) + style_loss(feats_comp, feats_gt))
        terms["tv"] = cfg.tv_weight * total_variation(comp, mask)
        return terms

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The losses of one generator update; ``cache["pred"]`` holds the unclamped output, computed once per step.

        Enters stage 2 first when ``step >= stage1_steps`` (for loops that do not call :meth:`active_groups`).

        Raises:
            InpaintbenchError: for a group other than ``generator``, or missing VGG16 weights.

        """
        if group != "generator":
            raise InpaintbenchError(f"pconv has one optimizer group, 'generator'; got {group!r}")
        self.enter_stage(step)
        if "pred" not in cache:
            cache["pred"] = self.predict_unclamped(image * (1 - mask), mask)
        return self.loss(cache["pred"], image, mask)


# --------------------------------------------------------------------------------------------------
# official checkpoints

_NAOTO_KEY = re.compile(r"(enc|dec)_(\d+)\.(conv\.input_conv|conv\.mask_conv|bn)\.(\w+)")


def _is_naoto(obj: Any) -> bool:
    state = unwrap(obj, "model")
    return "enc_1.conv.input_conv.weight" in state and "enc_1.conv.mask_conv.weight" in state


@register_layout("pconv", "naoto0804", PConv, _is_naoto, config={"input_norm": "imagenet"},
                 source="github.com/naoto0804/pytorch-inpainting-with-partial-conv (train.py save_ckpt)",
                 description="naoto0804's {'n_iter', 'model', 'optimizer'}: enc_N/dec_N PCBActiv keys")
def _from_naoto(obj: Any) -> dict[str, torch.Tensor]:
    """naoto0804's ``PConvUNet`` state dict -> ours (see the module docstring for what changes and why)."""
    state = unwrap(obj, "model")
    layers = sum(1 for key in state if key.startswith("enc_") and key.endswith(".conv.input_conv.weight"))
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _NAOTO_KEY.fullmatch(key)
        if not match:
            out[key] = value  # reported as unexpected by the strict check
            continue
        kind, n, part, leaf = match.group(1), int(match.group(2)), match.group(3), match.group(4)
        prefix = f"unet.encoder.{n - 1}" if kind == "enc" else f"unet.decoder.{layers - n}"
        if part == "conv.mask_conv":
            if not bool((value == 1).all()):
                raise InpaintbenchError(f"{key} is not the all-ones mask kernel of naoto0804's PartialConv")
        elif part == "bn":
            out[f"{prefix}.norm.{leaf}"] = value
        elif leaf == "weight":  # naoto divides by sum(M); ours multiplies by sum(1) / sum(M)
            out[f"{prefix}.conv.weight"] = value / value[0].numel()
        else:
            out[f"{prefix}.conv.bias"] = value
    first = out.get("unet.encoder.0.conv.weight")
    if first is not None and "unet.encoder.0.conv.bias" not in out:
        out["unet.encoder.0.conv.bias"] = torch.zeros(first.shape[0], dtype=first.dtype)  # naoto: no bias here
    return out


_MMAGIC_KEY = re.compile(r"(encoder\.enc|decoder\.dec)(\d+)\.(conv|bn)\.(\w+)")
_BGR = [2, 1, 0]


def _is_mmagic(obj: Any) -> bool:
    state = unwrap(obj, "state_dict")
    return "generator.encoder.enc1.conv.weight_mask_updater" in state


@register_layout("pconv", "mmagic", PConv, _is_mmagic, config={"input_norm": "symmetric"},
                 source="download.openmmlab.com/mmediting/inpainting/pconv/ (configs/partial_conv/metafile.yml)",
                 description="MMagic's {'meta', 'state_dict'}: generator.encoder.enc<i>/decoder.dec<j> MaskConvModules")
def _from_mmagic(obj: Any) -> dict[str, torch.Tensor]:
    """MMagic's PConv file -> ours: renamed, BGR made RGB, the mask-updater buffers checked and dropped."""
    state = strip_prefix(unwrap(obj, "state_dict"), "generator.")
    layers = sum(1 for key in state if key.startswith("encoder.enc") and key.endswith(".conv.weight"))
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _MMAGIC_KEY.fullmatch(key)
        if not match:
            out[key] = value  # reported as unexpected by the strict check
            continue
        kind, n, part, leaf = match.group(1), int(match.group(2)), match.group(3), match.group(4)
        prefix = f"unet.encoder.{n - 1}" if kind == "encoder.enc" else f"unet.decoder.{layers - n}"
        if leaf == "weight_mask_updater":
            if not bool((value == 1).all()):
                raise InpaintbenchError(f"{key} is not the all-ones mask kernel of MMagic's PartialConv2d")
            continue
        out[f"{prefix}.{'conv' if part == 'conv' else 'norm'}.{leaf}"] = value
    first, last = "unet.encoder.0.conv", f"unet.decoder.{layers - 1}.conv"
    if f"{first}.weight" in out and out[f"{first}.weight"].shape[1] == 3:
        out[f"{first}.weight"] = out[f"{first}.weight"][:, _BGR]
    if f"{last}.weight" in out and out[f"{last}.weight"].shape[0] == 3:
        weight = out[f"{last}.weight"][_BGR]
        skip = weight.shape[1] - 3  # the last layer sees the upsampled features, then the input image
        out[f"{last}.weight"] = torch.cat([weight[:, :skip], weight[:, skip:][:, _BGR]], dim=1)
        if f"{last}.bias" in out:
            out[f"{last}.bias"] = out[f"{last}.bias"][_BGR]
    return out


def _apply_loaded_stage(module: nn.Module, incompatible_keys: Any) -> None:
    """``load_state_dict`` post-hook: re-apply the loaded stage (freezing the encoder BatchNorm in stage 2)."""
    module._stage = int(module.stage)  # the buffer is what checkpoints keep; read it once here
    module.apply_stage()


register_model("pconv", PConv, PConvConfig(),
               paper="Liu et al. 2018 (Partial Convolutions), 512x512, 8 layers",
               description="PConv U-Net; VGG16 perceptual/style losses (training needs vgg16 weights)",
               reference_params="32.86M at 8 layers (naoto0804's net.py rebuilt)",
               reference_count=32_859_732)
register_model("pconv-256", PConv, PConvConfig(layers=7),
               paper="Liu et al. 2018 (Partial Convolutions), 256x256, 7 layers (naoto0804, mmagic)",
               description="PConv U-Net; VGG16 perceptual/style losses (training needs vgg16 weights)",
               reference_params="25.78M at 7 layers (naoto0804's net.py rebuilt)",
               reference_count=25_779_796)
register_model("pconv-tiny", PConv, PConvConfig(layers=5, widths=(16, 32, 64), stage1_steps=100),
               paper="-", description="CPU test size (5 layers, 16-64 channels); 32x32 and up")
