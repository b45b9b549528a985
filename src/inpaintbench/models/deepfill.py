"""DeepFill v1 (contextual attention, Yu et al. CVPR 2018) and v2 (gated convolution + SN-PatchGAN, ICCV 2019).

Sources (shared/reference/model_anchors.md sections 3, 4, 14): the official TensorFlow code
``JiahuiYu/generative_inpainting`` at tags v1.0.0 and v2.0.0 (``inpaint_model.py``, ``inpaint_ops.py``,
``inpaint.yml``, ``train.py``); mmagic (``editors/deepfillv1/*``, ``editors/deepfillv2/*``,
``archs/gated_conv_module.py``, ``configs/_base_/models/base_deepfillv{1,2}.py``); nipponjo's PyTorch port of v2
(``model/networks.py``).

Generator (both versions, :class:`DeepFillGenerator`): a coarse network and a refinement network, ELU
activations, no normalisation, "deconvolutions" that are nearest x2 upsampling + 3x3 convolution. The coarse
network (GLCIC-like, 17 layers) sees ``[x * (1 - m), ones, m]`` with ``x`` the image in [-1, 1]; its output
is pasted into the hole and the refinement network runs two encoders in parallel, a dilated branch and an
attention branch (6 convolutions, the last with ReLU, then :func:`~.layers.attention.contextual_attention` of
the features with themselves, rate 2, 3x3 patches, softmax scale 10, propagation 3x3, then 2 convolutions),
concatenates them and decodes. Widths with ``w = width``: encoder ``w, 2w, 2w, 4w, 4w, 4w`` (strides 1, 2, 1, 2,
1, 1), 4 dilated ``4w`` (rates 2, 4, 8, 16), decoder ``4w, 4w, 2w, 2w, w, w/2, 3``. Image sides must be multiples
of 8 (the attention matches at 1/8 of the image).

* v1 (``deepfill-v1``): plain convolutions, ``w = 32``, outputs clipped to [-1, 1], the refinement network sees
  ``[x, ones, m]``; 3.60M parameters. WGAN-GP critics on the completed image (global: 4 conv5x5 stride 2, 64,
  128, 256, 256, LeakyReLU, dense 1) and on a local patch around the hole (64, 128, 256, 512, dense 1), gradient
  penalty 10 weighted by the hole mask; 5 critic steps per generator step. Generator loss
  ``0.001 * (global + local WGAN) + 1.2 * l1 + 1.2 * ae`` with ``l1 = 1.2 * L1d(coarse) + L1d(fine)`` (the
  spatially discounted L1 of the hole) and ``ae = 1.2 * L1(coarse) + L1(fine)`` on the known pixels
  (``inpaint.yml``: COARSE_L1_ALPHA, L1_LOSS_ALPHA, AE_LOSS_ALPHA 1.2, GAN_LOSS_ALPHA 0.001, WGAN_GP_LAMBDA 10).
  Adam lr 1e-4, betas (0.5, 0.9) (``train.py``).
* v2 (``deepfill-v2``): every convolution gated (:class:`~.layers.gated.GatedConv2d`) but the 3-channel
  outputs, ``w = 24`` (the official ``cnum = 48`` filters halved by the gate), tanh outputs, the refinement
  network sees the pasted image only (``xnow = x``); 4.05M parameters. SN-PatchGAN
  (:class:`~.layers.patchgan.PatchDiscriminator`: 6 conv5x5 stride 2, 64, 128, 256, 256, 256, 256, spectral
  norm, LeakyReLU after every layer) on ``[image, mask]`` with the hinge loss on every output element,
  ``0.5 * hinge(real) + 0.5 * hinge(fake)`` (neuralgym ``gan_hinge_loss``); generator loss
  ``hinge + mean|x - coarse| + mean|x - fine|`` over the whole image (1:1). Adam lr 1e-4, betas (0.5, 0.999),
  one discriminator step per generator step (v2 ``train.py``).
* ``sketch=true`` (v2): a sketch channel after the image, ``[x, sketch * m, ones, m]`` (v2 ``guided``: the edges
  inside the hole), also given to the discriminator. Training sketches are the ground truth's Canny edges
  (sigma 2, as EdgeConnect; the official code reads precomputed edge files); at inference the user's strokes
  come through ``forward(image, mask, guide)``, binarised at 0.5. A model without the channel refuses a guide.

All losses are computed on the [-1, 1] scale the networks work in (the critics' gradient penalty and the L1
weights depend on it), not on inpaintbench's [0, 1].

Choices and deviations:

* spatial discount (v1): the paper's definition, ``gamma ** l`` with ``l`` the (chessboard) distance of a hole
  pixel to the nearest known pixel (0 on the hole's border, pixels outside the image count as known), averaged
  over the hole; the official code weights its 128 x 128 training box by the distance to the box's edge, which
  is the same for a box hole. ``gamma = 0.99`` (paper, issue 15); the official ``inpaint.yml`` uses 0.9 (the
  author: "0.9 is better for 256 x 256", generative_inpainting issue 74): ``-O gamma=0.9``.
* the local critic's patch: ``size / 2`` (128 at 256) centred on each hole's bounding box
  (:func:`~.glcic.hole_patch_origins`, as GLCIC here); the official code uses its random training box;
* contextual attention: each image's own mask (the official code uses the first image's mask for the whole
  batch); the official softmax and overlap formulas by default (see :mod:`.layers.attention`);
* padding: zeros, symmetric (PyTorch; TensorFlow's "SAME" pads stride-2 layers asymmetrically);
* the learning rate is the preset's ``lr`` (1e-4) for both groups, not the Trainer's ``--lr``: set ``-O lr=...``
  (or ``lr=None`` to take the Trainer's, as the ``-tiny`` test presets do);
* the v2 masks of the paper (random boxes + brush strokes) are the dataset's masks here.

Imported weights (layouts, registered below; the layout's ``config`` gives the conventions): mmagic's files run
with reflect padding, mmagic's attention (masked softmax, overlap division), ELU before the attention, and for
v2 a 5-channel refinement input, gated output layers and a refinement decoder of width 32; they are BGR, which
the key maps turn into RGB by reversing the image channels of the first convolutions and the output channels of
the last ones (exact). nipponjo's port (``{'G': ...}``, ``cnum_in=5``) is RGB and runs with this module's v2
defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .adversarial import gradient_penalty, hinge_d_loss, hinge_g_loss, wgan_d_loss, wgan_g_loss
from .base import InpaintModel, OptimizerGroup, register_model
from .checkpoints import register_layout, strip_prefix, unwrap
from .edges import canny_edges
from .glcic import crop_patches, hole_patch_origins
from .layers import conv_norm_act
from .layers.attention import ContextualAttention, attention_flow, flow_to_image
from .layers.gated import GatedConv2d
from .layers.patchgan import PatchDiscriminator

__all__ = ["DeepFillGenerator", "DeepFillV1", "DeepFillV1Config", "DeepFillV2", "DeepFillV2Config",
           "spatial_discount"]

MULTIPLE = 8  # image sides: the attention matches at 1/8 of the image
_DILATIONS = (2, 4, 8, 16)
_ACTIVATIONS = ("elu", "relu")


@dataclass(frozen=True)
class _GeneratorOptions:
    """Generator options shared by v1 and v2 (each version's defaults are its official code's)."""

    gated: bool = False  # gated convolutions (v2)
    width: int = 32  # channels of the first layer (after gating); the others are multiples of it
    refine_decoder_width: int = 0  # width the refinement decoder scales from; 0 = width (mmagic v2: 32)
    refine_mask_input: bool = True  # the refinement network also sees ones and the mask (v1, mmagic v2)
    output: str = "clip"  # clip (v1) or tanh (v2): the last activation of both stages
    gated_output: bool = False  # the 3-channel output layers are gated too, without feature activation (mmagic v2)
    attention_encoder_act: str = "relu"  # activation before the attention (official: relu; mmagic: elu)
    padding: str = "zeros"  # zeros, or reflect (mmagic)
    masked_softmax: bool = False  # attention: mmagic's masked softmax (False: the official formula)
    normalize_overlap: bool = False  # attention: mmagic's overlap division (False: the official / 4)
    softmax_scale: float = 10.0
    fuse_size: int = 3  # attention propagation kernel (1 = off)
    lr: float | None = 1e-4  # both groups (None = the Trainer's lr)

    def __post_init__(self) -> None:
        if self.width < 2 or self.width % 2:
            raise InpaintbenchError(f"deepfill width must be an even number >= 2, got {self.width}")
        if self.refine_decoder_width < 0 or self.refine_decoder_width % 2:
            raise InpaintbenchError(f"deepfill refine_decoder_width must be 0 or even, got {self.refine_decoder_width}")
        if self.output not in ("clip", "tanh"):
            raise InpaintbenchError(f"deepfill output must be clip or tanh, got {self.output!r}")
        if self.attention_encoder_act not in _ACTIVATIONS:
            raise InpaintbenchError(f"deepfill attention_encoder_act must be elu or relu, got "
                                    f"{self.attention_encoder_act!r}")
        if self.padding not in ("zeros", "reflect"):
            raise InpaintbenchError(f"deepfill padding must be zeros or reflect, got {self.padding!r}")
        if self.gated_output and not self.gated:
            raise InpaintbenchError("deepfill gated_output needs gated=true")


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


# --------------------------------------------------------------------------------------------------
# generator


def _unit(options: _GeneratorOptions, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1,
          act: str = "elu") -> nn.Module:
    """One layer: a gated convolution (v2) or convolution + activation (v1)."""
    if options.gated:
        return GatedConv2d(c_in, c_out, kernel, stride, dilation, act, options.padding)
    return conv_norm_act(c_in, c_out, kernel, stride, dilation, norm="none", act=act, bias=True,
                         padding_mode=options.padding)


def _output_unit(options: _GeneratorOptions, c_in: int) -> nn.Module:
    """The 3-channel output layer: plain convolution (official), or gated without activation (mmagic v2)."""
    if options.gated_output:
        return GatedConv2d(c_in, 3, 3, activation="none", padding_mode=options.padding)
    return conv_norm_act(c_in, 3, 3, norm="none", act="none", bias=True, padding_mode=options.padding)


def _encoder(options: _GeneratorOptions, c_in: int, widths: tuple[int, ...], last_act: str = "elu"
             ) -> nn.Sequential:
    """Six layers: 5x5, then 3x3 with strides 2, 1, 2, 1, 1."""
    layers, strides = [], (1, 2, 1, 2, 1, 1)
    for i, (c_out, stride) in enumerate(zip(widths, strides, strict=True)):
        layers.append(_unit(options, c_in, c_out, 5 if i == 0 else 3, stride, act=last_act if i == 5 else "elu"))
        c_in = c_out
    return nn.Sequential(*layers)


def _dilated(options: _GeneratorOptions, channels: int) -> nn.Sequential:
    """Four 3x3 layers with dilations 2, 4, 8, 16."""
    return nn.Sequential(*[_unit(options, channels, channels, 3, dilation=d) for d in _DILATIONS])


class _Decoder(nn.ModuleList):
    """Seven 3x3 layers ``4d, 4d, 2d, 2d, d, d/2, 3`` with nearest x2 upsampling before the third and fifth."""

    upsample_before = (2, 4)

    def __init__(self, options: _GeneratorOptions, c_in: int, width: int) -> None:
        layers: list[nn.Module] = []
        for c_out in (4 * width, 4 * width, 2 * width, 2 * width, width, width // 2):
            layers.append(_unit(options, c_in, c_out, 3))
            c_in = c_out
        layers.append(_output_unit(options, c_in))
        super().__init__(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Decode features at 1/4 resolution to 3 channels at full resolution (before the output activation)."""
        for i, layer in enumerate(self):
            if i in self.upsample_before:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = layer(x)
        return x


