"""GLCIC: Globally and Locally Consistent Image Completion (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017).

Sources (model_anchors.md section 2): the paper; the official inference code
``satoshiiizuka/siggraph2017_inpainting`` (no training code); ``otenim/GLCIC-PyTorch`` (``models.py``,
``train.py``); mmagic ``global_local`` (``gl_encoder/gl_dilation/gl_decoder/gl_disc/gl_inpaintor.py``,
``configs/_base_/models/base_gl.py``).

Completion network (17 layers, conv -> BatchNorm -> ReLU as in the paper; otenim puts BN after the ReLU):
conv5x5 64, conv3x3 s2 128, 128, conv3x3 s2 256, 256, 256, dilated 3x3 256 with d = 2, 4, 8, 16, 256, 256,
deconv4x4 s2 128, 128, deconv4x4 s2 64, 32, conv3x3 3 + sigmoid (otenim). Input: the image with its holes filled
with ``fill`` and the mask. It is fully convolutional: ``forward`` takes any size (sides that are not a
multiple of 4 are padded and cropped back). 6.07M parameters at the default width.

Context discriminators (paper; mmagic ``base_gl.py``): global = 6 x conv5x5 s2 (64, 128, 256, 512, 512, 512; BN,
ReLU) + FC -> 1024 (ReLU) on the whole image; local = 5 x conv5x5 s2 (64 ... 512) + FC -> 1024 (ReLU) on a patch
of side ``size / 2`` (128 at 256) around the hole; concatenation (2048) -> FC -> 1 logit. The FC input sizes
follow ``size``. The local patch is centred on the bounding box of each sample's hole, clamped inside the image
(deterministic; :func:`hole_patch_origins`), and the real patch is the ground truth at the same place (mmagic
``extract_around_bbox`` / ``extract_bbox_patch``; otenim draws a random patch for the real image).
The discriminators see the *completed* image ``mask * pred + (1 - mask) * image`` (the paper's completed
image; mmagic ``fake_img``): the reconstruction loss only constrains the hole, so the raw output outside the
hole would be a give-away (otenim feeds the raw output).

Losses: ``mse_weight * mean(((pred - image) * mask)^2)`` (paper's weighted MSE; otenim
``mse_loss(output * mask, input * mask)``) for the generator, plus ``alpha * g_adv`` in the joint phase with
``alpha = 0.0004`` (paper section 4, otenim ``--alpha 4e-4``) and the non-saturating ``-log D`` term
(``nsgan``: BCE with logits, :mod:`.losses`). The discriminator minimises ``d_adv(real, fake)`` (the sum of the
two BCE terms, unscaled: otenim halves it, and multiplies it by alpha in phase 3; Adadelta and Adam are
insensitive to a constant factor on a group's loss).

Schedule (``active_groups``): steps ``[0, tc)`` train the generator with the MSE only, ``[tc, tc + td)`` the
discriminator only, then both (discriminator first). Paper: Tc = 90,000, Td = 10,000, Ttrain = 500,000.

Choices:

* hole fill: the paper fills holes with the mean pixel of the training set (official code: mean-subtracted input,
  holes 0; otenim: per-channel ``mpv``); the dataset is not known to the model, so ``fill`` defaults to the
  ImageNet RGB mean (0.485, 0.456, 0.406), a stand-in for a natural-image mean; set it to the training set's
  mean for the paper's behaviour, or to 0 for DESIGN.md's zero fill;
* optimiser: Adadelta (paper; otenim ``Adadelta(params)``, i.e. torch's lr 1.0, rho 0.9) for both networks, so
  the default matches the paper; ``optimizer="adam"`` with ``lr=4e-4`` is mmagic's choice;
* no post-processing (the official ``--postproc`` fast-marching + Poisson blending is off in mmagic too);
* ``value_range`` and ``output`` default to otenim's [0, 1] input and sigmoid; MMagic's weights
  (``inpaintbench weights import-model glcic FILE``, layout ``glcic:mmagic``) run with [-1, 1], holes at 0 and a
  clipped output, as MMagic runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .adversarial import ADVERSARIAL, get_adversarial
from .base import InpaintModel, OptimizerGroup, register_model
from .checkpoints import map_keys, register_layout, strip_prefix, unwrap
from .layers import conv_norm_act

__all__ = ["CompletionNetwork", "ContextDiscriminator", "GLCIC", "GLCICConfig", "crop_patches",
           "hole_patch_origins"]

_OPTIMIZERS = ("adam", "adamw", "adadelta")


@dataclass(frozen=True)
class GLCICConfig:
    """GLCIC hyper-parameters (paper values by default)."""

    size: int = 256  # training image side; the discriminators' FC sizes follow it (a multiple of 4, >= 16)
    local_size: int = 0  # side of the local discriminator's patch; 0 = size // 2 (paper: 128 at 256)
    width: int = 64  # completion network: channels of the first layer (64 -> 128 -> 256 ... -> 32 -> 3)
    dilations: tuple[int, ...] = (2, 4, 8, 16)  # the dilated 3x3 layers at 1/4 resolution
    d_width: int = 64  # discriminators: channels of the first conv, doubled per layer, capped at 8 * d_width
    d_fc: int = 1024  # output features of each discriminator's FC layer (concatenated: 2 * d_fc)
    fill: float | tuple[float, float, float] = (0.485, 0.456, 0.406)  # hole fill (paper: training-set mean)
    mse_weight: float = 1.0  # weight of the hole MSE
    alpha: float = 4e-4  # weight of the adversarial term of the generator (paper)
    adversarial: str = "nsgan"  # adversarial loss pair (adversarial.ADVERSARIAL); paper: BCE / -log D
    tc: int = 90_000  # steps of generator-only (MSE) training
    td: int = 10_000  # steps of discriminator-only training that follow
    optimizer: str = "adadelta"  # for both groups: adadelta (paper), adam or adamw
    lr: float | None = None  # None: 1.0 for adadelta (torch default, as otenim), else the TrainConfig's lr
    value_range: str = "unit"  # the network sees [0, 1] (unit, otenim) or [-1, 1] (symmetric, mmagic)
    output: str = "sigmoid"  # last activation: sigmoid (otenim) or clip (mmagic: clamp to the value range)

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % 4:
            raise InpaintbenchError(f"glcic size must be a multiple of 4 and >= 16, got {self.size}")
        if not 0 <= self.local_size <= self.size:
            raise InpaintbenchError(f"glcic local_size must be in [0, size], got {self.local_size}")
        if self.width < 2 or self.d_width < 1 or self.d_fc < 1:
            raise InpaintbenchError("glcic needs width >= 2, d_width >= 1 and d_fc >= 1")
        if self.tc < 0 or self.td < 0:
            raise InpaintbenchError(f"glcic tc and td must be >= 0, got {self.tc} and {self.td}")
        if self.optimizer not in _OPTIMIZERS:
            raise InpaintbenchError(f"glcic optimizer must be one of {', '.join(_OPTIMIZERS)}, got {self.optimizer!r}")
        if self.adversarial not in ADVERSARIAL:
            raise InpaintbenchError(f"unknown adversarial loss {self.adversarial!r}; known: {', '.join(ADVERSARIAL)}")
        if self.value_range not in ("unit", "symmetric") or self.output not in ("sigmoid", "clip"):
            raise InpaintbenchError(f"glcic value_range is unit or symmetric and output sigmoid or clip, got "
                                    f"{self.value_range!r} and {self.output!r}")
        fill = self.fill if isinstance(self.fill, (tuple, list)) else (self.fill,)
        if len(fill) not in (1, 3):
            raise InpaintbenchError(f"glcic fill must be one value or three (RGB), got {self.fill!r}")

    @property
    def patch(self) -> int:
        """Side of the local discriminator's patch."""
        return self.local_size or self.size // 2


