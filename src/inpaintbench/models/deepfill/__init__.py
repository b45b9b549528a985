"""DeepFill v1 (contextual attention, Yu et al. CVPR 2018) and v2 (gated convolution + SN-PatchGAN, ICCV 2019).

Sources (shared/reference/model_anchors.md sections 3, 4, 14): the official TensorFlow code
``JiahuiYu/generative_inpainting`` at tags v1.0.0 and v2.0.0 (``inpaint_model.py``, ``inpaint_ops.py``,
``inpaint.yml``, ``train.py``); mmagic (``editors/deepfillv1/*``, ``editors/deepfillv2/*``,
``archs/gated_conv_module.py``, ``configs/_base_/models/base_deepfillv{1,2}.py``); nipponjo's PyTorch port of v2
(``model/networks.py``).

Generator (both versions, :class:`DeepFillGenerator`): a coarse network and a refinement network, ELU
activations, no normalisation, "deconvolutions" that are nearest x2 upsampling + 3x3 convolution. The coarse
network (GLCIC-like, 17 layers) sees ``[x * (1 - m), ones, m]`` with ``x`` the image in [-1, 1]; its output
is pasted into the hole and the refinement network runs two encoders in parallel, a dilated branch and an
attention branch (6 convolutions, the last with ReLU, then ``layers.attention.contextual_attention`` of
the features with themselves, rate 2, 3x3 patches, softmax scale 10, propagation 3x3, then 2 convolutions),
concatenates them and decodes. Widths with ``w = width``: encoder ``w, 2w, 2w, 4w, 4w, 4w`` (strides 1, 2, 1, 2,
1, 1), 4 dilated ``4w`` (rates 2, 4, 8, 16), decoder ``4w, 4w, 2w, 2w, w, w/2, 3``. Image sides must be multiples
of 8 (the attention matches at 1/8 of the image).

* v1 (``deepfill-v1``): plain convolutions, ``w = 32``, outputs clipped to [-1, 1], the refinement network sees
  ``[x, ones, m]``; 3.60M parameters. WGAN-GP critics on the completed image (global: 4 conv5x5 stride 2, 64,
  128, 256, 256, LeakyReLU, dense 1) and on a local patch around the hole (64, 128, 256, 512, dense 1), gradient
  penalty 10 weighted by the hole mask; 5 critic steps per generator step. Generator loss
  ``0.001 * (global + local WGAN) + 1.2 * l1 + 1.2 * ae`` with ``l1 = 1.2 * L1d(coarse) + L1d(fine)`` (the
  spatially discounted L1 of the hole) and ``ae = 1.2 * L1(coarse) + L1(fine)`` on the known pixels
  (``inpaint.yml``: COARSE_L1_ALPHA, L1_LOSS_ALPHA, AE_LOSS_ALPHA 1.2, GAN_LOSS_ALPHA 0.001, WGAN_GP_LAMBDA 10).
  Adam lr 1e-4, betas (0.5, 0.9) (``train.py``).
* v2 (``deepfill-v2``): every convolution gated (``layers.gated.GatedConv2d``) but the 3-channel
  outputs, ``w = 24`` (the official ``cnum = 48`` filters halved by the gate), tanh outputs, the refinement
  network sees the pasted image only (``xnow = x``); 4.05M parameters. SN-PatchGAN
  (``layers.patchgan.PatchDiscriminator``: 6 conv5x5 stride 2, 64, 128, 256, 256, 256, 256, spectral
  norm, LeakyReLU after every layer) on ``[image, mask]`` with the hinge loss on every output element,
  ``0.5 * hinge(real) + 0.5 * hinge(fake)`` (neuralgym ``gan_hinge_loss``); generator loss
  ``hinge + mean|x - coarse| + mean|x - fine|`` over the whole image (1:1). Adam lr 1e-4, betas (0.5, 0.999),
  one discriminator step per generator step (v2 ``train.py``).
* ``sketch=true`` (v2): a sketch channel after the image, ``[x, sketch * m, ones, m]`` (v2 ``guided``: the edges
  inside the hole), also given to the discriminator. Training sketches are the ground truth's Canny edges
  (sigma 2, as EdgeConnect; the official code reads precomputed edge files); at inference the user's strokes
  come through ``forward(image, mask, guide)``, binarised at 0.5. A model without the channel refuses a guide.

All losses are computed on the [-1, 1] scale the networks work in (the critics' gradient penalty and the L1
weights depend on it), not on inpaintbench's [0, 1].

Choices and deviations:

* spatial discount (v1): the paper's definition, ``gamma ** l`` with ``l`` the (chessboard) distance of a hole
  pixel to the nearest known pixel (0 on the hole's border, pixels outside the image count as known), averaged
  over the hole; the official code weights its 128 x 128 training box by the distance to the box's edge, which
  is the same for a box hole. ``gamma = 0.99`` (paper, issue 15); the official ``inpaint.yml`` uses 0.9 (the
  author: "0.9 is better for 256 x 256", generative_inpainting issue 74): ``-O gamma=0.9``.
* the local critic's patch: ``size / 2`` (128 at 256) centred on each hole's bounding box
  (``glcic.hole_patch_origins``, as GLCIC here); the official code uses its random training box;
* contextual attention: each image's own mask (the official code uses the first image's mask for the whole
  batch); the official softmax and overlap formulas by default (see ``layers/attention.py``);
* padding: zeros, symmetric (PyTorch; TensorFlow's "SAME" pads stride-2 layers asymmetrically);
* the learning rate is the preset's ``lr`` (1e-4) for both groups, not the Trainer's ``--lr``: set ``-O lr=...``
  (or ``lr=None`` to take the Trainer's, as the ``-tiny`` test presets do);
* the v2 masks of the paper (random boxes + brush strokes) are the dataset's masks here.

Imported weights (layouts, registered below; the layout's ``config`` gives the conventions): mmagic's files run
with reflect padding, mmagic's attention (masked softmax, overlap division), ELU before the attention, and for
v2 a 5-channel refinement input, gated output layers and a refinement decoder of width 32; they are BGR, which
the key maps turn into RGB by reversing the image channels of the first convolutions and the output channels of
the last ones (exact). nipponjo's port (``{'G': ...}``, ``cnum_in=5``) is RGB and runs with this module's v2
defaults.
"""

