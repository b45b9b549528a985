"""Building blocks shared by the model families, one module per kind of block.

* :mod:`.common`: activations, normalisations, conv-norm-activation (every family);
* :mod:`.partial`: partial convolution (PConv);
* :mod:`.patchgan`: PatchGAN discriminators (EdgeConnect, AOT-GAN, LaMa's pix2pixHD, the dual-path GAN,
  DeepFill v2's SN-PatchGAN), with their receptive fields;
* :mod:`.residual`: residual blocks with dilated convolutions (EdgeConnect's generators);
* :mod:`.patch_transfer`: contextual attention propagated over a whole region, a coherent copy from a second
  image (``replace``'s match of edge patches).

Families add their own kinds here (gated convolution, contextual attention, FFC, ...) as new modules.
"""

from .common import conv_norm_act, deconv_norm_act, make_activation, make_norm
from .partial import PartialConv2d
from .residual import ResidualBlock

__all__ = ["PartialConv2d", "ResidualBlock", "conv_norm_act", "deconv_norm_act", "make_activation", "make_norm"]
