"""EdgeConnect: Nazeri et al., "EdgeConnect: Structure Guided Image Inpainting using Edge Prediction" (ICCVW 2019).

Sources (model_anchors.md sections 6 and 14): the official code ``knazeri/edge-connect`` (``src/networks.py``,
``src/models.py``, ``src/loss.py``, ``src/edge_connect.py``, ``src/dataset.py``, ``config.yml.example``).

Two generators of the same body: encoder (reflect-padded 7x7 conv to ``width``, two 4x4 stride-2 convs to 2x and
4x ``width``; InstanceNorm without affine, ReLU), 8 residual blocks at 4x ``width`` (3x3 conv with dilation 2,
3x3 conv, InstanceNorm, no ReLU after the sum; :class:`~.layers.ResidualBlock`), decoder (two 4x4 stride-2
transposed convs, InstanceNorm, ReLU; reflect-padded 7x7 conv):

* the edge generator ``edge_generator`` (G1) sees ``[gray * (1 - m) + m, edges * (1 - m), m]`` (gray = scikit-image
  ``rgb2gray``, edges = ``canny(gray, sigma=2, mask=known pixels)``), has spectral norm on every conv but the last
  (and no bias in the residual blocks, as the official code under spectral norm) and a sigmoid output: 10.76M;
* the image generator ``generator`` (G2) sees ``[rgb * (1 - m) + m, edges]`` (holes filled with 1), has no spectral
  norm and outputs ``(tanh(y) + 1) / 2``: 10.77M, the published count.

At inference the edges G2 sees are G1's output in the hole and Canny's edges of the known pixels elsewhere (the
paper, the official ``sample()`` and the training of modes 3 and 4; ``merge_edges=False`` passes G1's raw output
on, as the official ``test()`` does, which is what the official-layout import sets). A guide (the user's strokes,
N x 1 x H x W, 1 on a stroke) is added to G1's edges inside the hole (pixel-wise maximum); strokes outside the
hole change nothing. ``edges="oracle"`` skips G1 and paints from a given full edge map: the ablation of the true
edges (:meth:`EdgeConnect.oracle_guide` gives the harness Canny's edges of the uncorrupted image, as in training).

Discriminators (``edge_discriminator`` on ``[gray, edges]``, ``discriminator`` on RGB): the 70x70 PatchGAN
(:class:`~.layers.patchgan.PatchDiscriminator`: 4x4 convs 64, 128, 256, 512, 1 with strides 2, 2, 2, 1, 1, spectral
norm and no bias on every conv, LeakyReLU 0.2), returning every layer's output for feature matching.

Losses (``config.yml.example``, ``models.py``): G1 minimises adversarial (1) + feature matching (10: the sum over
the five layers of D1 of the mean L1 between fake and real features); G2 minimises ``L1 / mean(m)`` (1; over the
whole image), adversarial (0.1), perceptual (0.1: VGG19 relu1_1 ... relu5_1, weights 1) and style (250: Gram
matrices of relu2_2, relu3_4, relu4_4, relu5_2 of ``pred * m`` against ``image * m``); the VGG19 sees the [0, 1]
image without ImageNet normalisation, as the official ``VGG19``. Each discriminator minimises ``(real + fake) / 2``
of the non-saturating loss (``GAN_LOSS: nsgan``); its input is the generator's raw output. Adam with lr 1e-4 and
betas (0, 0.9) for the generators and ``d2g_lr`` (0.1) times that for the discriminators.

Training modes (``config.MODEL``) as phases of one run: ``phases`` lists them, ``phase_steps`` gives the length of
each but the last (which runs to the end). ``edge`` (mode 1) trains G1 and D1 on Canny's edges of the whole
training image; ``inpaint`` (mode 2) trains G2 and D2 on the true edges; ``edge+inpaint`` trains both at once (they
are independent: the same as running modes 1 and 2 side by side); ``edge_inpaint`` (mode 3) trains G2 on G1's
edges in the hole (G1 fixed); ``joint`` (mode 4) trains all four networks, G2's losses also reaching G1 through the
edges it paints from. The default is the official sequence: edge, inpaint, joint.

Deviations from the official code, on purpose:

* one run with phases, one step counter and one data order instead of separate runs per mode (each official
  model keeps its own iteration count); the paper's learning-rate drops (1e-5, then 1e-6 for the end-to-end
  fine-tuning with D1 removed) are in neither the official code nor here: set ``lr`` per run;
* the official code computes every loss from one forward and then steps D and G; the Trainer steps each group in
  turn, so G's adversarial and feature-matching terms see the discriminator after its update (as GLCIC here and
  pix2pix); in the joint phase G2 runs twice per step (once for G1's gradient, once for its own, on the same
  edges), which gives the official gradients;
* the non-saturating loss is computed from logits (``softplus``) rather than ``BCELoss`` after a sigmoid (the same
  value, stable); with ``adversarial="lsgan"`` the squares are of logits (the official applies them after a
  sigmoid); ``hinge`` is the official hinge;
* Canny runs in the model on the training batch (the official dataset computes it per image, the same function);
  only a fixed ``sigma`` > 0 is supported (the official 0 = random in 1..4 and -1 = no edges are not), and no
  external edge files (``EDGE: 2``) in training;
* the data pipeline is the Trainer's: its mask levels instead of the official random block / half / external masks,
  no random horizontal flip, the dataset's image size instead of the official resize and centre crop to 256;
* ``lr`` is this config's (the official 1e-4), not the Trainer's ``--lr``, because the discriminators' rate is
  ``d2g_lr`` times it: set ``-O lr=...``.
"""

from .layouts import EDGE_FILE, INPAINT_FILE, convert_generator, convert_official
from .model import EdgeConnect, EdgeConnectConfig, EdgeConnectGenerator

__all__ = ["EDGE_FILE", "INPAINT_FILE", "EdgeConnect", "EdgeConnectConfig", "EdgeConnectGenerator",
           "convert_generator", "convert_official"]
