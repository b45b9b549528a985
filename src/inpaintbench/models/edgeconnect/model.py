"""EdgeConnect's networks, config and model: the two generators, their PatchGANs, the losses and the phases.

The family's sources, losses and deviations from the official code are in the package docstring.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..._registry import InpaintbenchError
from ..adversarial import ADVERSARIAL, feature_matching, get_adversarial
from ..base import InpaintModel, OptimizerGroup, register_model
from ..edges import canny_edges, gray_image, sample_edges
from ..layers import ResidualBlock, conv_norm_act, deconv_norm_act
from ..layers.patchgan import PatchDiscriminator
from ..losses import EDGECONNECT_PERCEPTUAL_LAYERS, EDGECONNECT_STYLE_LAYERS, VGGFeatures, perceptual_loss, style_loss

__all__ = ["EdgeConnect", "EdgeConnectConfig", "EdgeConnectGenerator"]

MODES = ("edge", "inpaint", "edge_inpaint", "joint")  # the official MODEL 1, 2, 3, 4
_PHASES = {"edge": ("edge",), "inpaint": ("inpaint",), "edge+inpaint": ("edge", "inpaint"),
           "edge_inpaint": ("edge_inpaint",), "joint": ("joint",)}
_EDGE_GROUPS = ("edge_discriminator", "edge_generator")
_IMAGE_GROUPS = ("discriminator", "generator")
_GROUPS = {"edge": _EDGE_GROUPS, "inpaint": _IMAGE_GROUPS, "edge_inpaint": _IMAGE_GROUPS,
           "joint": _EDGE_GROUPS + _IMAGE_GROUPS}
_ORDER = ("edge_discriminator", "discriminator", "edge_generator", "generator")  # discriminators first
_EDGE_SOURCES = ("predicted", "oracle")


@dataclass(frozen=True)
class EdgeConnectConfig:
    """EdgeConnect hyper-parameters (the official ``config.yml.example`` by default)."""

    width: int = 64  # channels of the generators' first conv (64 -> 128 -> 256)
    blocks: int = 8  # residual blocks of each generator
    dilation: int = 2  # dilation of the residual blocks' first conv
    d_width: int = 64  # discriminators: channels of the first conv (64, 128, 256, 512, 1)
    sigma: float = 2.0  # Canny's Gaussian sigma (SIGMA)
    edges: str = "predicted"  # what G2 paints from: G1's edges, or "oracle" (a given full edge map; ablation)
    merge_edges: bool = True  # G2 sees G1's edges in the hole and Canny's outside; False: G1's raw output (test())
    l1_weight: float = 1.0  # L1_LOSS_WEIGHT (divided by the mean of the mask)
    adv_weight: float = 0.1  # INPAINT_ADV_LOSS_WEIGHT
    perceptual_weight: float = 0.1  # CONTENT_LOSS_WEIGHT
    style_weight: float = 250.0  # STYLE_LOSS_WEIGHT
    edge_adv_weight: float = 1.0  # G1's adversarial term (unweighted in the official code)
    fm_weight: float = 10.0  # FM_LOSS_WEIGHT
    adversarial: str = "nsgan"  # GAN_LOSS (adversarial.ADVERSARIAL)
    lr: float = 1e-4  # LR of the generators
    d2g_lr: float = 0.1  # D2G_LR: the discriminators' learning rate is d2g_lr * lr
    betas: tuple[float, float] = (0.0, 0.9)  # BETA1, BETA2
    phases: tuple[str, ...] = ("edge", "inpaint", "joint")  # training modes in order (see the module docstring)
    phase_steps: tuple[int, ...] = (500_000, 500_000)  # steps of each phase but the last
    vgg_weights_dir: str | None = None  # an extra folder holding vgg19-dcbb9e9d.pth (else the torch hub cache)

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        object.__setattr__(self, "phase_steps", tuple(int(s) for s in self.phase_steps))
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.width < 1 or self.blocks < 0 or self.dilation < 1 or self.d_width < 1:
            raise InpaintbenchError("edgeconnect needs width >= 1, blocks >= 0, dilation >= 1 and d_width >= 1")
        if self.sigma <= 0:
            raise InpaintbenchError(f"edgeconnect sigma must be > 0 (Canny's Gaussian), got {self.sigma}")
        if self.edges not in _EDGE_SOURCES:
            raise InpaintbenchError(f"edgeconnect edges must be one of {', '.join(_EDGE_SOURCES)}, got {self.edges!r}")
        if self.adversarial not in ADVERSARIAL:
            raise InpaintbenchError(f"unknown adversarial loss {self.adversarial!r}; known: {', '.join(ADVERSARIAL)}")
        unknown = [p for p in self.phases if p not in _PHASES]
        if unknown or not self.phases:
            raise InpaintbenchError(f"edgeconnect phases must be among {', '.join(_PHASES)}, got {list(self.phases)}")
        if len(self.phase_steps) != len(self.phases) - 1 or any(s < 0 for s in self.phase_steps):
            raise InpaintbenchError(f"edgeconnect phase_steps needs {len(self.phases) - 1} step counts >= 0 (one per "
                                    f"phase but the last), got {list(self.phase_steps)}")
        if self.lr <= 0 or self.d2g_lr <= 0:
            raise InpaintbenchError("edgeconnect lr and d2g_lr must be > 0")

    def modes(self) -> set[str]:
        """Every training mode some phase uses."""
        return {mode for phase in self.phases for mode in _PHASES[phase]}


# --------------------------------------------------------------------------------------------------
# networks


class EdgeConnectGenerator(nn.Module):
    """EdgeConnect's generator body: encoder, dilated residual blocks, decoder.

    Args:
        in_channels: 3 for the edge generator, 4 for the image generator.
        out_channels: 1 (edges) or 3 (RGB).
        width: channels of the first conv (official: 64).
        blocks: residual blocks (official: 8).
        dilation: dilation of the blocks' first conv (official: 2).
        spectral_norm: spectral norm on every conv but the last (the edge generator); the residual blocks then
            have no bias, as the official code.
        output: ``sigmoid`` (edges) or ``tanh01`` (``(tanh(y) + 1) / 2``, the image).

    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 8, dilation: int = 2,
                 spectral_norm: bool = False, output: str = "sigmoid") -> None:
        super().__init__()
        if output not in ("sigmoid", "tanh01"):
            raise InpaintbenchError(f"EdgeConnectGenerator output must be sigmoid or tanh01, got {output!r}")
        self.output = output
        w1, w2, w4 = width, 2 * width, 4 * width
        sn = spectral_norm
        self.encoder = nn.Sequential(
            conv_norm_act(in_channels, w1, 7, padding=3, padding_mode="reflect", norm="instance", bias=True,
                          spectral_norm=sn),
            conv_norm_act(w1, w2, 4, stride=2, padding=1, norm="instance", bias=True, spectral_norm=sn),
            conv_norm_act(w2, w4, 4, stride=2, padding=1, norm="instance", bias=True, spectral_norm=sn),
        )
        self.middle = nn.Sequential(*[ResidualBlock(w4, dilation, norm="instance", spectral_norm=sn, bias=not sn)
                                      for _ in range(blocks)])
        self.decoder = nn.Sequential(
            deconv_norm_act(w4, w2, norm="instance", bias=True, spectral_norm=sn),
            deconv_norm_act(w2, w1, norm="instance", bias=True, spectral_norm=sn),
            nn.Conv2d(w1, out_channels, 7, padding=3, padding_mode="reflect"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The output in [0, 1] (sides must be multiples of 4)."""
        y = self.decoder(self.middle(self.encoder(x)))
        return torch.sigmoid(y) if self.output == "sigmoid" else (torch.tanh(y) + 1) / 2


def _discriminator(in_channels: int, width: int) -> PatchDiscriminator:
    """The official 70x70 PatchGAN: spectral norm and no bias on every conv."""
    return PatchDiscriminator(in_channels, widths=(width, 2 * width, 4 * width, 8 * width, 1), strides=(2, 2, 2, 1, 1),
                              kernel=4, padding=1, norm="none", spectral_norm=True, bias=False, last_bias=False)


class EdgeConnect(InpaintModel):
    """EdgeConnect: edge generator, image generator and their PatchGAN discriminators.

    Args:
        config: an :class:`EdgeConnectConfig`.

    """

    trainable = True
    inference_modules = ("edge_generator", "generator")
    parameter_modules = ("generator",)  # the published 10.77M is the image generator's
    inference_options = ("edges", "merge_edges")
    guidance = "edges"
    size_multiple = 4

    def __init__(self, config: EdgeConnectConfig) -> None:
        super().__init__(config)
        c = config
        self.edge_generator = EdgeConnectGenerator(3, 1, c.width, c.blocks, c.dilation, spectral_norm=True,
                                                   output="sigmoid")
        self.generator = EdgeConnectGenerator(4, 3, c.width, c.blocks, c.dilation, spectral_norm=False,
                                              output="tanh01")
        self.edge_discriminator = _discriminator(2, c.d_width)
        self.discriminator = _discriminator(3, c.d_width)
        self.adv = get_adversarial(c.adversarial)
        self._vgg: list[VGGFeatures] = []  # a plain list: not a submodule, not in state_dict

    # ----------------------------------------------------------------------------------------------
    # inference

    def _check_size(self, image: torch.Tensor) -> None:
        h, w = image.shape[-2:]
        if h % 4 or w % 4:
            raise InpaintbenchError(f"edgeconnect needs sides that are multiples of 4, got {h}x{w} (ib.inpaint pads "
                                    "any size)")

    def edge_map(self, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """The edge map the image generator paints from.

        Args:
            image: N x 3 x H x W in [0, 1] (hole pixels are ignored).
            mask: N x 1 x H x W, 1 = hole.
            guide: N x 1 x H x W in [0, 1], 1 on the user's strokes (added to G1's edges inside the hole); with
                ``edges="oracle"``, the full edge map itself (required).

        Returns:
            N x 1 x H x W in [0, 1].

        Raises:
            InpaintbenchError: for the oracle without a guide, or a guide of the wrong shape.

        """
        mask = mask.to(image.dtype)
        if guide is not None and guide.shape != mask.shape:
            raise InpaintbenchError(f"edgeconnect: guide {tuple(guide.shape)} does not fit mask {tuple(mask.shape)}")
        if self.config.edges == "oracle":
            if guide is None:
                raise InpaintbenchError("edgeconnect with edges='oracle' paints from a given edge map: pass it as "
                                        "guide (the harness passes oracle_guide(truth))")
            return guide.to(image.dtype)
        gray = gray_image(image * (1 - mask)).to(image.dtype)
        known_edges = canny_edges(gray, self.config.sigma, where=1 - mask).to(image.dtype)
        x = torch.cat([gray * (1 - mask) + mask, known_edges * (1 - mask), mask], dim=1)
        edges = self.edge_generator(x)
        if guide is not None:
            edges = torch.maximum(edges, guide.to(edges.dtype) * mask)
        if self.config.merge_edges:
            edges = edges * mask + known_edges * (1 - mask)
        return edges

    def paint(self, image: torch.Tensor, mask: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """The image generator on a given edge map: ``G2([image * (1 - m) + m, edges])``.

        Args:
            image: N x 3 x H x W in [0, 1] (hole pixels are ignored: holes are filled with 1).
            mask: N x 1 x H x W, 1 = hole.
            edges: N x 1 x H x W in [0, 1].

        Returns:
            N x 3 x H x W in [0, 1].

        """
        self._check_size(image)
        mask = mask.to(image.dtype)
        return self.generator(torch.cat([image * (1 - mask) + mask, edges.to(image.dtype)], dim=1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """Inpaint: G1 completes the edges in the hole, G2 paints the image from them.

        Args:
            image: N x 3 x H x W in [0, 1], sides multiples of 4 (hole pixels are ignored).
            mask: N x 1 x H x W, 1 = hole.
            guide: optional user edges (see :meth:`edge_map`).

        Returns:
            N x 3 x H x W in [0, 1].

        """
        self._check_size(image)
        return self.paint(image, mask, self.edge_map(image, mask, guide))

    def oracle_guide(self, truth: torch.Tensor) -> torch.Tensor | None:
        """With ``edges="oracle"``: Canny's edges of the uncorrupted image (as in training); else None.

        Args:
            truth: N x 3 x H x W in [0, 1], the ground truth.

        Returns:
            N x 1 x H x W edge map, or None.

        """
        if self.config.edges != "oracle":
            return None
        return canny_edges(gray_image(truth), self.config.sigma).to(truth.dtype)

    # ----------------------------------------------------------------------------------------------
    # training schedule

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """Discriminators first (lr ``d2g_lr * lr``), then the generators (lr ``lr``), all Adam with ``betas``.

        Returns:
            The four groups, in update order.

        """
        c = self.config
        d_lr = c.d2g_lr * c.lr
        return (OptimizerGroup("edge_discriminator", ("edge_discriminator",), "adam", d_lr, c.betas),
                OptimizerGroup("discriminator", ("discriminator",), "adam", d_lr, c.betas),
                OptimizerGroup("edge_generator", ("edge_generator",), "adam", c.lr, c.betas),
                OptimizerGroup("generator", ("generator",), "adam", c.lr, c.betas))

    def phase(self, step: int) -> str:
        """The phase (a name of ``config.phases``) that ``step`` (0-based) belongs to."""
        end = 0
        for name, steps in zip(self.config.phases, self.config.phase_steps, strict=False):
            end += steps
            if step < end:
                return name
        return self.config.phases[-1]

    def modes_at(self, step: int) -> tuple[str, ...]:
        """The official training modes (``edge``, ``inpaint``, ``edge_inpaint``, ``joint``) active at ``step``."""
        return _PHASES[self.phase(step)]

    def active_groups(self, step: int) -> tuple[str, ...]:
        """The groups the phase of ``step`` trains, discriminators first.

        Args:
            step: 0-based step.

        Returns:
            Group names.

        """
        wanted = {g for mode in self.modes_at(step) for g in _GROUPS[mode]}
        return tuple(g for g in _ORDER if g in wanted)

    def prepare_training(self, image_size: int) -> None:
        """Check the training side (a multiple of 4) and, when the image generator trains, the VGG19 weights.

        Args:
            image_size: the training images' side.

        Raises:
            InpaintbenchError: naming the fix.

        """
        from ..losses import find_vgg_weights, random_loss_networks

        if image_size % 4:
            raise InpaintbenchError(f"edgeconnect trains on sides that are multiples of 4; the dataset's are "
                                    f"{image_size}: rebuild it with --size {image_size - image_size % 4}")
        uses_vgg = self.config.perceptual_weight or self.config.style_weight
        if self.config.modes() - {"edge"} and uses_vgg and not random_loss_networks():
            find_vgg_weights("vgg19", self.config.vgg_weights_dir)

    # ----------------------------------------------------------------------------------------------
    # losses

    def vgg(self, device: torch.device) -> VGGFeatures:
        """The loss network (VGG19 up to relu5_2, unnormalised input), built on first use, on ``device``."""
        if not self._vgg:
            layers = sorted(set(EDGECONNECT_PERCEPTUAL_LAYERS + EDGECONNECT_STYLE_LAYERS))
            self._vgg.append(VGGFeatures("vgg19", layers, weights_dir=self.config.vgg_weights_dir, normalize=False))
        vgg = self._vgg[0]
        if vgg.mean.device != device:
            vgg.to(device)
        return vgg

    def sample_inputs(self) -> Any:
        """The gray image and Canny edges of each training sample, computed in the DataLoader workers."""
        return functools.partial(sample_edges, sigma=self.config.sigma)

    def _truth(self, cache: dict[str, Any], image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gray image and Canny edges of the whole training image (the official training edges), once per batch.

        The Trainer's loader computes them in its workers (:meth:`sample_inputs`); a caller without them (a
        plain call of :meth:`training_losses`) gets them computed here, on the host.
        """
        if "ec_gray" not in cache:
            if "sample_gray" in cache:
                cache["ec_gray"] = cache["sample_gray"].to(image.dtype)
                cache["ec_edges"] = cache["sample_edges"].to(image.dtype)
            else:
                gray = gray_image(image)
                cache["ec_gray"] = gray.to(image.dtype)
                cache["ec_edges"] = canny_edges(gray, self.config.sigma).to(image.dtype)
        return cache["ec_gray"], cache["ec_edges"]

    def _edge_pred(self, cache: dict[str, Any], image: torch.Tensor, mask: torch.Tensor, grad: bool) -> torch.Tensor:
        """G1's output on the masked gray image and edges (the official ``EdgeModel.forward``), once per batch."""
        if "ec_edge_pred" not in cache:
            gray, edges = self._truth(cache, image)
            x = torch.cat([gray * (1 - mask) + mask, edges * (1 - mask), mask], dim=1)
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                cache["ec_edge_pred"] = self.edge_generator(x)
        return cache["ec_edge_pred"]

    def _image_pred(self, cache: dict[str, Any], image: torch.Tensor, mask: torch.Tensor, step: int) -> torch.Tensor:
        """G2's output for the mode of ``step``: on the true edges, or on G1's edges in the hole; once per batch."""
        if "ec_pred" not in cache:
            modes = self.modes_at(step)
            _, edges = self._truth(cache, image)
            if "inpaint" not in modes:  # edge_inpaint (G1 fixed) or joint (G1 learns through G2)
                joint = "joint" in modes
                predicted = self._edge_pred(cache, image, mask, grad=joint)
                edges = predicted * mask + edges * (1 - mask)
            cache["ec_g2_edges"] = edges
            cache["ec_pred"] = self.paint(image, mask, edges)
        return cache["ec_pred"]

    def image_losses(self, pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """G2's weighted losses: ``l1`` (over the mean of the mask), ``g_adv``, ``perceptual``, ``style``.

        Args:
            pred: G2's raw output N x 3 x H x W in [0, 1].
            image: the ground truth.
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            The weighted terms.

        """
        c = self.config
        pred, image, mask = pred.float(), image.float(), mask.float()
        n = pred.shape[0]
        hole_fraction = mask.mean().clamp_min(1.0 / mask[0].numel())  # a batch without holes stays finite
        losses = {"l1": c.l1_weight * (pred - image).abs().mean() / hole_fraction}
        real_logits = self.discriminator(image).float() if c.adversarial == "ragan" else None
        losses["g_adv"] = c.adv_weight * self.adv.g_loss(self.discriminator(pred).float(), real_logits)
        if not (c.perceptual_weight or c.style_weight):  # the CPU test variant skips the VGG19 altogether
            return losses
        vgg = self.vgg(pred.device)
        feats = vgg(torch.cat([pred, pred * mask]))  # one pass: perceptual on pred, style on pred * m
        with torch.no_grad():
            target = vgg(torch.cat([image, image * mask]))
        losses["perceptual"] = c.perceptual_weight * perceptual_loss(
            {k: feats[k][:n] for k in EDGECONNECT_PERCEPTUAL_LAYERS},
            {k: target[k][:n] for k in EDGECONNECT_PERCEPTUAL_LAYERS})
        losses["style"] = c.style_weight * style_loss({k: feats[k][n:] for k in EDGECONNECT_STYLE_LAYERS},
                                                      {k: target[k][n:] for k in EDGECONNECT_STYLE_LAYERS})
        return losses

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Losses of one update of ``group`` at ``step``, following the official ``process()`` of each model.

        Args:
            group: ``edge_discriminator``, ``discriminator``, ``edge_generator`` or ``generator``.
            image: the ground truth N x 3 x H x W in [0, 1] (sides multiples of 4).
            mask: N x 1 x H x W, 1 = hole.
            step: 0-based step (picks the phase).
            cache: shared by the groups of one step.

        Returns:
            The weighted terms: ``d_adv`` for a discriminator; ``g_adv`` and ``fm`` for G1 (plus G2's terms as
            ``image_*`` in the joint phase); ``l1``, ``g_adv``, ``perceptual``, ``style`` for G2.

        Raises:
            InpaintbenchError: for an unknown group.

        """
        if group not in _ORDER:
            raise InpaintbenchError(f"edgeconnect has no optimizer group {group!r}; groups: {', '.join(_ORDER)}")
        modes = self.modes_at(step)
        active = self.active_groups(step)
        if group in _EDGE_GROUPS:
            gray, edges = self._truth(cache, image)
            pred = self._edge_pred(cache, image, mask, grad="edge_generator" in active)
            if group == "edge_discriminator":
                real = self.edge_discriminator(torch.cat([gray, edges], dim=1)).float()
                fake = self.edge_discriminator(torch.cat([gray, pred.detach()], dim=1)).float()
                return {"d_adv": 0.5 * self.adv.d_loss(real, fake)}
            fake_logits, fake_feats = self.edge_discriminator(torch.cat([gray, pred], dim=1), return_features=True)
            with torch.no_grad():
                real_logits, real_feats = self.edge_discriminator(torch.cat([gray, edges], dim=1),
                                                                  return_features=True)
            real_arg = real_logits.float() if self.config.adversarial == "ragan" else None
            losses = {"g_adv": self.config.edge_adv_weight * self.adv.g_loss(fake_logits.float(), real_arg),
                      "fm": self.config.fm_weight * feature_matching([f.float() for f in real_feats],
                                                                     [f.float() for f in fake_feats])}
            if "joint" in modes:  # G2's losses reach G1 through the edges G2 paints from
                image_pred = self._image_pred(cache, image, mask, step)
                losses.update({f"image_{k}": v for k, v in self.image_losses(image_pred, image, mask).items()})
            return losses
        pred = self._image_pred(cache, image, mask, step)
        if group == "discriminator":
            real = self.discriminator(image).float()
            fake = self.discriminator(pred.detach()).float()
            return {"d_adv": 0.5 * self.adv.d_loss(real, fake)}
        if "joint" in modes:  # G1's update consumed the shared graph: G2 again, on the same (detached) edges
            pred = self.paint(image, mask, cache["ec_g2_edges"].detach())
        return self.image_losses(pred, image, mask)


register_model("edgeconnect", EdgeConnect, EdgeConnectConfig(),
               paper="Nazeri et al. 2019 (EdgeConnect): edge generator + image generator, 70x70 SN-PatchGANs, "
                     "L1 + 0.1 adv + 0.1 perceptual + 250 style, FM 10, Canny sigma 2",
               description="edge completion (Canny, G1) then painting from the edges (G2); user edges via guide",
               reference_params="10.77M image generator (official networks.py rebuilt); edge generator 10.76M",
               reference_count=10_774_595)
register_model("edgeconnect-tiny", EdgeConnect,
               EdgeConnectConfig(width=8, blocks=2, d_width=8, lr=1e-3, perceptual_weight=0.0, style_weight=0.0,
                                 phases=("edge+inpaint", "joint"), phase_steps=(150,)),
               paper="-", description="CPU test size (width 8, 2 blocks, no VGG19 losses); edge+inpaint for 150 "
                                      "steps, then joint")
