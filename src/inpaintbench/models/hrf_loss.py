"""LaMa's high-receptive-field perceptual loss (HRF-PL) on a frozen ADE20k ResNet50-dilated segmentation encoder.

Sources: ``advimman/lama: saicinpainting/training/losses/perceptual.py`` (``ResNetPL``), ``models/ade20k/base.py``
(``ModelBuilder.get_encoder``, ``ResnetDilated``) and ``models/ade20k/resnet.py`` (the CSAIL ResNet50 with a
three-convolution stem); model_anchors.md section 9.

The encoder is CSAIL's scene-parsing ResNet50 (stem: 3x3 convolutions 3 -> 64 (stride 2) -> 64 -> 128, BN + ReLU
each, 3x3 max-pool stride 2; bottleneck stages of 3, 4, 6, 3 blocks, stride on the 3x3 convolution), made
*dilated* with output stride 8: stages 3 and 4 lose their stride and their 3x3 convolutions get dilation 2 and 4
(the first block of each stage 1 and 2), as ``ResnetDilated(dilate_scale=8)`` rewrites them. The loss is

    ``HRF-PL = sum over the four stage outputs of mean((phi(pred) - phi(target))^2)``

with both images ImageNet-normalised inside, multiplied by LaMa's weight (30) in the model.

Weights: ``encoder_epoch_20.pth`` of ``ade20k-resnet50dilated-ppm_deepsup`` (CSAIL; the file LaMa's README tells
users to put under ``$TORCH_HOME/ade20k/...``), an entry of :data:`inpaintbench._weights.WEIGHTS`: put it in the
folder given by the model's ``weights_dir`` option or in the torch hub cache (``inpaintbench weights import
encoder_epoch_20.pth``). No checksum of it is published, so none is checked. With
:func:`~inpaintbench.models.losses.random_loss_networks` (tests) the encoder gets seeded random weights.

The encoder stays in eval mode (BatchNorm running statistics), which is what ``ResNetPL`` sets with
``self.impl.eval()``; a Lightning ``model.train()`` call on the whole training module would switch it back to
batch statistics, which this module does not reproduce.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .losses import (
    _IMAGENET_MEAN,
    _IMAGENET_STD,
    _RANDOM_SEED,
    FrozenNetwork,
    load_frozen_weights,
    random_loss_networks,
)

__all__ = ["ADE20K_ENCODER", "ADE20kResNetFeatures", "find_ade20k_weights", "hrf_perceptual_loss"]

ADE20K_ENCODER = "ade20k-resnet50dilated"  # the WEIGHTS entry
_STAGES = ((64, 3, 1, 1), (128, 4, 2, 1), (256, 6, 1, 2), (512, 3, 1, 4))  # planes, blocks, stride, dilation


def _bn_conv(c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[nn.Conv2d,
                                                                                               nn.BatchNorm2d]:
    padding = dilation * (kernel - 1) // 2
    return (nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, bias=False), nn.BatchNorm2d(c_out))


class _Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 (x4), BN after each, ReLU, and the (projected) skip."""

    def __init__(self, c_in: int, planes: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _bn_conv(c_in, planes, 1)
        self.conv2, self.bn2 = _bn_conv(planes, planes, 3, stride, dilation)
        self.conv3, self.bn3 = _bn_conv(planes, 4 * planes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != 4 * planes:
            self.downsample = nn.Sequential(*_bn_conv(c_in, 4 * planes, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _stage(c_in: int, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    """One ResNet stage; a dilated stage has stride 1 and its first block half the dilation (CSAIL's rewrite)."""
    first_dilation = max(1, dilation // 2)
    layers = [_Bottleneck(c_in, planes, stride, first_dilation)]
    layers += [_Bottleneck(4 * planes, planes, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class _ResNet50Dilated(nn.Module):
    """The encoder with the attribute names of the CSAIL state dict (``conv1``, ``bn1``, ..., ``layer4.2.bn3``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = _bn_conv(3, 64, 3, stride=2)
        self.conv2, self.bn2 = _bn_conv(64, 64, 3)
        self.conv3, self.bn3 = _bn_conv(64, 128, 3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = 128
        for i, (planes, blocks, stride, dilation) in enumerate(_STAGES, start=1):
            setattr(self, f"layer{i}", _stage(c_in, planes, blocks, stride, dilation))
            c_in = 4 * planes

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = F.relu(bn(conv(x)))
        x = self.maxpool(x)
        feats = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            feats.append(x)
        return feats


def find_ade20k_weights(weights_dir: str | Path | None = None) -> Path:
    """Locate ``encoder_epoch_20.pth`` in ``weights_dir`` (when given), then in the torch hub cache.

    Args:
        weights_dir: an extra folder to look in first.

    Returns:
        The path of the file.

    Raises:
        InpaintbenchError: one line naming the file, the folders and the commands that provide it.

    """
    from .._weights import WEIGHTS, search_dir

    entry = WEIGHTS.get(ADE20K_ENCODER)
    folders = ([search_dir(weights_dir)] if weights_dir is not None else []) + [search_dir()]
    for folder in folders:
        if (folder / entry.filename).is_file():
            return folder / entry.filename
    where = ", ".join(str(f) for f in folders)
    raise InpaintbenchError(f"LaMa's HRF perceptual loss needs the ADE20k ResNet50-dilated encoder {entry.filename} "
                            f"(from {entry.url}) in {where}: run `inpaintbench weights import {entry.filename}`, or "
                            "pass -O weights_dir=FOLDER, or train with -O perceptual=vgg (LaMa's VGG ablation)")


class ADE20kResNetFeatures(FrozenNetwork):
    """Frozen ADE20k ResNet50-dilated encoder: the four stage outputs of an image in [0, 1].

    Args:
        weights_dir: an extra folder holding ``encoder_epoch_20.pth`` (the torch hub cache is searched too).
        random_weights: skip the file and use seeded random weights (tests); None follows
            :func:`~inpaintbench.models.losses.random_loss_networks`.

    Raises:
        InpaintbenchError: missing file, or a file that is not the encoder's state dict.

    """

    def __init__(self, weights_dir: str | Path | None = None, random_weights: bool | None = None) -> None:
        super().__init__()
        if random_weights is None:
            random_weights = random_loss_networks()
        path = None if random_weights else find_ade20k_weights(weights_dir)  # fail before building
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_RANDOM_SEED)
            self.encoder = _ResNet50Dilated()
        if path is not None:
            self._load(path)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def _load(self, path: Path) -> None:
        """Load the CSAIL encoder state dict (a ``module.`` prefix from DataParallel is accepted)."""
        load_frozen_weights(self.encoder, path, "the ADE20k encoder", "the ADE20k ResNet50-dilated encoder",
                            strip_prefix="module.")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the four stages (strides 4, 8, 8, 8; 256, 512, 1024, 2048 channels).

        Args:
            x: N x 3 x H x W in [0, 1] (ImageNet-normalised here).

        Returns:
            Four feature maps.

        """
        return self.encoder((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def hrf_perceptual_loss(net: ADE20kResNetFeatures, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Unweighted HRF-PL: sum over the encoder's stages of the mean squared feature difference (``ResNetPL``).

    Args:
        net: the frozen encoder.
        pred: the generator's output N x 3 x H x W in [0, 1] (gradients flow to it).
        target: the ground truth (no gradient needed).

    Returns:
        The scalar loss (float32).

    """
    with torch.no_grad():
        target_feats = net(target)
    total = torch.zeros((), device=pred.device)
    for p, t in zip(net(pred), target_feats, strict=True):
        total = total + F.mse_loss(p.float(), t.float())
    return total
