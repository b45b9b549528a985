"""LaMa: Resolution-robust Large Mask Inpainting with Fourier Convolutions (Suvorov et al., WACV 2022).

Sources (model_anchors.md sections 9 and 14): ``advimman/lama`` ``saicinpainting/training/modules/ffc.py``
(``FFCResNetGenerator``), ``modules/pix2pixhd.py`` (``NLayerDiscriminator``), ``losses/{adversarial,
feature_matching,perceptual}.py``, ``trainers/{base,default}.py``, ``configs/training/{big-lama,lama-fourier,
lama-regular}.yaml``, ``generator/ffc_resnet_075.yaml``, ``discriminator/pix2pixhd_nlayer.yaml``,
``optimizers/default_optimizers.yaml``, ``trainer/any_gpu_large_ssim_ddp_final.yaml``, ``bin/predict.py`` and
``configs/prediction/default.yaml``.

Generator (``FFCResNetGenerator``, :class:`LaMaGenerator`): input ``cat(image * (1 - mask), mask)`` (holes 0);
reflection pad 3 + FFC 7x7 to 64 channels, three FFC 3x3 stride-2 downsamplings (128, 256, 512; the last one
outputs 75% global channels), ``blocks`` FFC residual blocks at 512 channels with 75% global channels (18 for
big-lama, 9 for lama-fourier), three transposed 3x3 stride-2 convolutions (+BN, ReLU) to 256, 128, 64, reflection
pad 3 + conv 7x7 to 3 and a sigmoid. BatchNorm and ReLU after every FFC; reflection padding in every FFC.
50.98M parameters for big-lama, 27.05M for lama-fourier (989 and 521 state-dict keys, as the official code).

Inference (``bin/predict.py`` without refinement, ``pad_out_to_modulo: 8``): the image and the mask are padded at
the bottom and right to a multiple of 8 with numpy's ``symmetric`` mode (the edge pixel repeated, as
``pad_img_to_modulo``; the refiner's ``pad_tensor_to_modulo`` uses ``reflect`` instead), the generator runs in eval
mode (BatchNorm running statistics) and the output is cropped back; so any size works, e.g. 2048x1536 photos.

Discriminator: pix2pixHD's ``NLayerDiscriminator`` (ndf 64, n_layers 4) on the 3-channel image: 4x4 convs with
padding 2, widths 64, 128, 256, 512 (stride 2), 512 (stride 1), 1 (stride 1), BatchNorm on the inner layers,
LeakyReLU(0.2): a :class:`~inpaintbench.models.layers.patchgan.PatchDiscriminator` configuration. It sees the raw
prediction (``image_to_discriminator: predicted_image``), not the composite.

Losses (``big-lama.yaml`` = ``lama-fourier.yaml``), all on the raw prediction in [0, 1]:

* L1 on known pixels only: ``mean(|pred - image| * (10 * (1 - mask) + 0 * mask))``;
* adversarial ``r1``: non-saturating, weight 10 on the generator's ``mean softplus(-D(pred))``; the
  discriminator minimises ``mean softplus(-D(real)) + mean[m * softplus(D(fake)) + (1 - m) * softplus(-D(fake))]
  + 0.001 * mean ||grad D(real)||^2`` (``mask_as_fake_target``: only the hole, nearest-resized to the logits, is a
  fake target; the known region of a prediction counts as real). The discriminator loss is not weighted;
* discriminator feature matching, weight 100: the mean over the discriminator's five inner layers of the MSE
  between the features of the prediction and of the truth;
* HRF perceptual loss, weight 30 (:mod:`.hrf_loss`: frozen ADE20k ResNet50-dilated encoder whose weights the user
  provides). ``perceptual="vgg"`` picks, explicitly, LaMa's VGG ablation instead
  (``ablv2_work_no_segmpl_vgg.yaml``): MSE on the 13 ReLU outputs of VGG19 up to relu5_1, weighted by the known
  region ``1 - mask`` (bilinearly resized), averaged per image and summed over layers; LaMa sums it over the batch
  with weight 0.03 at batch 10, we average over the batch with weight 0.3 (the same at batch 10), and the VGG keeps
  its max-pooling (LaMa swaps it for average pooling). ``perceptual="none"`` drops the term.

Training: Adam lr 1e-3 for the generator and 1e-4 for the discriminator (betas 0.9, 0.999: torch's defaults),
gradient-norm clipping 1 for both (Lightning ``gradient_clip_val: 1``), batch 10 at 256x256 in the paper.

Choices and deviations:

* update order: generator first, then discriminator, as Lightning's optimizer indices 0 and 1; Lightning reruns
  the generator (already updated) for the discriminator step, we reuse the step's prediction (detached) unless
  the Trainer accumulates micro-batches (then each group recomputes it);
* the discriminator runs separately on real and fake batches (BatchNorm statistics per batch, as LaMa);
* the HRF encoder stays in eval mode (:mod:`.hrf_loss` explains the Lightning subtlety);
* ablation ``lama-regular`` (the paper's "FFC replaced by regular convolutions"): ``global_ratio=0`` turns every
  FFC into a plain 3x3 convolution of the same width with the rest of the network unchanged; LaMa's own
  ``lama-regular.yaml`` uses pix2pixHD's ResnetBlock instead (conv biases, no ReLU after the second conv).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .adversarial import feature_matching, r1_penalty
from .base import InpaintModel, OptimizerGroup, register_model
from .checkpoints import register_layout, strip_prefix, unwrap
from .layers.ffc import FFCNormAct, FFCResBlock
from .layers.patchgan import PatchDiscriminator
from .losses import LossNetworkSlot, VGGFeatures, l1_hole_valid

__all__ = ["LaMa", "LaMaConfig", "LaMaGenerator", "pad_symmetric"]

_DOWNSAMPLINGS = 3  # the output side must be a multiple of 2**3 = 8
_PERCEPTUAL = {"hrf": 30.0, "vgg": 0.3, "none": 0.0}  # default weight of each perceptual loss
_VGG_RELUS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu3_4", "relu4_1",
              "relu4_2", "relu4_3", "relu4_4", "relu5_1")  # LaMa's PerceptualLoss: every ReLU of vgg19.features[:30]


@dataclass(frozen=True)
class LaMaConfig:
    """LaMa's generator, discriminator, losses and optimisers (defaults: big-lama)."""

    blocks: int = 18  # FFC residual blocks (big-lama 18, lama-fourier 9)
    width: int = 64  # ngf: channels after the stem; 8x this in the residual blocks
    global_ratio: float = 0.75  # fraction of global (spectral) channels in the blocks; 0 = regular convolutions
    d_width: int = 64  # ndf
    d_layers: int = 4  # n_layers of the pix2pixHD discriminator
    l1_known_weight: float = 10.0  # weight_known
    l1_missing_weight: float = 0.0  # weight_missing
    adversarial_weight: float = 10.0  # on the generator's adversarial term
    r1_weight: float = 0.001  # gp_coef
    mask_as_fake_target: bool = True
    feature_matching_weight: float = 100.0
    perceptual: str = "hrf"  # hrf (ADE20k ResNet50-dilated), vgg (LaMa's VGG19 ablation) or none
    perceptual_weight: float | None = None  # None: 30 for hrf, 0.3 for vgg
    weights_dir: str | None = None  # folder with the loss network's file (the torch hub cache is searched too)
    lr: float = 1e-3  # generator
    d_lr: float = 1e-4  # discriminator
    clip_norm: float = 1.0  # gradient-norm clipping of both groups

    def __post_init__(self) -> None:
        if self.blocks < 0 or self.width < 2 or self.d_width < 1 or self.d_layers < 1:
            raise InpaintbenchError("lama needs blocks >= 0, width >= 2, d_width >= 1 and d_layers >= 1")
        if not 0 <= self.global_ratio < 1:
            raise InpaintbenchError(f"lama global_ratio must be in [0, 1), got {self.global_ratio}")
        if self.perceptual not in _PERCEPTUAL:
            raise InpaintbenchError(f"lama perceptual must be one of {', '.join(_PERCEPTUAL)}, got {self.perceptual!r}")

    @property
    def perceptual_scale(self) -> float:
        """The weight of the perceptual term."""
        return _PERCEPTUAL[self.perceptual] if self.perceptual_weight is None else self.perceptual_weight


