"""Training losses of the inpainting literature: reconstruction, VGG perceptual/style, TV and adversarial.

Conventions (every function here):

* images are N x 3 x H x W in [0, 1], masks N x 1 x H x W with **1 = hole** (DESIGN.md, "Tensors");
* every loss returns a scalar tensor that is a mean over the batch (and over pixels, as stated per function);
* adversarial losses take raw discriminator outputs (logits, any shape such as N x 1 or N x 1 x h x w for a
  PatchGAN) and average over all their elements;
* a discriminator loss is the **sum** of its real and fake terms, with no 1/2 factor (EdgeConnect halves it,
  LSGAN's paper halves each term): scale with the loss weight of the model's config.

Sources of the weights and layer choices are in the constants below and in ``model_anchors.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError

__all__ = [
    "ADVERSARIAL", "AdversarialLoss", "EDGECONNECT_PERCEPTUAL_LAYERS", "EDGECONNECT_STYLE_LAYERS", "PCONV_LAYERS",
    "VGGFeatures", "VGG_FILES", "feature_matching", "find_vgg_weights", "get_adversarial", "gradient_penalty",
    "gram_matrix", "hinge_d_loss", "hinge_g_loss", "l1_hole_valid", "lsgan_d_loss", "lsgan_g_loss",
    "nsgan_d_loss", "nsgan_g_loss", "perceptual_loss", "r1_penalty", "ragan_d_loss", "ragan_g_loss", "style_loss",
    "total_variation", "wgan_d_loss", "wgan_g_loss",
]

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

VGG_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}  # torchvision ImageNet weights
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
        InpaintbenchError: when the file is in none of the folders; the message names the file and the folders.

    """
    name = VGG_FILES[arch]
    folders = ([Path(weights_dir)] if weights_dir is not None else []) + [Path(torch.hub.get_dir()) / "checkpoints"]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    where = ", ".join(str(f) for f in folders)
    raise InpaintbenchError(f"{arch} weights {name} not found in {where}; put torchvision's file there "
                            f"(or pass weights_dir)")


