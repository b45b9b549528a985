"""DMFN: Image Fine-grained Inpainting (Hui, Li, Gao, Wang, arXiv 2002.02609), dense multi-scale fusion network.

Sources (model_anchors.md section 7): the official code ``Zheng222/DMFN`` (``models/architecture.py``,
``models/block.py``, ``models/inpainting_model.py``, ``models/loss.py``, ``utils.py``,
``configs/celeba-hq-regular_list.yaml``), read at commit 35bee4f.

Generator (``InpaintingGenerator``, in_nc 4, nf 64, n_res 8; 9,037,443 parameters, official 9.0374M):
conv5x5 64 (ReLU, no norm), conv3x3 s2 128, conv3x3 128, conv3x3 s2 256 (instance norm without affine + ReLU);
eight DMFBs at 1/4 resolution; conv3x3 256; two up blocks (deconv4x4 s2 + IN + ReLU, conv3x3 + IN + ReLU) to 128
and 64; conv3x3 to 3 and tanh. Every conv has a bias.

DMFB (``ResBlock_new``): a 3x3 conv reduces 256 -> 64 channels (IN, ReLU); four 3x3 convs of 64 channels with
dilations 1, 2, 4, 8 read it; their outputs are combined step by step (d1, d1 + d2, d1 + d2 + d3,
d1 + d2 + d3 + d4), concatenated (256), IN + ReLU, fused by a **3x3** conv (the paper's figure says 1x1; the code's
3x3 is what the 9.04M count and the official weights need), IN, and added to the block's input.

Inference convention (official ``test.py``): ``x = 2 img - 1``, ``G(cat(x (1 - m), m))`` (holes 0), tanh output,
``(y + 1) / 2``. :meth:`DMFN.forward` takes any size: sides that are not a multiple of 4 are padded
(replicate) and cropped back.

Discriminator (``Discriminator``): global branch, six conv5x5 s2 (64, 128, 256, 512, 512, 512; BatchNorm,
LeakyReLU 0.2, conv bias) on the whole image; local branch, five such convs on a patch of half the image side;
each flattened into an FC -> 512 (no activation); concatenation, LeakyReLU 0.2, FC -> 1 logit. The FC input
size (512 x 4 x 4 at 256) fixes the training size: ``size`` in the config, checked by :meth:`prepare_training`.
It returns the local branch's five feature maps too (discriminator feature matching).

Losses (``inpainting_model.py``, config weights), all computed as the official code does on the [-1, 1] scale,
on the composite ``out = m G + (1 - m) x``:

* pixel L1 (weight 1) between ``out`` and the truth (a mean over all pixels);
* VGG19 feature loss (weight 25) on relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with layer weights ``1e3 / n^2``
  (n = 64, 128, 256, 512, 512), L1; the relu1_1 and relu2_1 terms are the **self-guided regression loss**: both
  feature maps are multiplied by ``1 + e`` before the L1, where ``e`` is the per-pixel squared error of ``out``
  (mean over RGB, detached) divided by its per-image maximum (average-pooled 2x for relu2_1);
* geometrical alignment (weight 1): MSE between the centroids of the relu4_1 maps of ``out`` and the truth
  (each channel read as a spatial distribution after adding 1e-7, centroids on a grid ``k / n * 2 - 1``);
* discriminator feature matching (weight 5): L1 between the local branch's features of the fake and real
  patches, layer weights ``1e3 / n^2``;
* RaGAN (weight 0.003), BCE with logits: ``(BCE(D(real) - mean D(fake), 0) + BCE(D(fake) - mean D(real), 1)) / 2``
  for the generator (real logits detached), the mirrored pair for the discriminator, also halved.

The discriminator sees the composite and the patch of half the side centred on the hole (the official loader
crops the bounding box of its 128 x 128 regular holes, and a random box for irregular masks; the hole-centred
window of :func:`~inpaintbench.models.glcic.hole_patch_origins` is the same box for a centred regular hole and
keeps the hole in view for any mask). Training as the official config: Adam lr 2e-4, betas (0.5, 0.999) for
both networks, MultiStepLR at 100k steps with gamma 0.5 (n_iter is 100k, so it never fires in the paper's run);
the generator updates first, then the discriminator on the same (detached) output; weights initialised with
N(0, 0.02) for every ``Conv2d`` (not the transposed convs, whose class name the official ``weights_init`` does not
match) and N(1, 0.02) for BatchNorm scales.

Deviations, all small:

* geometrical alignment: the official ``get_coordinate_tensors`` builds its y grid along the columns too (both
  maps vary with the column index), so its "y" centroid repeats the x centroid; we use the paper's two axes;
* the error map of the self-guided loss is divided by ``max(e, 1e-12)``: the official code divides by ``max(e)``
  and returns NaN for an exact output;
* the local patch is hole-centred (above).
"""

from .layouts import convert_official
from .model import (
    DMFB,
    DMFN,
    DMFNConfig,
    DMFNDiscriminator,
    DMFNGenerator,
    center_loss,
    feature_centroids,
    self_guided_error_map,
)

__all__ = ["DMFB", "DMFN", "DMFNConfig", "DMFNDiscriminator", "DMFNGenerator", "center_loss", "convert_official",
           "feature_centroids", "self_guided_error_map"]
