"""DeepFill's two-stage generator (v1 and v2) and the model base both versions share.

The layer lists, widths and conventions are in the package docstring (:mod:`inpaintbench.models.deepfill`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..._registry import InpaintbenchError
from ..base import InpaintModel, OptimizerGroup
from ..edges import canny_edges, sample_edges
from ..layers import conv_norm_act
from ..layers.attention import ContextualAttention, attention_flow, flow_to_image
from ..layers.gated import GatedConv2d

__all__ = ["MULTIPLE", "CoarseNetwork", "DeepFillGenerator", "RefineNetwork"]

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
# the model base


class _DeepFill(InpaintModel):
    """What v1 and v2 share: the generator, conventions, the size check and the generator's pass of a step."""

    trainable = True
    inference_modules = ("generator",)
    size_multiple = MULTIPLE  # ib.inpaint pads a photo to it
    family = "deepfill"  # the registered base name, for messages

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
        return self.family

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
            sketch = cache["sketch"] = self._training_sketch(image, mask, cache.get("sample_edges"))
            with torch.set_grad_enabled(generator_steps and torch.is_grad_enabled()):
                coarse, refined, _ = self.generator(image * 2 - 1, mask, sketch)
            cache["deepfill"] = (coarse.float(), refined.float())
        return cache["deepfill"]

    def sample_inputs(self) -> Any:
        """Sketch models: each training sample's Canny edges, computed in the DataLoader workers."""
        return sample_edges if self.guidance else None

    def _training_sketch(self, image: torch.Tensor, mask: torch.Tensor,
                         edges: torch.Tensor | None = None) -> torch.Tensor | None:
        """The ground truth's Canny edges inside the hole (sketch models only); ``edges`` from the loader if given."""
        if not self.guidance:
            return None
        if edges is None:
            edges = canny_edges(image)
        return edges.to(image.dtype) * (mask > 0.5).to(image.dtype)

    def _groups(self, d_modules: tuple[str, ...], g_every: int) -> tuple[OptimizerGroup, ...]:
        lr, betas = self.config.lr, self.config.betas
        return (OptimizerGroup("discriminator", d_modules, "adam", lr, betas),
                OptimizerGroup("generator", ("generator",), "adam", lr, betas, every=g_every))