class VGGFeatures(nn.Module):
    """Frozen ImageNet VGG16/VGG19 feature extractor for perceptual and style losses.

    Builds the prefix of torchvision's ``vgg*.features`` up to the deepest requested layer, loads the
    torchvision ImageNet weights (``vgg16-397923af.pth`` / ``vgg19-dcbb9e9d.pth``, see :func:`find_vgg_weights`)
    with ``torch.load(..., weights_only=True)``, applies the ImageNet normalisation inside, freezes every
    parameter and stays in eval mode. Gradients still flow to the input. The ReLUs are not in-place, so a
    ``conv*`` output is returned before its activation.

    Layer names follow the paper convention: ``conv{b}_{i}``, ``relu{b}_{i}``, ``pool{b}`` (``pool1`` is
    torchvision index 4 in both nets, ``pool3`` is 16 in VGG16).

    Args:
        arch: ``vgg16`` (PConv) or ``vgg19`` (EdgeConnect, AOT-GAN, DMFN).
        layers: names of the outputs, e.g. :data:`PCONV_LAYERS`.
        weights_dir: an extra folder holding the torchvision file; the torch hub cache is searched too.
        random_weights: skip the file and keep torchvision's random initialisation. For tests only: the
            features are then meaningless as a perceptual measure.

    Raises:
        InpaintbenchError: unknown arch or layer, missing weights file, or a file that is not a VGG state dict.

    """

    def __init__(self, arch: str = "vgg19", layers: Sequence[str] = EDGECONNECT_PERCEPTUAL_LAYERS,
                 weights_dir: str | Path | None = None, random_weights: bool = False) -> None:
        super().__init__()
        if arch not in VGG_FILES:
            raise InpaintbenchError(f"unknown VGG {arch!r}; known: {', '.join(VGG_FILES)}")
        names = _vgg_layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if unknown or not layers:
            raise InpaintbenchError(f"{arch} has no layer {', '.join(unknown) or '(none requested)'}; "
                                    f"layers: {', '.join(names)}")
        self.arch = arch
        self.layers = tuple(layers)
        self._index = {name: names.index(name) for name in self.layers}
        path = None if random_weights else find_vgg_weights(arch, weights_dir)  # fail before building
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
            x: N x 3 x H x W in [0, 1] (normalised with the ImageNet mean and std here).

        Returns:
            ``{layer name: feature map}`` in the order of ``layers``.

        """
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
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


# --------------------------------------------------------------------------------------------------
# adversarial losses (functions of logits)


def nsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN (BCE with logits) discriminator loss: ``mean softplus(-real) + mean softplus(fake)``.

    Args:
        real: logits on real images.
        fake: logits on generated images (detached by the caller).

    Returns:
        The scalar loss.

    """
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def nsgan_g_loss(fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """Non-saturating generator loss ``mean softplus(-fake)`` (= BCE of fake logits against 1).

    Args:
        fake: logits on generated images.
        real: unused (uniform signature).

    Returns:
        The scalar loss.

    """
    return F.softplus(-fake).mean()


def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN discriminator loss ``mean (real - 1)^2 + mean fake^2`` (targets 1 / 0, no 1/2 factors).

    Args:
        real: outputs on real images.
        fake: outputs on generated images.

    Returns:
        The scalar loss.

    """
    return (real - 1).square().mean() + fake.square().mean()


def lsgan_g_loss(fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """Least-squares GAN generator loss ``mean (fake - 1)^2``.

    Args:
        fake: outputs on generated images.
        real: unused (uniform signature).

    Returns:
        The scalar loss.

    """
    return (fake - 1).square().mean()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss ``mean relu(1 - real) + mean relu(1 + fake)`` (SN-PatchGAN, per output element).

    Args:
        real: outputs on real images.
        fake: outputs on generated images.

    Returns:
        The scalar loss.

    """
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g_loss(fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """Hinge generator loss ``-mean fake``.

    Args:
        fake: outputs on generated images.
        real: unused (uniform signature).

    Returns:
        The scalar loss.

    """
    return -fake.mean()


def wgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss ``mean fake - mean real``; add :func:`gradient_penalty` for WGAN-GP.

    Args:
        real: critic outputs on real images.
        fake: critic outputs on generated images.

    Returns:
        The scalar loss.

    """
    return fake.mean() - real.mean()


def wgan_g_loss(fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """Wasserstein generator loss ``-mean fake``.

    Args:
        fake: critic outputs on generated images.
        real: unused (uniform signature).

    Returns:
        The scalar loss.

    """
    return -fake.mean()


def ragan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic average GAN discriminator loss (Jolicoeur-Martineau 2019; DMFN).

    ``BCE(real - mean(fake), 1) + BCE(fake - mean(real), 0)`` with logits, where the means run over all
    elements of the batch's logits.

    Args:
        real: logits on real images.
        fake: logits on generated images.

    Returns:
        The scalar loss.

    """
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def ragan_g_loss(fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """Relativistic average GAN generator loss: the discriminator loss with the roles swapped.

    ``BCE(fake - mean(real), 1) + BCE(real - mean(fake), 0)`` = ``ragan_d_loss(real=fake, fake=real)``.
    Both terms depend on the generator through ``fake``; pass ``real`` logits detached or not as you like
    (the discriminator is not stepped by this loss).

    Args:
        fake: logits on generated images.
        real: logits on real images (required).

    Returns:
        The scalar loss.

    Raises:
        InpaintbenchError: when ``real`` is missing.

    """
    if real is None:
        raise InpaintbenchError("the RaGAN generator loss needs the real logits too")
    return ragan_d_loss(fake, real)


class AdversarialLoss(NamedTuple):
    """A named pair of losses: ``d_loss(real, fake)`` and ``g_loss(fake, real=None)``."""

    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[..., torch.Tensor]


ADVERSARIAL: dict[str, AdversarialLoss] = {
    "nsgan": AdversarialLoss(nsgan_d_loss, nsgan_g_loss),  # GLCIC, EdgeConnect, LaMa (+ r1_penalty)
    "lsgan": AdversarialLoss(lsgan_d_loss, lsgan_g_loss),  # PICNet
    "hinge": AdversarialLoss(hinge_d_loss, hinge_g_loss),  # DeepFill v2 (SN-PatchGAN)
    "wgan": AdversarialLoss(wgan_d_loss, wgan_g_loss),  # DeepFill v1 (+ gradient_penalty, lambda 10)
    "ragan": AdversarialLoss(ragan_d_loss, ragan_g_loss),  # DMFN
}


def get_adversarial(name: str) -> AdversarialLoss:
    """The (d_loss, g_loss) pair registered as ``name`` in :data:`ADVERSARIAL`.

    Args:
        name: ``nsgan``, ``lsgan``, ``hinge``, ``wgan`` or ``ragan``.

    Returns:
        The pair.

    Raises:
        InpaintbenchError: for an unknown name.

    """
    if name not in ADVERSARIAL:
        raise InpaintbenchError(f"unknown adversarial loss {name!r}; known: {', '.join(ADVERSARIAL)}")
    return ADVERSARIAL[name]


def _logits(out: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The logits of a discriminator that may also return features (``(logits, feats)``)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def gradient_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     weight: float = 10.0, mask: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017): ``weight * mean_n (||grad D(x_hat_n)||_2 - 1)^2``.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one ``alpha ~ U[0, 1]`` per sample; the gradient is that
    of the sum of D's outputs (so a PatchGAN's outputs are summed). The graph is kept, so the penalty
    trains D. With ``mask`` the squared gradient is multiplied by it before the norm (DeepFill v1).

    Args:
        discriminator: maps N x C x H x W to logits (or to ``(logits, features)``).
        real: real batch (detached here).
        fake: generated batch (detached here).
        weight: lambda (DeepFill v1: 10).
        mask: optional N x 1 x H x W weights of the gradient (1 = hole).
        generator: random generator for ``alpha``.

    Returns:
        The scalar penalty.

    """
    real, fake = real.detach(), fake.detach()
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype,
                       generator=generator)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = _logits(discriminator(x_hat))
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    sq = grad.square() if mask is None else grad.square() * mask
    norm = (sq.flatten(1).sum(1) + 1e-12).sqrt()
    return weight * (norm - 1).square().mean()


def r1_penalty(d_out_real: torch.Tensor, real: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """R1 penalty (Mescheder et al. 2018) as LaMa computes it: ``weight * mean_n ||grad_x sum D(x_n)||_2^2``.

    No 1/2 factor: LaMa's ``gp_coef = 0.001`` multiplies exactly this. ``real`` must have had
    ``requires_grad_(True)`` before the discriminator saw it; the graph is kept, so the penalty trains D.

    Args:
        d_out_real: discriminator outputs on ``real`` (logits, any shape).
        real: the real batch that produced them.
        weight: the coefficient (LaMa: 0.001).

    Returns:
        The scalar penalty.

    Raises:
        InpaintbenchError: when ``real`` does not require grad.

    """
    if not real.requires_grad:
        raise InpaintbenchError("r1_penalty: call real.requires_grad_(True) before running the discriminator")
    (grad,) = torch.autograd.grad(d_out_real.sum(), real, create_graph=True)
    return weight * grad.square().flatten(1).sum(1).mean()


def feature_matching(real_feats: Sequence[torch.Tensor], fake_feats: Sequence[torch.Tensor],
                     p: int = 1) -> torch.Tensor:
    """Discriminator feature matching: sum over layers of the mean distance between features.

    ``sum_l mean(|fake_l - real_l|^p)``, with ``real`` detached. ``p=1`` is EdgeConnect's loss (weight 10 in its
    config); LaMa uses squared distances averaged over layers (``p=2``, divide by the number of layers).

    Args:
        real_feats: discriminator features of the real batch, one tensor per layer.
        fake_feats: features of the generated batch, same shapes.
        p: 1 (L1) or 2 (squared L2).

    Returns:
        The scalar loss.

    Raises:
        InpaintbenchError: for mismatched layer counts or ``p`` other than 1 or 2.

    """
    if len(real_feats) != len(fake_feats):
        raise InpaintbenchError(f"feature_matching: {len(real_feats)} real layers but {len(fake_feats)} fake ones")
    if p not in (1, 2):
        raise InpaintbenchError(f"feature_matching: p must be 1 or 2, got {p}")
    dist = F.l1_loss if p == 1 else F.mse_loss
    total = torch.zeros((), device=fake_feats[0].device) if fake_feats else torch.zeros(())
    for real, fake in zip(real_feats, fake_feats, strict=True):
        total = total + dist(fake, real.detach())
    return total