def _deconv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """Transposed 4x4 stride-2 convolution (doubles the side), BatchNorm, ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class CompletionNetwork(nn.Sequential):
    """GLCIC's 17-layer completion network: 4 input channels (filled image, mask) -> 3 channels in [0, 1].

    Args:
        width: channels of the first layer (paper: 64); the others are 2x, 4x, 2x, 1x and 1/2x of it.
        dilations: dilation rates of the middle layers (paper: 2, 4, 8, 16).
        output: ``sigmoid`` (otenim) or ``clip`` (no activation; the caller clamps, as mmagic).

    """

    def __init__(self, width: int = 64, dilations: tuple[int, ...] = (2, 4, 8, 16), output: str = "sigmoid") -> None:
        w1, w2, w4 = width, 2 * width, 4 * width
        layers: list[nn.Module] = [
            conv_norm_act(4, w1, 5),
            conv_norm_act(w1, w2, 3, stride=2),
            conv_norm_act(w2, w2, 3),
            conv_norm_act(w2, w4, 3, stride=2),
            conv_norm_act(w4, w4, 3),
            conv_norm_act(w4, w4, 3),
            *[conv_norm_act(w4, w4, 3, dilation=d) for d in dilations],
            conv_norm_act(w4, w4, 3),
            conv_norm_act(w4, w4, 3),
            _deconv_bn_relu(w4, w2),
            conv_norm_act(w2, w2, 3),
            _deconv_bn_relu(w2, w1),
            conv_norm_act(w1, w1 // 2, 3),
            conv_norm_act(w1 // 2, 3, 3, norm="none", act="sigmoid" if output == "sigmoid" else "none", bias=True),
        ]
        super().__init__(*layers)


def _discriminator(n: int, width: int, side: int, fc: int) -> nn.Sequential:
    """``n`` conv5x5 stride-2 layers (BN, ReLU; channels ``width * 2**i`` capped at ``8 * width``), then FC + ReLU.

    The FC input size follows ``side``: each conv gives ``ceil(side / 2)`` (4 x 4 for 256 and 6 layers).
    """
    layers: list[nn.Module] = []
    c_in = 3
    for i in range(n):
        c_out = min(width * 2**i, 8 * width)
        layers.append(conv_norm_act(c_in, c_out, 5, stride=2))
        c_in = c_out
        side = (side + 1) // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * side * side, fc), nn.ReLU(inplace=True))


class ContextDiscriminator(nn.Module):
    """GLCIC's global and local discriminators joined by a final FC layer to one logit per image.

    Args:
        size: side of the whole image.
        patch: side of the local patch.
        width: channels of the first conv of each discriminator (paper: 64).
        fc: output features of each discriminator's FC layer (paper: 1024).

    """

    global_convs = 6
    local_convs = 5

    def __init__(self, size: int, patch: int, width: int = 64, fc: int = 1024) -> None:
        super().__init__()
        self.size, self.patch = size, patch
        self.global_d = _discriminator(self.global_convs, width, size, fc)
        self.local_d = _discriminator(self.local_convs, width, patch, fc)
        self.fc = nn.Linear(2 * fc, 1)

    def forward(self, image: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        """Logits (N x 1) that ``image`` and its local ``patch`` are real.

        Args:
            image: N x 3 x size x size.
            patch: N x 3 x patch x patch.

        Returns:
            N x 1 logits.

        """
        return self.fc(torch.cat([self.global_d(image), self.local_d(patch)], dim=1))


def hole_patch_origins(mask: torch.Tensor, patch: int) -> torch.Tensor:
    """Top-left corners of the ``patch`` x ``patch`` windows centred on each sample's hole.

    The window is centred on the centre of the bounding box of the pixels with ``mask > 0.5`` (rounded down),
    then shifted inside the image, so it always contains that centre. A sample without a hole gets the centred
    window.

    Args:
        mask: N x 1 x H x W, 1 = hole.
        patch: side of the window (<= H and <= W).

    Returns:
        Long tensor N x 2 of ``(top, left)``.

    Raises:
        InpaintbenchError: when the window does not fit the image.

    """
    n, _, h, w = mask.shape
    if patch > min(h, w):
        raise InpaintbenchError(f"a {patch}x{patch} patch does not fit {h}x{w} masks")
    hole = mask.detach()[:, 0] > 0.5
    origins = []
    for rows_or_cols, side in ((hole.any(dim=2), h), (hole.any(dim=1), w)):
        idx = torch.arange(side, device=mask.device).expand(n, side)
        first = torch.where(rows_or_cols, idx, side).amin(dim=1)
        last = torch.where(rows_or_cols, idx, -1).amax(dim=1)
        centre = torch.where(last >= 0, (first + last) // 2, torch.full_like(first, (side - 1) // 2))
        origins.append((centre - patch // 2).clamp(0, side - patch))
    return torch.stack(origins, dim=1)


def crop_patches(x: torch.Tensor, origins: torch.Tensor, patch: int) -> torch.Tensor:
    """Crop one ``patch`` x ``patch`` window per sample.

    Args:
        x: N x C x H x W.
        origins: N x 2 ``(top, left)`` from :func:`hole_patch_origins`.
        patch: side of the window.

    Returns:
        N x C x patch x patch.

    """
    offsets = torch.arange(patch, device=x.device)
    rows = (origins[:, 0:1] + offsets)[:, :, None]  # N x patch x 1
    cols = (origins[:, 1:2] + offsets)[:, None, :]  # N x 1 x patch
    batch = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # no host sync, differentiable


class GLCIC(InpaintModel):
    """GLCIC: completion network (``generator``) and context discriminators (``discriminator``).

    Args:
        config: a :class:`GLCICConfig`.

    """

    trainable = True
    inference_modules = ("generator",)

    def __init__(self, config: GLCICConfig) -> None:
        super().__init__(config)
        self.generator = CompletionNetwork(config.width, config.dilations, config.output)
        self.discriminator = ContextDiscriminator(config.size, config.patch, config.d_width, config.d_fc)
        fill = torch.as_tensor(config.fill, dtype=torch.float32).reshape(-1)
        self.register_buffer("fill", fill.expand(3).reshape(1, 3, 1, 1).clone(), persistent=False)
        self.adv = get_adversarial(config.adversarial)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Complete ``image``: the completion network's output, a full image in [0, 1].

        Args:
            image: N x 3 x H x W in [0, 1] (holes may hold anything: they are refilled with ``fill``).
            mask: N x 1 x H x W, 1 = hole. Any H, W (the network is fully convolutional).

        Returns:
            N x 3 x H x W in [0, 1].

        """
        h, w = image.shape[-2:]
        filled = image * (1 - mask) + self.fill.to(image.dtype) * mask
        symmetric = self.config.value_range == "symmetric"
        x = torch.cat([filled * 2 - 1 if symmetric else filled, mask.to(image.dtype)], dim=1)
        pad_h, pad_w = -h % 4, -w % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        y = self.generator(x)[..., :h, :w]
        if self.config.output == "clip":
            y = y.clamp(-1, 1) if symmetric else y.clamp(0, 1)
        return (y + 1) / 2 if symmetric else y

    def prepare_training(self, image_size: int) -> None:
        """The discriminators' fully connected layers fix the training size: it must be the images' side.

        Args:
            image_size: the training images' side.

        Raises:
            InpaintbenchError: with the option that fixes it (``-O size=...``).

        """
        if image_size != self.config.size:
            raise InpaintbenchError(f"glcic's discriminators are built for {self.config.size}x{self.config.size} "
                                    f"images and the dataset's are {image_size}x{image_size}: add -O "
                                    f"size={image_size}")

    def loss(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The reconstruction loss: weighted MSE on the hole (the generator's loss of phase 1).

        Args:
            pred: the completion network's output N x 3 x H x W.
            image: the ground truth.
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            ``{"mse_hole": mse_weight * mean(((pred - image) * mask)^2)}``.

        """
        return {"mse_hole": self.config.mse_weight * ((pred - image) * mask).square().mean()}

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """Discriminator first, then generator; both with the configured optimiser (paper: Adadelta, lr 1).

        Returns:
            The two groups.

        """
        lr = self.config.lr
        if lr is None and self.config.optimizer == "adadelta":
            lr = 1.0
        return (OptimizerGroup("discriminator", ("discriminator",), self.config.optimizer, lr),
                OptimizerGroup("generator", ("generator",), self.config.optimizer, lr))

    def active_groups(self, step: int) -> tuple[str, ...]:
        """The three phases: generator (MSE) before ``tc``, discriminator until ``tc + td``, then both.

        Args:
            step: 0-based step.

        Returns:
            The names of the groups trained at ``step``.

        """
        if step < self.config.tc:
            return ("generator",)
        if step < self.config.tc + self.config.td:
            return ("discriminator",)
        return ("discriminator", "generator")

    def _discriminate(self, image: torch.Tensor, origins: torch.Tensor) -> torch.Tensor:
        """Logits of the context discriminator on whole images and their patches at ``origins`` (float32)."""
        return self.discriminator(image, crop_patches(image, origins, self.config.patch)).float()

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of one update of ``group`` at ``step``.

        The generator's output is computed once per batch and kept in ``cache["pred"]`` (without a graph in
        the discriminator-only phase). The discriminators see completed images and local patches centred on
        the hole; the real patch is taken at the same place.

        Args:
            group: ``generator`` or ``discriminator``.
            image: the ground truth N x 3 x size x size in [0, 1].
            mask: N x 1 x size x size, 1 = hole.
            step: 0-based step (picks the phase).
            cache: shared by the groups of one step.

        Returns:
            ``discriminator``: ``{"d_adv"}``; ``generator``: ``{"mse_hole"}`` plus ``{"g_adv"}`` (times alpha) in
            the joint phase.

        Raises:
            InpaintbenchError: for an unknown group, or images of another size than ``config.size``.

        """
        if group not in ("generator", "discriminator"):
            raise InpaintbenchError(f"glcic has no optimizer group {group!r}")
        size = self.config.size
        if image.shape[-2:] != (size, size):
            raise InpaintbenchError(f"glcic's discriminators were built for {size}x{size} images, got "
                                    f"{image.shape[-2]}x{image.shape[-1]}; set size={image.shape[-1]}")
        if "pred" not in cache:
            if "generator" in self.active_groups(step):
                cache["pred"] = self(image * (1 - mask), mask)
            else:
                with torch.no_grad():
                    cache["pred"] = self(image * (1 - mask), mask)
        if "glcic_origins" not in cache:
            cache["glcic_origins"] = hole_patch_origins(mask, self.config.patch)
        origins = cache["glcic_origins"]
        pred = cache["pred"]
        if group == "discriminator":
            fake = (mask * pred + (1 - mask) * image).detach()
            return {"d_adv": self.adv.d_loss(self._discriminate(image, origins), self._discriminate(fake, origins))}
        losses = self.loss(pred.float(), image, mask)
        if step >= self.config.tc + self.config.td and self.config.alpha:
            fake = mask * pred + (1 - mask) * image
            real_logits = None
            if self.config.adversarial == "ragan":
                real_logits = self._discriminate(image, origins)
            losses["g_adv"] = self.config.alpha * self.adv.g_loss(self._discriminate(fake, origins), real_logits)
        return losses


# --------------------------------------------------------------------------------------------------
# official checkpoints

_MMAGIC_ORDER = [*(f"encoder.enc{i}" for i in range(1, 7)), *(f"dilation_neck.dilation_convs.{i}" for i in range(4)),
                 *(f"decoder.dec{i}" for i in range(1, 8))]  # mmagic's GLEncoderDecoder, the 17 layers in order
_BGR = [2, 1, 0]


def _is_mmagic(obj: Any) -> bool:
    state = unwrap(obj, "state_dict")
    return "generator.encoder.enc1.conv.weight" in state and "generator.decoder.dec7.conv.weight" in state


@register_layout("glcic", "mmagic", GLCIC, _is_mmagic,
                 config={"value_range": "symmetric", "output": "clip", "fill": 0.5},
                 source="download.openmmlab.com/mmediting/inpainting/global_local/ (configs/global_local/metafile.yml)",
                 description="MMagic's {'meta', 'state_dict'}: generator.encoder/dilation_neck/decoder ConvModules")
def _from_mmagic(obj: Any) -> dict[str, torch.Tensor]:
    """MMagic's Global&Local file -> ours: the 17 ConvModules in order, BGR made RGB, discriminator dropped.

    MMagic trains on BGR images in [-1, 1] with holes set to 0 (127.5 before normalisation) and clips the
    output to [-1, 1]: the layout's config (``value_range="symmetric"``, ``fill=0.5``, ``output="clip"``) runs
    that convention, and reversing the image input channels of the first layer and the output channels of the
    last turns the BGR network into the same network on RGB, exactly.
    """
    state = strip_prefix(unwrap(obj, "state_dict"), "generator.")
    index = {name: i for i, name in enumerate(_MMAGIC_ORDER)}
    rules = [(rf"{re.escape(name)}\.conv\.(weight|bias)", rf"generator.{i}.0.\1") for name, i in index.items()]
    rules += [(rf"{re.escape(name)}\.bn\.(\w+)", rf"generator.{i}.1.\1") for name, i in index.items()]
    out = map_keys(state, rules)
    first, last = "generator.0.0.weight", f"generator.{len(_MMAGIC_ORDER) - 1}.0"
    if first in out and out[first].shape[1] == 4:
        out[first] = out[first][:, [*_BGR, 3]]
    for key in (f"{last}.weight", f"{last}.bias"):
        if key in out and out[key].shape[0] == 3:
            out[key] = out[key][_BGR]
    return out


register_model("glcic", GLCIC, GLCICConfig(),
               paper="Iizuka et al. 2017 (GLCIC): 17-layer completion net, global + local discriminators, "
                     "MSE + 0.0004 GAN, Tc/Td phases, Adadelta",
               description="completion network + global and local discriminators, 256x256",
               reference_params="6.07M completion network (computed from the paper's layers)",
               reference_count=6_070_000)
register_model("glcic-tiny", GLCIC, GLCICConfig(size=64, width=8, d_width=8, d_fc=64, tc=20, td=10),
               paper="-", description="CPU test size: 64x64, local patch 32, tc 20, td 10")