from ..base import register_model
from . import layouts  # noqa: F401  (registration of the checkpoint layouts)
from .generator import MULTIPLE, CoarseNetwork, DeepFillGenerator, RefineNetwork
from .v1 import DeepFillV1, DeepFillV1Config, spatial_discount
from .v2 import DeepFillV2, DeepFillV2Config

__all__ = ["MULTIPLE", "CoarseNetwork", "DeepFillGenerator", "DeepFillV1", "DeepFillV1Config", "DeepFillV2",
           "DeepFillV2Config", "RefineNetwork", "spatial_discount"]

register_model("deepfill-v1", DeepFillV1, DeepFillV1Config(),
               paper="Yu et al. 2018 (DeepFill v1): coarse-to-fine, contextual attention, WGAN-GP global + local "
                     "critics, 5 critic steps, spatially discounted L1",
               description="two-stage generator (cnum 32) with contextual attention, WGAN-GP critics, 256x256",
               reference_params="3.60M generator (computed from the official v1 layer list)",
               reference_count=3_600_000)
register_model("deepfill-v1-tiny", DeepFillV1,
               DeepFillV1Config(size=32, width=8, critic_width=8, critic_steps=2, lr=None),
               paper="-", description="CPU test size: 32x32, width 8, critics 8, 2 critic steps; the Trainer's lr")
register_model("deepfill-v2", DeepFillV2, DeepFillV2Config(),
               paper="Yu et al. 2019 (DeepFill v2): gated convolutions, contextual attention, SN-PatchGAN hinge, "
                     "L1 1:1",
               description="gated two-stage generator (cnum 48), contextual attention, SN-PatchGAN; any size / 8",
               reference_params="4.05M generator (computed from nipponjo's port; the author quotes 4.1M)",
               reference_count=4_052_500)
register_model("deepfill-v2-sketch", DeepFillV2, DeepFillV2Config(sketch=True),
               paper="Yu et al. 2019 (DeepFill v2, user-guided): sketch channel, trained on Canny edges in the hole",
               description="deepfill-v2 with the sketch input: forward(image, mask, guide=sketch)",
               reference_params="4.05M + 1,200 for the sketch channel")
register_model("deepfill-v2-tiny", DeepFillV2, DeepFillV2Config(width=8, d_width=8, gan_weight=0.1, lr=None),
               paper="-", description="CPU test size: width 8, discriminator 8, GAN weight 0.1 (mmagic's); the "
                                      "Trainer's lr")
