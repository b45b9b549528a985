"""Training losses of the inpainting literature: reconstruction, VGG perceptual/style and TV.

Conventions (every function here):

* images are N x 3 x H x W in [0, 1], masks N x 1 x H x W with **1 = hole** (DESIGN.md, "Tensors");
* every loss returns a scalar tensor that is a mean over the batch (and over pixels, as stated per function).

The adversarial losses are in models/adversarial.py.

Sources of the weights and layer choices are in the constants below and in ``model_anchors.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError

__all__ = [
    "EDGECONNECT_PERCEPTUAL_LAYERS", "EDGECONNECT_STYLE_LAYERS", "PCONV_LAYERS", "VGGFeatures", "VGG_ARCHS",
    "RANDOM_LOSS_NETWORKS", "find_vgg_weights", "gram_matrix", "l1_hole_valid", "perceptual_loss",
    "random_loss_networks", "style_loss", "total_variation",
]

# The one switch for tests: with this environment variable set to 1, every frozen loss network (VGG, LaMa's
# segmentation encoder...) is built with seeded random weights instead of its pretrained file, which the test
# machines do not have. Nothing else reads it, and no model config carries a test-only option.
RANDOM_LOSS_NETWORKS = "INPAINTBENCH_RANDOM_LOSS_NETWORKS"
_RANDOM_SEED = 0  # the random networks are the same in every process and after every resume


def random_loss_networks() -> bool:
    """Whether frozen loss networks are built with seeded random weights (tests only, see RANDOM_LOSS_NETWORKS)."""
    return os.environ.get(RANDOM_LOSS_NETWORKS) == "1"

# --------------------------------------------------------------------------------------------------
# reconstruction


def l1_hole_valid(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weight: float = 6.0,
                  valid_weight: float = 1.0) -> torch.Tensor:
    """L1 loss split into hole and known pixels, PConv style.

    ``hole_weight * mean(|pred - target| * mask) + valid_weight * mean(|pred - target| * (1 - mask))``, where
    each mean runs over **all** N x C x H x W elements (not over the hole or known pixels alone), as in the
    PConv re-implementations; the defaults are PConv's (hole 6, valid 1). LaMa is ``hole_weight=0,
    valid_weight=10``; EdgeConnect's ``L1 / mean(mask)`` is a different normalisation.

    Args:
        pred: prediction N x C x H x W.
        target: ground truth N x C x H x W.
        mask: N x 1 x H x W (or N x C x H x W), 1 = hole.
        hole_weight: weight of the hole term.
        valid_weight: weight of the known-pixel term.

    Returns:
        The weighted sum, a scalar.

    """
    diff = (pred - target).abs()
    return hole_weight * (diff * mask).mean() + valid_weight * (diff * (1 - mask)).mean()


def total_variation(image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PConv's total-variation loss on the hole region dilated by one pixel.

    The region ``P`` is the hole dilated by one pixel with a 3 x 3 square (8-neighbourhood, a max-pool of the
    mask). A horizontal pair ``(i, j), (i, j + 1)`` counts when both pixels are in ``P``, a vertical pair
    ``(i, j), (i + 1, j)`` likewise; the loss is the sum of ``|I[i, j+1] - I[i, j]|`` and ``|I[i+1, j] - I[i, j]|``
    over counted pairs and all channels, divided by ``N * C * H * W`` (the paper's ``N_{I_comp}`` per image,
    averaged over the batch). Apply it to the composite ``I_comp`` as the paper does. ``mask=None`` uses the
    whole image (naoto0804's variant, except that it takes the mean over pairs instead of over pixels).

    Args:
        image: N x C x H x W, usually the composite ``mask * pred + (1 - mask) * target``.
        mask: N x 1 x H x W, 1 = hole; ``None`` counts every pair.

    Returns:
        The scalar loss.

    """
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs()
    if mask is not None:
        region = F.max_pool2d(mask.to(image.dtype), kernel_size=3, stride=1, padding=1)
        dx = dx * (region[..., :, 1:] * region[..., :, :-1])
        dy = dy * (region[..., 1:, :] * region[..., :-1, :])
    return (dx.sum() + dy.sum()) / image.numel()


# --------------------------------------------------------------------------------------------------
# VGG features, perceptual and style losses

VGG_ARCHS = ("vgg16", "vgg19")  # torchvision ImageNet weights (files in inpaintbench._weights.WEIGHTS)
PCONV_LAYERS = ("pool1", "pool2", "pool3")  # VGG16, perceptual and style (Liu et al. 2018; mmagic '4', '9', '16')
EDGECONNECT_PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # VGG19, also AOT-GAN
EDGECONNECT_STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")  # VGG19, also AOT-GAN

_VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}  # convs per block (torchvision cfgs D, E)
_VGG_WIDTHS = (64, 128, 256, 512, 512)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg_layer_names(arch: str) -> list[str]:
    """Names of the entries of torchvision's ``vgg*.features``, in order (conv1_1, relu1_1, ..., pool5)."""
    names = []
    for block, convs in enumerate(_VGG_BLOCKS[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def _vgg_features(arch: str) -> nn.Sequential:
    """The layer stack of torchvision's ``vgg*.features`` (same indices, so the same state-dict keys)."""
    layers: list[nn.Module] = []
    c_in = 3
    for convs, width in zip(_VGG_BLOCKS[arch], _VGG_WIDTHS, strict=True):
        for _ in range(convs):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def find_vgg_weights(arch: str, weights_dir: str | Path | None = None) -> Path:
    """Locate torchvision's ImageNet VGG file.

    Looks in ``weights_dir`` (when given), then in ``torch.hub.get_dir()/checkpoints`` (where
    ``torchvision.models.vgg16(weights="DEFAULT")`` caches it).

    Args:
        arch: ``vgg16`` or ``vgg19``.
        weights_dir: an extra folder to look in first.

    Returns:
        The path of the file.

    Raises:
        InpaintbenchError: when the file is in none of the folders; the message names the file, the folders
            and the commands that provide it.

    """
    from .._weights import WEIGHTS, search_dir

    name = WEIGHTS.get(arch).filename
    folders = ([search_dir(weights_dir)] if weights_dir is not None else []) + [search_dir()]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    where = ", ".join(str(f) for f in folders)
    raise InpaintbenchError(f"{arch} weights {name} not found in {where}: run `inpaintbench weights download "
                            f"{arch}` on a connected machine, or `inpaintbench weights import {name}`")


class VGGFeatures(nn.Module):
    """Frozen ImageNet VGG16/VGG19 feature extractor for perceptual and style losses.

    Builds the prefix of torchvision's ``vgg*.features`` up to the deepest requested layer, loads the
    torchvision ImageNet weights (``vgg16-397923af.pth`` / ``vgg19-dcbb9e9d.pth``, see :func:`find_vgg_weights`)
    with ``torch.load(..., weights_only=True)``, applies the ImageNet normalisation inside (unless ``normalize`` is
    off), freezes every parameter and stays in eval mode. Gradients still flow to the input. The ReLUs are not
    in-place, so a ``conv*`` output is returned before its activation.

    Layer names follow the paper convention: ``conv{b}_{i}``, ``relu{b}_{i}``, ``pool{b}`` (``pool1`` is
    torchvision index 4 in both nets, ``pool3`` is 16 in VGG16).

    Args:
        arch: ``vgg16`` (PConv) or ``vgg19`` (EdgeConnect, AOT-GAN, DMFN).
        layers: names of the outputs, e.g. :data:`PCONV_LAYERS`.
        weights_dir: an extra folder holding the torchvision file; the torch hub cache is searched too.
        random_weights: skip the file and use a seeded random initialisation (the same in every process).
            For tests only: the features are then meaningless as a perceptual measure. None (default) follows
            :func:`random_loss_networks`.
        normalize: apply the ImageNet mean/std normalisation to the [0, 1] input (torchvision's convention,
            PConv, AOT-GAN); False feeds the [0, 1] image as it is, as EdgeConnect's ``loss.py: VGG19`` does.

    Raises:
        InpaintbenchError: unknown arch or layer, missing weights file, or a file that is not a VGG state dict.

    """

    def __init__(self, arch: str = "vgg19", layers: Sequence[str] = EDGECONNECT_PERCEPTUAL_LAYERS,
                 weights_dir: str | Path | None = None, random_weights: bool | None = None,
                 normalize: bool = True) -> None:
        super().__init__()
        if arch not in VGG_ARCHS:
            raise InpaintbenchError(f"unknown VGG {arch!r}; known: {', '.join(VGG_ARCHS)}")
        names = _vgg_layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if unknown or not layers:
            raise InpaintbenchError(f"{arch} has no layer {', '.join(unknown) or '(none requested)'}; "
                                    f"layers: {', '.join(names)}")
        self.arch = arch
        self.normalize = normalize
        self.layers = tuple(layers)
        self._index = {name: names.index(name) for name in self.layers}
        if random_weights is None:
            random_weights = random_loss_networks()
        path = None if random_weights else find_vgg_weights(arch, weights_dir)  # fail before building
        with torch.random.fork_rng(devices=[]):  # seeded random weights; the caller's RNG is untouched
            torch.manual_seed(_RANDOM_SEED)
            features = _vgg_features(arch)[: max(self._index.values()) + 1]
        if path is not None:
            self._load(features, path)
        self.features = features
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _load(features: nn.Sequential, path: Path) -> None:
        """Load the ``features.*`` entries of a torchvision VGG state dict into ``features``."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
            raise InpaintbenchError(f"cannot read VGG weights {path}: {err}") from None
        if not isinstance(state, Mapping):
            raise InpaintbenchError(f"{path} does not hold a state dict")
        wanted = features.state_dict()
        own = {key: state.get(f"features.{key}") for key in wanted}
        bad = [key for key, value in own.items()
               if not isinstance(value, torch.Tensor) or value.shape != wanted[key].shape]
        if bad:
            raise InpaintbenchError(f"{path} is not a torchvision VGG state dict: features.{bad[0]} missing or "
                                    f"of the wrong shape")
        features.load_state_dict(own)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode whatever ``mode`` says (the extractor is frozen).

        Args:
            mode: ignored.

        Returns:
            self.

        """
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of an image batch.

        Args:
            x: N x 3 x H x W in [0, 1] (normalised with the ImageNet mean and std here unless ``normalize`` is off).

        Returns:
            ``{layer name: feature map}`` in the order of ``layers``.

        """
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype) if self.normalize else x
        wanted = {index: name for name, index in self._index.items()}
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
        return {name: out[name] for name in self.layers}


def _layer_weights(feats: Mapping[str, torch.Tensor], weights: Mapping[str, float] | Sequence[float] | None,
                   ) -> dict[str, float]:
    """Per-layer weights as a dict, 1 for every layer when ``weights`` is None."""
    if weights is None:
        return dict.fromkeys(feats, 1.0)
    if isinstance(weights, Mapping):
        return {name: float(weights[name]) for name in feats}
    if len(weights) != len(feats):
        raise InpaintbenchError(f"{len(weights)} layer weights for {len(feats)} layers")
    return {name: float(w) for name, w in zip(feats, weights, strict=True)}


def perceptual_loss(feats_a: Mapping[str, torch.Tensor], feats_b: Mapping[str, torch.Tensor],
                    weights: Mapping[str, float] | Sequence[float] | None = None) -> torch.Tensor:
    """Perceptual loss: weighted sum over layers of the mean L1 distance between feature maps.

    ``sum_l w_l * mean(|A_l - B_l|)`` (PConv and EdgeConnect both use L1 with a mean per layer). Pass the
    ground-truth features detached (or computed under ``torch.no_grad``).

    Args:
        feats_a: ``{layer: N x C x h x w}``, e.g. ``VGGFeatures(pred)``.
        feats_b: the same layers for the target.
        weights: per-layer weights (by name, or in the order of ``feats_a``); ``None`` gives 1 each.

    Returns:
        The scalar loss.

    """
    w = _layer_weights(feats_a, weights)
    total = torch.zeros((), device=next(iter(feats_a.values())).device)
    for name in feats_a:
        total = total + w[name] * F.l1_loss(feats_a[name], feats_b[name])
    return total


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by ``C * H * W`` (PConv's ``K_p``), computed in float32 outside autocast.

    Args:
        feat: N x C x H x W.

    Returns:
        N x C x C float32, ``G[n, i, j] = sum_{y,x} F[n, i, y, x] F[n, j, y, x] / (C * H * W)``.

    """
    n, c, h, w = feat.shape
    with torch.autocast(device_type=feat.device.type, enabled=False):
        f = feat.reshape(n, c, h * w).to(torch.float32)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def style_loss(feats_a: Mapping[str, torch.Tensor], feats_b: Mapping[str, torch.Tensor],
               weights: Mapping[str, float] | Sequence[float] | None = None) -> torch.Tensor:
    """Style loss: weighted sum over layers of the mean L1 distance between Gram matrices.

    ``sum_l w_l * mean(|G(A_l) - G(B_l)|)`` with :func:`gram_matrix` (normalised by ``C * H * W``); the mean
    runs over N x C x C, as in the PConv and EdgeConnect code.

    Args:
        feats_a: ``{layer: N x C x h x w}``.
        feats_b: the same layers for the target.
        weights: per-layer weights (by name or in order); ``None`` gives 1 each.

    Returns:
        The scalar loss (float32).

    """
    w = _layer_weights(feats_a, weights)
    total = torch.zeros((), device=next(iter(feats_a.values())).device)
    for name in feats_a:
        total = total + w[name] * F.l1_loss(gram_matrix(feats_a[name]), gram_matrix(feats_b[name]))
    return total
