"""Building blocks shared by the model families, one module per kind of block.

* :mod:`.common`: activations, normalisations, conv-norm-activation (every family);
* :mod:`.partial`: partial convolution (PConv);
* :mod:`.patchgan`: PatchGAN discriminators (EdgeConnect, AOT-GAN, LaMa's pix2pixHD, the dual-path GAN,
  DeepFill v2's SN-PatchGAN), with their receptive fields;
* :mod:`.residual`: PICNet's residual blocks (down, up) with optional spectral norm (the dual-path GAN);
* :mod:`.self_attention`: PICNet's short+long term attention (the dual-path GAN).

Families add their own kinds here (gated convolution, contextual attention, FFC, ...) as new modules.
"""

from .common import conv_norm_act, make_activation, make_norm
from .partial import PartialConv2d
from .patchgan import PatchDiscriminator
from .residual import ResidualBlock, ResidualUpBlock
from .self_attention import ShortLongAttention

__all__ = ["PartialConv2d", "PatchDiscriminator", "ResidualBlock", "ResidualUpBlock", "ShortLongAttention",
           "conv_norm_act", "make_activation", "make_norm"]
