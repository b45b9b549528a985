"""Adversarial losses of the inpainting GANs, as functions of discriminator logits, plus their penalties.

Conventions (every function here):

* losses take raw discriminator outputs (logits, any shape such as N x 1 or N x 1 x h x w for a PatchGAN) and
  average over all their elements, returning a scalar tensor;
* a discriminator loss is the **sum** of its real and fake terms, with no 1/2 factor (EdgeConnect halves it,
  LSGAN's paper halves each term): scale with the loss weight of the model's config;
* the pairs are registered in ``ADVERSARIAL`` so that a model config names its loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._registry import InpaintbenchError, Registry

__all__ = [
    "ADVERSARIAL", "AdversarialLoss", "feature_matching", "get_adversarial", "gradient_penalty", "hinge_d_loss",
    "hinge_g_loss", "lsgan_d_loss", "lsgan_g_loss", "nsgan_d_loss", "nsgan_g_loss", "r1_penalty", "ragan_d_loss",
    "ragan_g_loss", "wgan_d_loss", "wgan_g_loss",
]


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


ADVERSARIAL: Registry[AdversarialLoss] = Registry("adversarial loss")
ADVERSARIAL.register("nsgan", AdversarialLoss(nsgan_d_loss, nsgan_g_loss))  # GLCIC, EdgeConnect, LaMa (+ r1_penalty)
ADVERSARIAL.register("lsgan", AdversarialLoss(lsgan_d_loss, lsgan_g_loss))  # PICNet
ADVERSARIAL.register("hinge", AdversarialLoss(hinge_d_loss, hinge_g_loss))  # DeepFill v2 (SN-PatchGAN)
ADVERSARIAL.register("wgan", AdversarialLoss(wgan_d_loss, wgan_g_loss))  # DeepFill v1 (+ gradient_penalty, 10)
ADVERSARIAL.register("ragan", AdversarialLoss(ragan_d_loss, ragan_g_loss))  # DMFN


def get_adversarial(name: str) -> AdversarialLoss:
    """The (d_loss, g_loss) pair registered as ``name`` (nsgan, lsgan, hinge, wgan, ragan); one-line error otherwise."""
    return ADVERSARIAL.get(name)


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
    # the discriminator sees a view of the leaf: module backward hooks (FlopCounterMode's module tracker) refuse a
    # leaf input inside autograd.grad
    out = _logits(discriminator(x_hat.view_as(x_hat)))
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