class LaMaGenerator(nn.Module):
    """``FFCResNetGenerator``: 4 input channels (image with zero holes, mask) -> 3 channels in [0, 1].

    ``stem`` (FFC 7x7), ``down[0..2]`` (FFC 3x3 stride 2), ``blocks[i]`` (FFC residual blocks), ``up[0..2]``
    (transposed conv, BatchNorm, ReLU) and ``head`` (conv 7x7, sigmoid). H and W must be multiples of 8.

    Args:
        blocks: residual blocks.
        width: channels after the stem.
        global_ratio: fraction of global channels from the last downsampling on.

    """

    def __init__(self, blocks: int = 18, width: int = 64, global_ratio: float = 0.75) -> None:
        super().__init__()
        self.stem = FFCNormAct(4, width, 7, 0.0, 0.0)
        c = width
        down = []
        for i in range(_DOWNSAMPLINGS):
            ratio_out = global_ratio if i == _DOWNSAMPLINGS - 1 else 0.0
            down.append(FFCNormAct(c, 2 * c, 3, 0.0, ratio_out, stride=2, padding=1))
            c *= 2
        self.down = nn.ModuleList(down)
        self.blocks = nn.ModuleList(FFCResBlock(c, global_ratio) for _ in range(blocks))
        up = []
        for _ in range(_DOWNSAMPLINGS):
            up.append(nn.Sequential(nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                                    nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)))
            c //= 2
        self.up = nn.ModuleList(up)
        self.head = nn.Conv2d(width, 3, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x 4 x H x W -> N x 3 x H x W in [0, 1] (H, W multiples of 8)."""
        feats = self.stem((F.pad(x, (3, 3, 3, 3), mode="reflect"), None))
        for layer in [*self.down, *self.blocks]:
            feats = layer(feats)
        h = torch.cat([t for t in feats if t is not None], dim=1)  # local channels first, as ConcatTupleLayer
        for layer in self.up:
            h = layer(h)
        return torch.sigmoid(self.head(F.pad(h, (3, 3, 3, 3), mode="reflect")))


def pad_symmetric(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of ``x`` to a multiple of ``multiple`` as ``np.pad(mode="symmetric")`` does.

    The padded rows are the last rows in reverse order, edge row included (LaMa's ``pad_img_to_modulo``). Sides
    shorter than the padding are extended by repeating the reflection.

    Args:
        x: N x C x H x W.
        multiple: the side multiple (LaMa: 8).

    Returns:
        N x C x H' x W' with H', W' the next multiples.

    """
    for dim in (-2, -1):
        missing = -x.shape[dim] % multiple
        while missing:
            take = min(missing, x.shape[dim])
            x = torch.cat([x, x.narrow(dim, x.shape[dim] - take, take).flip(dim)], dim=dim)
            missing -= take
    return x


class LaMa(InpaintModel):
    """LaMa: FFC generator (``generator``), pix2pixHD PatchGAN (``discriminator``) and LaMa's losses.

    The loss network (HRF encoder or VGG19) is built on the first generator update, kept out of ``state_dict``
    and frozen, so inference never needs its weights.

    Args:
        config: a :class:`LaMaConfig`.

    """

    trainable = True
    inference_modules = ("generator",)

    def __init__(self, config: LaMaConfig) -> None:
        super().__init__(config)
        self.generator = LaMaGenerator(config.blocks, config.width, config.global_ratio)
        n = config.d_layers
        widths = [min(config.d_width * 2**i, 512) for i in range(n)] + [min(config.d_width * 2**n, 512), 1]
        self.discriminator = PatchDiscriminator(3, widths, strides=[2] * n + [1, 1], kernel=4, padding=2,
                                                norm="batch", bias=True)
        self.loss_network = LossNetworkSlot(self._build_loss_network)  # HRF encoder or VGG19, built on first use

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Complete ``image`` with LaMa's prediction convention (any size: symmetric padding to 8, cropped back).

        Args:
            image: N x 3 x H x W in [0, 1] (holes are zeroed here).
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W in [0, 1].

        Raises:
            InpaintbenchError: for sides below 9.

        """
        h, w = image.shape[-2:]
        if min(h, w) < 9:
            raise InpaintbenchError(f"lama needs images of at least 9x9 (padded to 16, 2x2 at the bottleneck), got "
                                    f"{h}x{w}")
        mask = mask.to(image.dtype)
        x = torch.cat([image * (1 - mask), mask], dim=1)
        if h % 8 or w % 8:
            x = pad_symmetric(x, 2**_DOWNSAMPLINGS)
        return self.generator(x)[..., :h, :w]

    # ----------------------------------------------------------------------------------------------
    # training

    def prepare_training(self, image_size: int) -> None:
        """Fail before a run starts when the perceptual loss's network file is missing.

        Args:
            image_size: the training images' side (any side works).

        Raises:
            InpaintbenchError: with the commands or options that fix it.

        """
        from .hrf_loss import find_ade20k_weights
        from .losses import find_vgg_weights, random_loss_networks

        if random_loss_networks():
            return
        if self.config.perceptual == "hrf":
            find_ade20k_weights(self.config.weights_dir)
        elif self.config.perceptual == "vgg":
            find_vgg_weights("vgg19", self.config.weights_dir)

    def _build_loss_network(self) -> nn.Module:
        if self.config.perceptual == "hrf":
            from .hrf_loss import ADE20kResNetFeatures

            return ADE20kResNetFeatures(self.config.weights_dir)
        return VGGFeatures("vgg19", _VGG_RELUS, weights_dir=self.config.weights_dir)

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """Generator then discriminator (Lightning's order), Adam 1e-3 / 1e-4, both clipped to norm 1.

        Returns:
            The two groups.

        """
        cfg = self.config
        return (OptimizerGroup("generator", ("generator",), "adam", cfg.lr, (0.9, 0.999), clip_norm=cfg.clip_norm),
                OptimizerGroup("discriminator", ("discriminator",), "adam", cfg.d_lr, (0.9, 0.999),
                               clip_norm=cfg.clip_norm))

    def _perceptual(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The unweighted perceptual term of ``config.perceptual``."""
        net = self.loss_network.get(pred.device)
        if self.config.perceptual == "hrf":
            from .hrf_loss import hrf_perceptual_loss

            return hrf_perceptual_loss(net, pred, image)
        with torch.no_grad():
            target = net(image)
        total = torch.zeros((), device=pred.device)
        for name, feat in net(pred).items():  # LaMa's PerceptualLoss with the known-region mask
            known = 1 - F.interpolate(mask, size=feat.shape[-2:], mode="bilinear", align_corners=False)
            total = total + ((feat.float() - target[name].float()).square() * known).mean(dim=(1, 2, 3)).mean()
        return total

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of one update of ``group``; the prediction is computed once per step and kept in ``cache``.

        Args:
            group: ``generator`` or ``discriminator``.
            image: the ground truth N x 3 x H x W in [0, 1].
            mask: N x 1 x H x W, 1 = hole.
            step: 0-based step (LaMa has no phases).
            cache: shared by the groups of one step.

        Returns:
            ``generator``: ``l1_known``, ``g_adv``, ``feature_matching``, ``perceptual`` (weighted);
            ``discriminator``: ``d_real``, ``d_fake``, ``r1``.

        Raises:
            InpaintbenchError: for an unknown group, or a missing loss-network file.

        """
        if group not in ("generator", "discriminator"):
            raise InpaintbenchError(f"lama has no optimizer group {group!r}")
        cfg = self.config
        if "pred" not in cache:
            cache["pred"] = self(image * (1 - mask), mask)
        pred, mask = cache["pred"], mask.to(image.dtype)
        if group == "discriminator":
            real = image.detach().requires_grad_(True)
            # the discriminator sees a view of the leaf: module backward hooks (FlopCounterMode's module tracker in
            # benchmarks/gpu.py) refuse a leaf input inside the R1 penalty's autograd.grad
            real_logits = self.discriminator(real.view_as(real)).float()
            fake_logits = self.discriminator(pred.detach()).float()
            fake_term = F.softplus(fake_logits)
            if cfg.mask_as_fake_target:
                m = F.interpolate(mask.float(), size=fake_logits.shape[-2:], mode="nearest")
                fake_term = m * fake_term + (1 - m) * F.softplus(-fake_logits)
            return {"d_real": F.softplus(-real_logits).mean(), "d_fake": fake_term.mean(),
                    "r1": r1_penalty(real_logits, real, cfg.r1_weight)}
        pred32 = pred.float()
        losses = {"l1_known": l1_hole_valid(pred32, image.float(), mask.float(), cfg.l1_missing_weight,
                                            cfg.l1_known_weight)}
        fake_logits, fake_feats = self.discriminator(pred, return_features=True)
        losses["g_adv"] = cfg.adversarial_weight * F.softplus(-fake_logits.float()).mean()
        if cfg.feature_matching_weight:
            with torch.no_grad():
                _, real_feats = self.discriminator(image, return_features=True)
            inner = len(real_feats) - 1  # the features of every layer but the logits
            fm = feature_matching([f.float() for f in real_feats[:inner]], [f.float() for f in fake_feats[:inner]],
                                  p=2)
            losses["feature_matching"] = cfg.feature_matching_weight * fm / inner
        if cfg.perceptual != "none" and cfg.perceptual_scale:
            losses["perceptual"] = cfg.perceptual_scale * self._perceptual(pred32, image.float(), mask.float())
        return losses


# --------------------------------------------------------------------------------------------------
# the official checkpoint: big-lama's / lama-fourier's Lightning best.ckpt

# inside one official FFC_BN_ACT, official name -> ours (str.replace, in this order)
_FFC_RENAMES = (("ffc.convl2l.", "ffc.local_to_local."), ("ffc.convl2g.", "ffc.local_to_global."),
                ("ffc.convg2l.", "ffc.global_to_local."), ("ffc.convg2g.conv1.", "ffc.global_to_global.reduce."),
                ("ffc.convg2g.fu.conv_layer.", "ffc.global_to_global.fourier.conv."),
                ("ffc.convg2g.fu.bn.", "ffc.global_to_global.fourier.norm."),
                ("ffc.convg2g.conv2.", "ffc.global_to_global.expand."), ("bn_l.", "norm_local."),
                ("bn_g.", "norm_global."))


def _rename_ffc(rest: str) -> str:
    for old, new in _FFC_RENAMES:
        if rest.startswith(old) or f".{old}" in rest:
            return rest.replace(old, new, 1)
    return rest


def _official_index_map(state: Mapping[str, torch.Tensor]) -> dict[int, str]:
    """``FFCResNetGenerator.model`` index -> our module prefix, from the number of residual blocks in ``state``.

    The official sequential is: 0 pad, 1 stem, 2-4 downsampling, then the ``n`` blocks, the concatenation, three
    (transposed conv, BN, ReLU) triples, pad, head conv, sigmoid.
    """
    block_ids = {int(k.split(".")[1]) for k in state if k.startswith("model.") and ".conv1.ffc." in k}
    n = len(block_ids)
    index = {1: "stem", **{2 + i: f"down.{i}" for i in range(_DOWNSAMPLINGS)},
             **{5 + i: f"blocks.{i}" for i in range(n)}}
    first_up = 5 + n + 1
    for j in range(_DOWNSAMPLINGS):
        index[first_up + 3 * j] = f"up.{j}.0"
        index[first_up + 3 * j + 1] = f"up.{j}.1"
    index[first_up + 3 * _DOWNSAMPLINGS + 1] = "head"
    return index


def from_official_generator(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official ``FFCResNetGenerator`` state dict (``model.N....``) onto :class:`LaMaGenerator`'s keys.

    Unknown keys are kept under their official names, so the strict check reports them as unexpected.

    Args:
        state: the generator's state dict (the ``generator.`` prefix removed).

    Returns:
        Our generator's state dict (without the ``generator.`` prefix).

    """
    index = _official_index_map(state)
    out = {}
    for key, value in state.items():
        parts = key.split(".", 2)
        if len(parts) == 3 and parts[0] == "model" and parts[1].isdigit() and int(parts[1]) in index:
            prefix = index[int(parts[1])]
            rest = parts[2] if prefix.startswith(("up.", "head")) else _rename_ffc(parts[2])
            out[f"{prefix}.{rest}"] = value
        else:
            out[key] = value
    return out


def _is_lightning_lama(obj: Any) -> bool:
    state = obj.get("state_dict") if isinstance(obj, Mapping) else None
    return isinstance(state, Mapping) and any(
        isinstance(k, str) and k.startswith("generator.model.") and ".ffc.convl2l." in k for k in state)


@register_layout("lama", "official", LaMa, _is_lightning_lama, config={},
                 source="advimman/lama: big-lama/models/best.ckpt (and lama-fourier), PyTorch Lightning 1.2.9",
                 description="Lightning checkpoint: state_dict with generator.model.N.* (FFCResNetGenerator), "
                             "discriminator and loss-network keys dropped; hyper_parameters read as inert "
                             "stand-ins")
def convert_official(obj: Any) -> dict[str, torch.Tensor]:
    """The generator of an official LaMa Lightning checkpoint in our keys (``generator.*``).

    Args:
        obj: what :func:`~inpaintbench.models.checkpoints.read_checkpoint` returned for ``best.ckpt``.

    Returns:
        Our inference state dict.

    """
    generator = strip_prefix(unwrap(obj, "state_dict"), "generator.")
    return {f"generator.{k}": v for k, v in from_official_generator(generator).items()}


register_model("big-lama", LaMa, LaMaConfig(),
               paper="Suvorov et al. 2022 (LaMa), Big-LaMa: FFC ResNet, 18 blocks, 256 crops",
               description="FFC generator + pix2pixHD PatchGAN; L1 known, NS-GAN + R1, feature matching, HRF-PL "
                           "(training needs the ADE20k encoder, or -O perceptual=vgg)",
               reference_params="50.98M (official FFCResNetGenerator rebuilt, 18 blocks, 989 keys; paper 51M)",
               reference_count=50_975_900)
register_model("lama-fourier", LaMa, LaMaConfig(blocks=9),
               paper="Suvorov et al. 2022 (LaMa), LaMa-Fourier: 9 FFC blocks (ffc_resnet_075.yaml)",
               description="FFC generator, 9 blocks; losses as big-lama",
               reference_params="27.05M (official FFCResNetGenerator rebuilt, 9 blocks, 521 keys; paper 27M)",
               reference_count=27_048_800)
register_model("lama-regular", LaMa, LaMaConfig(blocks=9, global_ratio=0.0),
               paper="Suvorov et al. 2022 (LaMa), ablation: FFC replaced by regular 3x3 convolutions, same width",
               description="ablation of lama-fourier: global_ratio 0 (no spectral branch)")
register_model("lama-tiny", LaMa, LaMaConfig(blocks=2, width=8, d_width=8, d_layers=2, perceptual="none"),
               paper="-", description="CPU test size (2 FFC blocks, 8-64 channels, no perceptual network); sides "
                                      "from 16")
