"""The dual-path residual GAN of one of the project's seeds: reconstruction and generation paths, WGAN-GP.

Zhao Ruixia and Zhao Li, "Image Inpainting Research Based on Deep Learning", IJANMC 5(2), 2020, DOI
10.21307/ijanmc-2020-013.

What the seed says (as the issue quotes it): two repair paths, a reconstruction path and a generation path, each
with its own group of networks; encoders E1 (reconstruction path, input the complement image: the real pixels under
the hole) and E2 (generation path, input the masked image), each of 7 residual modules (3x3 conv stride 1 pad 1,
then 3x3 conv stride 1 pad 0, plus the skip); feature fusion; generators G1/G2 of residual decoding blocks (3x3
conv; 3x3 transposed conv stride 2; a transposed-conv skip) with spectral norm and a short+long term self-attention
block; discriminators D1 (reconstructed vs real) and D2 (generated and fused vs real), five-layer 4x4 PatchGANs;
WGAN-GP with lambda 10; Places2; PSNR and SSIM. Inference uses the generation path.

The structure follows the work the seed builds on, PICNet (Zheng, Cham, Cai, CVPR 2019; ``lyndonzheng/
Pluralistic-Inpainting``, ``model/network.py``, ``model/base_function.py``, ``model/pluralistic_model.py``), whose
two paths, residual encoder, ``ResBlockDecoder`` and ``Auto_Attn`` the seed's description matches, without
PICNet's latent distributions (the seed has no KL term). Choices where the seed's text is ambiguous:

* **Residual module and its skip.** The "stride 1 pad 0" conv runs on the input reflection-padded by one pixel
  (the CycleGAN ``ResnetBlock`` convention for a padding-0 3x3 conv), so the residual keeps the skip's size and the
  skip needs no cropping or padding; the skip is the identity, or a 1x1 conv where the channels change (PICNet's
  bypass). Taken literally (valid convolutions), 7 modules would shrink the maps by 14 px and the stride-2
  decoders could not return to the input size.
* **Downsampling.** The seed names no pooling, but its decoders upsample by 2 per block, so the encoders must
  halve the side as often: the first ``downsamples`` (5, PICNet's ``layers=5``) modules end with a 2x average pool
  (PICNet's ``ResBlock(sample_type='down')``), the remaining ones (2, PICNet's inference blocks) keep the 1/32
  scale. Channels ``width * 2**i`` capped at ``max_width`` (PICNet: ngf 32, img_f 128). No normalisation in the
  encoders (PICNet ``norm='none'``); the first module has no pre-activation (it reads the image).
* **Inputs.** ``x = 2 img - 1`` (PICNet's scale); E2 reads ``cat(x (1 - m), m)``, E1 reads ``cat(x m, m)`` (the
  mask channel is appended: PICNet gives the encoders 3 channels, but then a black pixel and a hole look alike).
* **Feature fusion.** PICNet's "we directly add them together": the reconstruction path decodes
  ``E2(masked) + E1(complement)`` at the bottleneck; the generation path decodes ``E2(masked)`` alone (it must work
  at inference, where the complement is unknown).
* **Weight sharing.** E1 and E2 are separate networks (the seed names two, and their inputs differ). G1 and G2 share
  their weights by default (``share_generator``; PICNet decodes both paths with one ``net_G``): the reconstruction
  path then trains the generation path's decoder on complete information, which is its purpose. With
  ``share_generator=False`` G1 is a separate copy. D1 and D2 are separate (PICNet's ``net_D`` and ``net_D_rec``).
* **Generators.** ``downsamples`` residual up blocks (PICNet's ``ResBlockDecoder``: instance norm with affine
  parameters, LeakyReLU 0.1, 3x3 conv, 3x3 transposed conv stride 2, transposed-conv skip), channels
  ``width * 2**(downsamples - 1 - i)`` capped at ``max_width``; the short+long term attention
  (:class:`~inpaintbench.models.layers.ShortLongAttention`) after the second block (1/8 of the side with 5
  down-samplings), with the E2 features of that scale as its long-term context (PICNet ``f[2]``, ``attn1``);
  output block LeakyReLU, reflection pad, 3x3 conv, tanh. One output scale (PICNet trains four; the seed names
  one). Spectral norm on every conv of the encoders and generators except the attention's query (PICNet
  ``use_spect=True``); orthogonal initialisation with gain 0.02 (PICNet ``init_type='orthogonal'``).
* **Discriminators.** :class:`~inpaintbench.models.layers.PatchDiscriminator` with 4x4 convs, widths 64, 128, 256,
  512, 1, LeakyReLU 0.2, no normalisation (a per-sample gradient penalty is not defined under batch norm: the
  WGAN-GP paper drops it) and no spectral norm (the penalty is the constraint), N(0, 0.02) init (pix2pix). The
  strides are ``d_strides``; the default (2, 2, 2, 1, 1) is the standard 70x70 PatchGAN (receptive field 70, see
  :meth:`DualPathGAN.receptive_fields`). The seed's own strides could not be read for this implementation: set
  them with ``-O d_strides=...``. D1 sees 3-channel images, as PICNet's discriminators.
* **D2's fakes.** "Generated and fused": the generation path's raw output and its composite with the known
  pixels, ``m G + (1 - m) x``, both against the real image.
* **Losses.** WGAN critic losses ``mean D(fake) - mean D(real)`` plus the gradient penalty (lambda 10,
  :func:`~inpaintbench.models.adversarial.gradient_penalty`: one interpolation per sample, the gradient of the
  sum of the patch outputs, as PICNet's ``cal_gradient_penalty``); the generators minimise ``-mean D(fake)``
  (weight ``adv_weight`` 1, PICNet's lambda_g) and the L1 distance to the truth over all pixels of each path's
  output (weight ``rec_weight`` 20, PICNet's lambda_rec; PICNet restricts the generation path's L1 to the known
  pixels because its KL term shapes the hole, which this model does not have), on the [-1, 1] scale.
* **Optimisation.** WGAN-GP's Algorithm 1: Adam lr 1e-4, betas (0, 0.9); ``n_critic`` = 5 critic updates per
  generator update (the generator group steps on steps divisible by 5); the critic updates first.

Ablations: ``reconstruction_path=False`` builds neither E1 nor D1 and trains the generation path alone;
``attention=False`` leaves the attention block out of the generators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import InpaintbenchError
from .adversarial import gradient_penalty, wgan_d_loss, wgan_g_loss
from .base import InpaintModel, OptimizerGroup, register_model
from .layers.patchgan import PatchDiscriminator
from .layers.residual import PicnetResidualBlock, ResidualUpBlock, maybe_spectral_norm, settle_spectral_norm
from .layers.self_attention import ShortLongAttention

__all__ = ["DualPathConfig", "DualPathDecoder", "DualPathEncoder", "DualPathGAN"]


@dataclass(frozen=True)
class DualPathConfig:
    """The dual-path GAN's hyper-parameters (the seed's where it gives them, else PICNet's and WGAN-GP's)."""

    width: int = 32  # channels of the first encoder module (PICNet ngf)
    max_width: int = 128  # channel cap (PICNet img_f)
    encoder_modules: int = 7  # residual modules per encoder (seed)
    downsamples: int = 5  # of which this many halve the side (PICNet layers); the generators have as many blocks
    attention: bool = True  # the short+long term attention in the generators
    reconstruction_path: bool = True  # E1, the reconstruction pass of the generator and D1
    share_generator: bool = True  # G1 and G2 are one network (PICNet); False: two
    slope: float = 0.1  # LeakyReLU slope of encoders and generators (PICNet)
    d_widths: tuple[int, ...] = (64, 128, 256, 512, 1)  # PatchGAN layers (five 4x4 convs)
    d_strides: tuple[int, ...] = (2, 2, 2, 1, 1)  # the 70x70 PatchGAN
    rec_weight: float = 20.0  # L1 of each path's output (PICNet lambda_rec)
    adv_weight: float = 1.0  # WGAN generator terms (PICNet lambda_g)
    gp_weight: float = 10.0  # WGAN-GP lambda
    n_critic: int = 5  # critic updates per generator update (WGAN-GP)
    lr: float | None = 1e-4  # Adam, both groups (WGAN-GP); None takes the Trainer's (-T lr=...)
    betas: tuple[float, float] = (0.0, 0.9)

    def __post_init__(self) -> None:
        for name in ("d_widths", "d_strides", "betas"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.width < 1 or self.max_width < self.width:
            raise InpaintbenchError(f"dual-path-gan needs 1 <= width <= max_width, got {self.width}, {self.max_width}")
        if not 1 <= self.downsamples <= self.encoder_modules:
            raise InpaintbenchError(f"dual-path-gan needs 1 <= downsamples <= encoder_modules, got "
                                    f"{self.downsamples} and {self.encoder_modules}")
        if self.attention and self.downsamples < 3:
            raise InpaintbenchError("dual-path-gan's attention follows the second up block and reads E2's features "
                                    "of that scale: it needs downsamples >= 3")
        if self.n_critic < 1:
            raise InpaintbenchError(f"dual-path-gan n_critic must be >= 1, got {self.n_critic}")
        if len(self.d_widths) != len(self.d_strides):
            raise InpaintbenchError("dual-path-gan needs one discriminator stride per layer")

    def encoder_channels(self) -> list[int]:
        """Output channels of the encoder modules."""
        return [min(self.width * 2 ** min(i, self.downsamples - 1), self.max_width)
                for i in range(self.encoder_modules)]

    def decoder_channels(self) -> list[int]:
        """Output channels of the generator's up blocks (PICNet's ``min(2**(layers - i - 1), img_f // ngf)``)."""
        return [min(self.width * 2 ** (self.downsamples - 1 - i), self.max_width) for i in range(self.downsamples)]

    @property
    def context_index(self) -> int:
        """The encoder module whose output has the scale of the second up block's (the attention's context)."""
        return self.downsamples - 3


class DualPathEncoder(nn.Module):
    """E1 or E2: ``encoder_modules`` residual modules on a 4-channel input; returns every module's output.

    Args:
        config: a :class:`DualPathConfig`.

    """

    def __init__(self, config: DualPathConfig) -> None:
        super().__init__()
        chans = config.encoder_channels()
        self.blocks = nn.ModuleList(
            PicnetResidualBlock(4 if i == 0 else chans[i - 1], c, slope=config.slope, pre_activation=i > 0,
                          reflect_second=True, downsample=i < config.downsamples)
            for i, c in enumerate(chans))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of every module, the bottleneck last (1/2**downsamples of the side)."""
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class DualPathDecoder(nn.Module):
    """G1 or G2: residual up blocks, the short+long term attention after the second one, a tanh output block.

    Args:
        config: a :class:`DualPathConfig`.

    """

    def __init__(self, config: DualPathConfig) -> None:
        super().__init__()
        c_in = config.encoder_channels()[-1]
        chans = config.decoder_channels()
        self.blocks = nn.ModuleList()
        for c in chans:
            self.blocks.append(ResidualUpBlock(c_in, c, slope=config.slope))
            c_in = c
        self.attention = (ShortLongAttention(chans[1], config.encoder_channels()[config.context_index],
                                             slope=config.slope)
                          if config.attention else None)
        self.output = nn.Sequential(nn.LeakyReLU(config.slope), nn.ReflectionPad2d(1),
                                    maybe_spectral_norm(nn.Conv2d(c_in, 3, 3), True), nn.Tanh())

    def forward(self, bottleneck: torch.Tensor, context: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Decode.

        Args:
            bottleneck: the (fused) bottleneck features.
            context: E2's features at the second up block's scale (the attention's long-term context).
            hole: N x 1 x H x W mask at full size, 1 = hole.

        Returns:
            N x 3 x H x W in [-1, 1].

        """
        h = bottleneck
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == 1 and self.attention is not None:
                small = F.interpolate(hole, size=h.shape[-2:], mode="bilinear", align_corners=True)  # PICNet
                h, _ = self.attention(h, context, small)
        return self.output(h)


def _init_picnet(module: nn.Module) -> None:
    """PICNet's ``init_weights(net, 'orthogonal')``: orthogonal weights with gain 0.02, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.orthogonal_(getattr(module, "weight_orig", module.weight), gain=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _init_pix2pix(module: nn.Module) -> None:
    """pix2pix's ``init_weights(net, 'normal')``: N(0, 0.02) conv weights, zero biases."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class DualPathGAN(InpaintModel):
    """The dual-path GAN: reconstruction and generation paths, their critics and losses.

    Submodules: ``encoder_rec`` (E1), ``encoder_gen`` (E2), ``generator`` (G2, and G1 unless
    ``share_generator=False`` adds ``generator_rec``), critics ``d_rec`` (D1) and ``d_gen`` (D2).

    Args:
        config: a :class:`DualPathConfig`.

    """

    trainable = True
    inference_modules = ("encoder_gen", "generator")

    def __init__(self, config: DualPathConfig) -> None:
        super().__init__(config)
        self.encoder_gen = DualPathEncoder(config)
        self.generator = DualPathDecoder(config)
        if config.reconstruction_path:
            self.encoder_rec = DualPathEncoder(config)
            if not config.share_generator:
                self.generator_rec = DualPathDecoder(config)
            self.d_rec = self._critic()
        self.d_gen = self._critic()
        for name in self._generator_modules():
            getattr(self, name).apply(_init_picnet)
            settle_spectral_norm(getattr(self, name))

    def _critic(self) -> PatchDiscriminator:
        critic = PatchDiscriminator(3, widths=self.config.d_widths, strides=self.config.d_strides, kernel=4,
                                    norm="none")
        critic.apply(_init_pix2pix)
        return critic

    def _generator_modules(self) -> tuple[str, ...]:
        names = ["encoder_gen", "generator"]
        if self.config.reconstruction_path:
            names.append("encoder_rec")
            if not self.config.share_generator:
                names.append("generator_rec")
        return tuple(names)

    @property
    def decoder_rec(self) -> DualPathDecoder:
        """G1: the reconstruction path's generator (``generator`` itself when shared)."""
        return self.generator if self.config.share_generator else self.generator_rec

    def receptive_fields(self) -> dict[str, int]:
        """Side of the input patch that one output of each critic sees (70 for the default strides)."""
        fields = {"d_gen": self.d_gen.receptive_field()}
        if self.config.reconstruction_path:
            fields["d_rec"] = self.d_rec.receptive_field()
        return fields

    # ----------------------------------------------------------------------------------------------
    # the two paths

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """Replicate-pad the right and bottom to a multiple of 2**downsamples."""
        step = 2**self.config.downsamples
        pad_h, pad_w = -x.shape[-2] % step, -x.shape[-1] % step
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

    def generation_path(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """G2(E2(masked image)) on the [-1, 1] scale.

        Args:
            x: N x 3 x H x W in [-1, 1] (hole pixels are zeroed here).
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            N x 3 x H x W in [-1, 1].

        """
        h, w = x.shape[-2:]
        feats = self.encoder_gen(self._padded(torch.cat([x * (1 - mask), mask], dim=1)))
        hole = self._padded(mask)
        return self.generator(feats[-1], feats[self.config.context_index], hole)[..., :h, :w]

    def both_paths(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generation path's output and the reconstruction path's, sharing E2's features.

        Args:
            x: the truth, N x 3 x H x W in [-1, 1].
            mask: N x 1 x H x W, 1 = hole.

        Returns:
            ``(generated, reconstructed)``, both N x 3 x H x W in [-1, 1].

        """
        h, w = x.shape[-2:]
        hole = self._padded(mask)
        feats = self.encoder_gen(self._padded(torch.cat([x * (1 - mask), mask], dim=1)))
        complement = self.encoder_rec(self._padded(torch.cat([x * mask, mask], dim=1)))[-1]
        context = feats[self.config.context_index]
        generated = self.generator(feats[-1], context, hole)
        reconstructed = self.decoder_rec(feats[-1] + complement, context, hole)  # the feature fusion
        return generated[..., :h, :w], reconstructed[..., :h, :w]

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint with the generation path: the full image in [0, 1].

        Args:
            image: N x 3 x H x W in [0, 1], holes filled with 0 (their values do not matter).
            mask: N x 1 x H x W, 1 = hole. Any H, W.

        Returns:
            N x 3 x H x W in [0, 1].

        """
        return (self.generation_path(image * 2 - 1, mask.to(image.dtype)) + 1) / 2

    # ----------------------------------------------------------------------------------------------
    # training

    def optimizer_groups(self) -> tuple[OptimizerGroup, ...]:
        """The critics (D1 and D2, one Adam) every step, then E1, E2 and the generators every ``n_critic`` steps.

        Returns:
            The two groups.

        """
        cfg = self.config
        critics = ("d_rec", "d_gen") if cfg.reconstruction_path else ("d_gen",)
        return (OptimizerGroup("discriminator", critics, lr=cfg.lr, betas=cfg.betas),
                OptimizerGroup("generator", self._generator_modules(), lr=cfg.lr, betas=cfg.betas,
                               every=cfg.n_critic))

    def _outputs(self, image: torch.Tensor, mask: torch.Tensor, with_graph: bool, cache: dict[str, Any]
                 ) -> dict[str, torch.Tensor]:
        """Both paths' outputs for this batch, computed once per step (with a graph when ``with_graph``)."""
        if "dual" not in cache or (with_graph and not cache["dual"]["gen"].requires_grad):
            x = image.float() * 2 - 1
            with torch.set_grad_enabled(with_graph and torch.is_grad_enabled()):
                if self.config.reconstruction_path:
                    generated, reconstructed = self.both_paths(x, mask)
                else:
                    generated, reconstructed = self.generation_path(x, mask), None
            out = {"x": x, "gen": generated.float()}
            out["fused"] = mask * out["gen"] + (1 - mask) * x
            if reconstructed is not None:
                out["rec"] = reconstructed.float()
            cache["dual"] = out
        return cache["dual"]

    def critic_losses(self, real: torch.Tensor, fused_fakes: torch.Tensor, reconstructed: torch.Tensor | None
                      ) -> dict[str, torch.Tensor]:
        """WGAN critic terms and gradient penalties of D1 and D2 (fakes detached here).

        The penalties draw their interpolation weights from torch's global generator, D1's first.

        Args:
            real: the truth, N x 3 x H x W in [-1, 1].
            fused_fakes: 2N x 3 x H x W, the generated images then their composites.
            reconstructed: the reconstruction path's output (None without that path).

        Returns:
            ``d_rec``, ``d_rec_gp`` (with the reconstruction path), ``d_gen``, ``d_gen_gp``.

        """
        lam = self.config.gp_weight
        terms = {}
        if reconstructed is not None:
            fake = reconstructed.detach()
            terms["d_rec"] = wgan_d_loss(self.d_rec(real).float(), self.d_rec(fake).float())
            terms["d_rec_gp"] = gradient_penalty(self.d_rec, real, fake, weight=lam)
        fakes = fused_fakes.detach()
        terms["d_gen"] = wgan_d_loss(self.d_gen(real).float(), self.d_gen(fakes).float())
        terms["d_gen_gp"] = gradient_penalty(self.d_gen, torch.cat([real, real]), fakes, weight=lam)
        return terms

    def training_losses(self, group: str, image: torch.Tensor, mask: torch.Tensor, step: int,
                        cache: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The weighted losses of one update of ``group``.

        Args:
            group: ``discriminator`` (D1, D2) or ``generator`` (E1, E2, G1/G2).
            image: the ground truth N x 3 x H x W in [0, 1].
            mask: N x 1 x H x W, 1 = hole.
            step: 0-based step (the generators' outputs keep a graph on steps divisible by ``n_critic``).
            cache: shared by the groups of one step.

        Returns:
            ``discriminator``: see :meth:`critic_losses`; ``generator``: ``gen_l1``, ``gen_adv`` and, with the
            reconstruction path, ``rec_l1``, ``rec_adv``.

        Raises:
            InpaintbenchError: for an unknown group.

        """
        if group not in ("generator", "discriminator"):
            raise InpaintbenchError(f"dual-path-gan has no optimizer group {group!r}")
        mask = mask.float()
        # the graph is kept on the steps the generators update (a critic-only step needs none)
        with_graph = group == "generator" or step % self.config.n_critic == 0
        out = self._outputs(image, mask, with_graph, cache)
        fakes = torch.cat([out["gen"], out["fused"]])
        if group == "discriminator":
            return self.critic_losses(out["x"], fakes, out.get("rec"))
        cfg = self.config
        terms = {"gen_l1": cfg.rec_weight * F.l1_loss(out["gen"], out["x"]),
                 "gen_adv": cfg.adv_weight * wgan_g_loss(self.d_gen(fakes).float())}
        if "rec" in out:
            terms["rec_l1"] = cfg.rec_weight * F.l1_loss(out["rec"], out["x"])
            terms["rec_adv"] = cfg.adv_weight * wgan_g_loss(self.d_rec(out["rec"]).float())
        return terms


register_model("dual-path-gan", DualPathGAN, DualPathConfig(),
               paper="Zhao & Zhao 2020 (IJANMC, 'Image Inpainting Research Based on Deep Learning'): reconstruction "
                     "+ generation paths, residual encoders/decoders, short+long term attention, PatchGAN, WGAN-GP",
               description="dual-path residual GAN (PICNet-style blocks), generation path at inference",
               reference_params="none published (the seed gives no count)")
register_model("dual-path-gan-tiny", DualPathGAN,
               DualPathConfig(width=8, max_width=32, encoder_modules=5, downsamples=4, d_widths=(16, 32, 64, 64, 1),
                              n_critic=1, lr=None),
               paper="-", description="CPU test size: 8-32 channels, 5 modules, 4 down-samplings, n_critic 1, the "
                                      "Trainer's lr")
