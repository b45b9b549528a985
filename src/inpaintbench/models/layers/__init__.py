"""Building blocks shared by the model families, one module per kind of block.

* :mod:`.common`: activations, normalisations, conv-norm-activation (every family);
* :mod:`.partial`: partial convolution (PConv);
* :mod:`.patchgan`: PatchGAN discriminators (EdgeConnect, AOT-GAN, LaMa's pix2pixHD, the dual-path GAN,
  DeepFill v2's SN-PatchGAN), with their receptive fields;
* :mod:`.residual`: residual blocks: EdgeConnect's dilated block; PICNet's blocks (down, up) with optional
  spectral norm (the dual-path GAN);
* :mod:`.self_attention`: PICNet's short+long term attention (the dual-path GAN);
* :mod:`.patch_transfer`: contextual attention propagated over a whole region, a coherent copy from a second
  image (``replace``'s match of edge patches);
* :mod:`.ffc`: fast Fourier convolution, its spectral transform and Fourier unit, LaMa's FFC residual block;
* :mod:`.aot`: AOT-GAN's aggregated contextual transformation block.

Families add their own kinds here (gated convolution, contextual attention, FFC, ...) as new modules.
"""

from .common import conv_norm_act, deconv_norm_act, make_activation, make_norm
from .partial import PartialConv2d
from .patchgan import PatchDiscriminator
from .residual import PicnetResidualBlock, ResidualBlock, ResidualUpBlock
from .self_attention import ShortLongAttention

__all__ = ["PartialConv2d", "PatchDiscriminator", "PicnetResidualBlock", "ResidualBlock", "ResidualUpBlock",
           "ShortLongAttention", "conv_norm_act", "deconv_norm_act", "make_activation", "make_norm"]