class CoarseNetwork(nn.Module):
    """Stage 1: encoder, dilated layers, decoder (17 layers)."""

    def __init__(self, options: _GeneratorOptions, in_channels: int) -> None:
        super().__init__()
        w = options.width
        self.encoder = _encoder(options, in_channels, (w, 2 * w, 2 * w, 4 * w, 4 * w, 4 * w))
        self.dilated = _dilated(options, 4 * w)
        self.decoder = _Decoder(options, 4 * w, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw coarse output (before the output activation)."""
        return self.decoder(self.dilated(self.encoder(x)))


class RefineNetwork(nn.Module):
    """Stage 2: a dilated branch and a contextual-attention branch, concatenated and decoded."""

    def __init__(self, options: _GeneratorOptions, in_channels: int) -> None:
        super().__init__()
        w = options.width
        self.conv_encoder = _encoder(options, in_channels, (w, w, 2 * w, 2 * w, 4 * w, 4 * w))
        self.conv_dilated = _dilated(options, 4 * w)
        self.attention_encoder = _encoder(options, in_channels, (w, w, 2 * w, 4 * w, 4 * w, 4 * w),
                                          last_act=options.attention_encoder_act)
        self.attention = ContextualAttention(3, 2, options.softmax_scale, options.fuse_size, options.masked_softmax,
                                             options.normalize_overlap)
        self.attention_convs = nn.Sequential(_unit(options, 4 * w, 4 * w, 3), _unit(options, 4 * w, 4 * w, 3))
        self.decoder = _Decoder(options, 8 * w, options.refine_decoder_width or w)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, return_offsets: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Raw refined output (before the output activation) and, when asked, the attention's offsets."""
        hallucinated = self.conv_dilated(self.conv_encoder(x))
        features = self.attention_encoder(x)
        hole = F.interpolate(mask, size=features.shape[-2:], mode="nearest")
        attended = self.attention(features, features, hole, return_offsets=return_offsets)
        matched = self.attention_convs(attended.output)
        return self.decoder(torch.cat([hallucinated, matched], dim=1)), attended.offsets


class DeepFillGenerator(nn.Module):
    """The two-stage generator on [-1, 1] images.

    Args:
        options: the generator options of a :class:`DeepFillV1Config` or :class:`DeepFillV2Config`.
        sketch: a sketch channel after the image.

    """

    def __init__(self, options: _GeneratorOptions, sketch: bool = False) -> None:
        super().__init__()
        self.options, self.sketch = options, sketch
        extra = 2 + int(sketch)  # [sketch], ones, mask
        self.coarse = CoarseNetwork(options, 3 + extra)
        self.refine = RefineNetwork(options, 3 + (extra if options.refine_mask_input else 0))

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(-1, 1) if self.options.output == "clip" else torch.tanh(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, sketch: torch.Tensor | None = None,
                return_offsets: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Both stages' outputs.

        Args:
            x: N x 3 x H x W image in [-1, 1] (the hole's content is ignored: it is zeroed here).
            mask: N x 1 x H x W, 1 = hole.
            sketch: N x 1 x H x W strokes (only with a sketch channel; None = no strokes).
            return_offsets: also return the attention's best matches (N x 2 x H/8 x W/8).

        Returns:
            ``(coarse, refined, offsets)``: N x 3 x H x W in [-1, 1] each, and the offsets or None.

        """
        mask = mask.to(x.dtype)
        x = x * (1 - mask)
        extra = [torch.ones_like(mask), mask]
        if self.sketch:
            extra.insert(0, (torch.zeros_like(mask) if sketch is None else sketch.to(x.dtype)) * mask)
        coarse = self._activate(self.coarse(torch.cat([x, *extra], dim=1)))
        pasted = coarse * mask + x * (1 - mask)
        refine_in = torch.cat([pasted, *extra], dim=1) if self.options.refine_mask_input else pasted
        refined, offsets = self.refine(refine_in, mask, return_offsets)
        return coarse, self._activate(refined), offsets


# --------------------------------------------------------------------------------------------------
# the models


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


class _DeepFill(InpaintModel):
    """What v1 and v2 share: the generator, conventions, the size check and the generator's pass of a step."""

    trainable = True
    inference_modules = ("generator",)

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        has_sketch = bool(getattr(config, "sketch", False))
        self.guidance = "sketch" if has_sketch else ""  # this instance's; the class's says what the family can take
        self.generator = DeepFillGenerator(config, sketch=has_sketch)

    def _check_size(self, h: int, w: int) -> None:
        if h % MULTIPLE or w % MULTIPLE:
            raise InpaintbenchError(f"{self._name()} needs image sides that are multiples of {MULTIPLE}, got {h}x{w}")
        if self.config.padding == "reflect" and min(h, w) // 4 <= max(_DILATIONS):
            raise InpaintbenchError(f"{self._name()} with reflect padding (mmagic's weights) needs image sides of at "
                                    f"least {4 * max(_DILATIONS) + MULTIPLE}, got {h}x{w}")

    def _name(self) -> str:
        return "deepfill-v2" if isinstance(self, DeepFillV2) else "deepfill-v1"

    def _sketch(self, guide: torch.Tensor | None, image: torch.Tensor) -> torch.Tensor | None:
        if guide is None:
            return None
        if not self.guidance:
            raise InpaintbenchError(f"this {self._name()} has no sketch channel (it was built with sketch=false): "
                                    "it cannot take a sketch; use a model trained with -O sketch=true")
        if guide.shape != (image.shape[0], 1, *image.shape[2:]):
            raise InpaintbenchError(f"the sketch must be N x 1 x H x W like the image, got {tuple(guide.shape)} for "
                                    f"an image of {tuple(image.shape)}")
        return (guide > 0.5).to(image.dtype)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """Complete ``image``: the refinement network's output, a full image in [0, 1].

        Args:
            image: N x 3 x H x W in [0, 1] (the hole's content is ignored); sides multiples of 8.
            mask: N x 1 x H x W, 1 = hole.
            guide: N x 1 x H x W sketch (1 on the user's strokes), only for a model with ``sketch=true``.

        Returns:
            N x 3 x H x W in [0, 1].

        Raises:
            InpaintbenchError: for sides that are not multiples of 8, or a sketch given to a model without the
                sketch channel.

        """
        self._check_size(*image.shape[-2:])
        _, refined, _ = self.generator(image * 2 - 1, mask, self._sketch(guide, image))
        return (refined + 1) / 2

    @torch.no_grad()
    def attention_map(self, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """The colour-coded attention flow (the papers' figures): where each position copies from.

        Args:
            image: N x 3 x H x W in [0, 1].
            mask: N x 1 x H x W, 1 = hole.
            guide: optional sketch (as :meth:`forward`).

        Returns:
            N x 3 x H x W RGB in [0, 1] (white = no displacement), at the image's size.

        """
        self._check_size(*image.shape[-2:])
        _, _, offsets = self.generator(image * 2 - 1, mask, self._sketch(guide, image), return_offsets=True)
        colours = flow_to_image(attention_flow(offsets))
        return F.interpolate(colours, size=image.shape[-2:], mode="nearest")

    def prepare_training(self, image_size: int) -> None:
        """Check the training size: a multiple of 8 (and v1's critics' size).

        Args:
            image_size: the training images' side.

        Raises:
            InpaintbenchError: with the option that fixes it.

        """
        self._check_size(image_size, image_size)

    def _generated(self, image: torch.Tensor, mask: torch.Tensor, step: int, cache: dict[str, Any],
                   generator_steps: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Both stages' outputs for the batch, computed once per step (without a graph on critic-only steps)."""
        if "deepfill" not in cache:
            self._check_size(*image.shape[-2:])
            sketch = cache["sketch"] = self._training_sketch(image, mask)
            with torch.set_grad_enabled(generator_steps and torch.is_grad_enabled()):
                coarse, refined, _ = self.generator(image * 2 - 1, mask, sketch)
            cache["deepfill"] = (coarse.float(), refined.float())
        return cache["deepfill"]

    def _training_sketch(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """The ground truth's Canny edges inside the hole (sketch models only)."""
        if not self.guidance:
            return None
        return canny_edges(image) * (mask > 0.5).to(image.dtype)

    def _groups(self, d_modules: tuple[str, ...], g_every: int) -> tuple[OptimizerGroup, ...]:
        lr, betas = self.config.lr, self.config.betas
        return (OptimizerGroup("discriminator", d_modules, "adam", lr, betas),
                OptimizerGroup("generator", ("generator",), "adam", lr, betas, every=g_every))


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


class DeepFillV2(_DeepFill):
    """DeepFill v2: gated two-stage generator with contextual attention, SN-PatchGAN, optional sketch channel.

    ``guidance`` is ``"sketch"`` on the class (the family can take sketches) and on instances built with
    ``sketch=true``; an instance without the channel has ``guidance == ""`` and refuses a guide.

    Args:
        config: a :class:`DeepFillV2Config`.

    """

    guidance = "sketch"

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


# --------------------------------------------------------------------------------------------------
# official checkpoint layouts


def _rename(state: dict[str, torch.Tensor], layers: list[tuple[str, str]], suffixes: dict[str, str]
            ) -> dict[str, torch.Tensor]:
    """Rename ``official_layer.suffix`` to ``generator.our_layer.our_suffix``; unknown keys are kept (unexpected)."""
    out = {}
    for key, value in state.items():
        new = key
        for official, ours in layers:
            if key.startswith(official + "."):
                suffix = key[len(official) + 1:]
                new = f"generator.{ours}.{suffixes.get(suffix, suffix)}"
                break
        out[new] = value
    return out


def _bgr_to_rgb(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Make a BGR generator an RGB one: reverse the image inputs of the first layers and the 3 output channels."""
    out = dict(state)
    for stage in ("coarse.encoder.0", "refine.conv_encoder.0", "refine.attention_encoder.0"):
        for key in [k for k in out if k.startswith(f"generator.{stage}.") and k.endswith("weight")]:
            w = out[key].clone()
            w[:, :3] = w[:, :3].flip(1)
            out[key] = w
    for stage in ("coarse.decoder.6", "refine.decoder.6"):
        for key in [k for k in out if k.startswith(f"generator.{stage}.")]:
            # 3 outputs for a plain layer; 3 features then 3 gates for a gated one
            out[key] = torch.cat([part.flip(0) for part in out[key].split(3)])
    return out


def _mmagic_layers() -> list[tuple[str, str]]:
    """Mmagic's module names (``DeepFillEncoderDecoder``) against ours."""
    layers = []
    for i in range(6):
        layers += [(f"stage1.encoder.enc{i + 1}", f"coarse.encoder.{i}"),
                   (f"stage2.encoder_conv.enc{i + 1}", f"refine.conv_encoder.{i}"),
                   (f"stage2.encoder_attention.enc{i + 1}", f"refine.attention_encoder.{i}")]
    for i in range(4):
        layers += [(f"stage1.dilation_neck.dilation_convs.{i}", f"coarse.dilated.{i}"),
                   (f"stage2.dilation_neck.dilation_convs.{i}", f"refine.conv_dilated.{i}")]
    for i in range(7):
        layers += [(f"stage1.decoder.dec{i + 1}", f"coarse.decoder.{i}"),
                   (f"stage2.decoder.dec{i + 1}", f"refine.decoder.{i}")]
    layers += [(f"stage2.contextual_attention_neck.conv{i + 1}", f"refine.attention_convs.{i}") for i in range(2)]
    return layers


_MMAGIC_FUSE = "stage2.contextual_attention_neck.contextual_attention.fuse_kernel"  # a constant identity kernel
# the conventions of mmagic's DeepFill configs (base_deepfillv1.py / base_deepfillv2.py)
_MMAGIC_COMMON = {"padding": "reflect", "masked_softmax": True, "normalize_overlap": True,
                  "attention_encoder_act": "elu"}
_MMAGIC_V2 = {**_MMAGIC_COMMON, "refine_mask_input": True, "gated_output": True, "refine_decoder_width": 32}
_ZOO = "https://download.openmmlab.com/mmediting/inpainting/"


def _mmagic_state(obj: Any) -> dict[str, torch.Tensor]:
    state = strip_prefix(unwrap(obj, "state_dict"), "generator.")
    state.pop(_MMAGIC_FUSE, None)
    return state


def _is_mmagic(obj: Any, gated: bool) -> bool:
    state = unwrap(obj, "state_dict")
    return f"generator.stage1.encoder.enc1.conv.{'conv.' if gated else ''}weight" in state


@register_layout("deepfill-v1", "mmagic", DeepFillV1, lambda obj: _is_mmagic(obj, gated=False),
                 config=_MMAGIC_COMMON, source=_ZOO + "deepfillv1/deepfillv1_256x256_8x2_places_20200619-c00a0e21.pth "
                 "(and ..._4x4_celeba_20200619-dd51a855.pth)",
                 description="mmagic DeepFill v1 ({'meta', 'state_dict'}, generator.stage1/stage2.*, BGR)")
def _convert_mmagic_v1(obj: Any) -> dict[str, torch.Tensor]:
    return _bgr_to_rgb(_rename(_mmagic_state(obj), _mmagic_layers(), {"conv.weight": "0.weight",
                                                                      "conv.bias": "0.bias"}))


@register_layout("deepfill-v2", "mmagic", DeepFillV2, lambda obj: _is_mmagic(obj, gated=True),
                 config=_MMAGIC_V2, source=_ZOO + "deepfillv2/deepfillv2_256x256_8x2_places_20200619-10d15793.pth "
                 "(and ..._8x2_celeba_20200619-c96e5f12.pth)",
                 description="mmagic DeepFill v2 ({'meta', 'state_dict'}, gated convs generator.stage1/stage2.*, BGR)")
def _convert_mmagic_v2(obj: Any) -> dict[str, torch.Tensor]:
    return _bgr_to_rgb(_rename(_mmagic_state(obj), _mmagic_layers(), {"conv.conv.weight": "conv.weight",
                                                                      "conv.conv.bias": "conv.bias"}))


def _port_layers() -> list[tuple[str, str]]:
    """Nipponjo's ``model/networks.py`` module names (``Generator``) against ours."""
    def encoder(stage: str, first: str, down: str, last: str, ours: str) -> list[tuple[str, str]]:
        return [(f"{stage}.{first}", f"{ours}.0"), (f"{stage}.{down}1.conv1_downsample", f"{ours}.1"),
                (f"{stage}.{down}1.conv2", f"{ours}.2"), (f"{stage}.{down}2.conv1_downsample", f"{ours}.3"),
                (f"{stage}.{down}2.conv2", f"{ours}.4"), (f"{stage}.{last}", f"{ours}.5")]

    def decoder(stage: str, first: str, ours: str) -> list[tuple[str, str]]:
        return [(f"{stage}.{first}6", f"{ours}.0"), (f"{stage}.{first}7", f"{ours}.1"),
                (f"{stage}.up_block1.conv1_upsample.conv", f"{ours}.2"), (f"{stage}.up_block1.conv2", f"{ours}.3"),
                (f"{stage}.up_block2.conv1_upsample.conv", f"{ours}.4"), (f"{stage}.up_block2.conv2", f"{ours}.5"),
                (f"{stage}.conv_to_rgb", f"{ours}.6")]

    layers = encoder("stage1", "conv1", "down_block", "conv_bn1", "coarse.encoder")
    layers += [(f"stage1.conv_bn{i + 2}", f"coarse.dilated.{i}") for i in range(4)]
    layers += decoder("stage1", "conv_bn", "coarse.decoder")
    layers += encoder("stage2", "conv_conv1", "conv_down_block", "conv_conv_bn1", "refine.conv_encoder")
    layers += [(f"stage2.conv_conv_bn{i + 2}", f"refine.conv_dilated.{i}") for i in range(4)]
    layers += encoder("stage2", "ca_conv1", "ca_down_block", "ca_conv_bn1", "refine.attention_encoder")
    layers += [("stage2.ca_conv_bn4", "refine.attention_convs.0"), ("stage2.ca_conv_bn5", "refine.attention_convs.1")]
    layers += decoder("stage2", "conv_bn", "refine.decoder")
    return layers


def _is_port(obj: Any) -> bool:
    return isinstance(obj, dict) and "stage1.conv1.conv.weight" in unwrap(obj, "G")


@register_layout("deepfill-v2", "nipponjo", DeepFillV2, _is_port, config={},
                 source="nipponjo/deepfillv2-pytorch: states_pt_places2.pth, states_pt_celebahq.pth "
                        "(model/networks.py)",
                 description="nipponjo's PyTorch port of DeepFill v2 ({'G': state_dict}, cnum_in=5, RGB)")
def _convert_port(obj: Any) -> dict[str, torch.Tensor]:
    state = unwrap(obj, "G")
    state.pop("stage2.contextual_attention.fuse_weight", None)  # a constant identity kernel
    renamed = _rename(state, _port_layers(), {})
    # conv_to_rgb is an ungated GConv (``.conv``); ours is a plain conv-act unit (``.0``)
    return {k.replace("decoder.6.conv.", "decoder.6.0."): v for k, v in renamed.items()}


# --------------------------------------------------------------------------------------------------
# presets

register_model("deepfill-v1", DeepFillV1, DeepFillV1Config(),
               paper="Yu et al. 2018 (DeepFill v1): coarse-to-fine, contextual attention, WGAN-GP global + local "
                     "critics, 5 critic steps, spatially discounted L1",
               description="two-stage generator (cnum 32) with contextual attention, WGAN-GP critics, 256x256",
               reference_params="3.60M generator (computed from the official v1 layer list)",
               reference_count=3_600_000)
register_model("deepfill-v1-tiny", DeepFillV1,
               DeepFillV1Config(size=32, width=8, critic_width=8, critic_steps=2, lr=None),
               paper="-", description="CPU test size: 32x32, width 8, critics 8, 2 critic steps; the Trainer's lr")
register_model("deepfill-v2", DeepFillV2, DeepFillV2Config(),
               paper="Yu et al. 2019 (DeepFill v2): gated convolutions, contextual attention, SN-PatchGAN hinge, "
                     "L1 1:1",
               description="gated two-stage generator (cnum 48), contextual attention, SN-PatchGAN; any size / 8",
               reference_params="4.05M generator (computed from nipponjo's port; the author quotes 4.1M)",
               reference_count=4_052_500)
register_model("deepfill-v2-sketch", DeepFillV2, DeepFillV2Config(sketch=True),
               paper="Yu et al. 2019 (DeepFill v2, user-guided): sketch channel, trained on Canny edges in the hole",
               description="deepfill-v2 with the sketch input: forward(image, mask, guide=sketch)",
               reference_params="4.05M + 1,200 for the sketch channel")
register_model("deepfill-v2-tiny", DeepFillV2, DeepFillV2Config(width=8, d_width=8, gan_weight=0.1, lr=None),
               paper="-", description="CPU test size: width 8, discriminator 8, GAN weight 0.1 (mmagic's); the "
                                      "Trainer's lr")
