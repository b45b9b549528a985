"""Contextual attention and gated convolution (models/layers/attention.py, models/layers/gated.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintbench import InpaintbenchError
from inpaintbench.models.layers.attention import (
    ContextualAttention,
    attention_flow,
    contextual_attention,
    flow_to_image,
)
from inpaintbench.models.layers.gated import GatedConv2d

from .deepfill_reference import reference_attention


def _photo(astronaut, size):
    photo = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float()
    return F.interpolate(photo, size=(size, size), mode="bilinear", antialias=True)


def _copied(astronaut, size, hole, source, ring=4):
    """The photo with ``source`` (plus a ``ring``-pixel border) copied over ``hole`` (plus the same border).

    The border makes every foreground patch of the hole, and the neighbours that attention propagation adds, an
    exact copy of a background patch of the source.
    """
    image = _photo(astronaut, size)
    (ht, hl), (st, sl), side = hole, source, 32
    copy = image[..., st - ring:st + side + ring, sl - ring:sl + side + ring].clone()
    image[..., ht - ring:ht + side + ring, hl - ring:hl + side + ring] = copy
    mask = torch.zeros(1, 1, size, size)
    mask[..., ht:ht + side, hl:hl + side] = 1
    return image * 2 - 1, mask


@pytest.mark.parametrize("masked_softmax", [True, False])
def test_attention_of_a_copied_hole_points_at_its_source(astronaut, masked_softmax):
    """Two images, each with its hole an exact copy of another region: the hole's best matches are the source."""
    holes, sources = [(56, 56), (8, 48)], [(8, 8), (56, 8)]
    pairs = [_copied(astronaut, 96, h, s) for h, s in zip(holes, sources, strict=True)]
    feats, mask = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    result = contextual_attention(feats, feats, mask, masked_softmax=masked_softmax, return_offsets=True,
                                  return_scores=True)
    for i, ((ht, hl), (st, sl)) in enumerate(zip(holes, sources, strict=True)):
        rows, cols = torch.meshgrid(torch.arange(ht // 2, ht // 2 + 16), torch.arange(hl // 2, hl // 2 + 16),
                                    indexing="ij")
        best_row, best_col = result.offsets[i, 0][rows, cols], result.offsets[i, 1][rows, cols]
        in_source = ((best_row >= st // 2) & (best_row < st // 2 + 16)
                     & (best_col >= sl // 2) & (best_col < sl // 2 + 16))
        assert in_source.float().mean() >= 0.9, in_source.float().mean()
        same_place = (best_row == rows - (ht - st) // 2) & (best_col == cols - (hl - sl) // 2)
        assert same_place.float().mean() >= 0.9
    # excluded patches get no weight; with the masked softmax each position's weights sum to 1
    scores = result.scores.flatten(3)  # N x h x w x L
    touched = F.max_pool2d(mask[..., ::2, ::2], 3, 1, 1).flatten(1) > 0
    assert scores.transpose(1, 3).transpose(2, 3)[touched].abs().max() == 0
    sums = scores.sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)  # exp(0) of excluded patches is negligible here


def test_official_softmax_leaves_weight_to_excluded_patches_and_the_masked_one_does_not():
    feats = torch.rand(1, 4, 16, 16) * 0.01  # small scores: exp(0) of an excluded patch counts
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :8, :] = 1
    official = contextual_attention(feats, feats, mask, masked_softmax=False, return_scores=True).scores
    masked = contextual_attention(feats, feats, mask, masked_softmax=True, return_scores=True).scores
    assert (official.flatten(3).sum(-1) < 0.9).all()
    assert torch.allclose(masked.flatten(3).sum(-1), torch.ones(1, 8, 8), atol=1e-5)


@pytest.mark.parametrize("masked_softmax,normalize_overlap", [(False, False), (True, True)])
def test_batched_attention_equals_the_per_image_official_loop(masked_softmax, normalize_overlap):
    """The batched layer equals the official algorithm run image by image, each image with its own mask.

    In float64 they agree to 1e-5 (to rounding, in fact); in float32 the sharp softmax (scores of about 100)
    turns the different summation orders into relative differences of about 1e-5.
    """
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 16, 24, 32, generator=g, dtype=torch.float64).relu()
    mask = torch.zeros(3, 1, 24, 32, dtype=torch.float64)
    mask[0, :, 4:12, 6:20] = 1
    mask[1, :, 10:22, 2:10] = 1
    mask[2, :, 0:8, 24:32] = 1
    options = dict(masked_softmax=masked_softmax, normalize_overlap=normalize_overlap)
    ours = contextual_attention(feats, feats, mask, **options).output
    reference = reference_attention(feats, feats, mask, **options)
    assert (ours - reference).abs().max() < 1e-5
    ours32 = contextual_attention(feats.float(), feats.float(), mask.float(), **options).output
    assert torch.allclose(ours32, reference.float(), rtol=1e-4, atol=1e-4)


def test_attention_without_fusion_or_mask_and_with_other_sizes_and_values():
    """Matching one map against another of another size, pasting a third: shapes and the unmasked reference."""
    g = torch.Generator().manual_seed(1)
    fg, bg = torch.randn(2, 8, 16, 16, generator=g), torch.randn(2, 8, 24, 32, generator=g)
    values = torch.randn(2, 5, 24, 32, generator=g)
    result = contextual_attention(fg, bg, values=values, return_offsets=True, return_scores=True)
    assert result.output.shape == (2, 5, 16, 16)
    assert result.scores.shape == (2, 8, 8, 12, 16) and result.offsets.shape == (2, 2, 8, 8)
    assert result.offsets[:, 0].max() < 12 and result.offsets[:, 1].max() < 16
    same = torch.randn(2, 8, 16, 16, generator=g)
    ours = contextual_attention(same, same, None, fuse_size=1, masked_softmax=False, normalize_overlap=False)
    reference = reference_attention(same, same, torch.zeros(2, 1, 16, 16), fuse_k=1)
    assert (ours.output - reference).abs().max() < 1e-5


def test_attention_gradients_flow_and_a_fully_masked_image_gives_zeros():
    feats = torch.randn(2, 4, 16, 16, requires_grad=True)
    mask = torch.zeros(2, 1, 16, 16)
    mask[0] = 1  # nothing available in image 0
    mask[1, :, 4:8, 4:8] = 1
    out = ContextualAttention()(feats, feats, mask).output
    assert torch.isfinite(out).all() and out[0].abs().max() == 0
    out.sum().backward()
    assert torch.isfinite(feats.grad).all() and feats.grad[1].abs().sum() > 0


def test_attention_rejects_bad_shapes():
    feats = torch.randn(1, 4, 16, 16)
    with pytest.raises(InpaintbenchError, match="multiple of rate=2"):
        contextual_attention(torch.randn(1, 4, 15, 16), feats)
    with pytest.raises(InpaintbenchError, match="the background's size"):
        contextual_attention(feats, feats, torch.zeros(1, 1, 8, 8))
    with pytest.raises(InpaintbenchError, match="batch size and channels"):
        contextual_attention(feats, torch.randn(1, 3, 16, 16))
    with pytest.raises(InpaintbenchError, match="odd patch_size"):
        contextual_attention(feats, feats, patch_size=2)


def test_flow_image_is_white_at_rest_and_coloured_by_direction():
    offsets = torch.stack(torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij"))[None]
    flow = attention_flow(offsets)
    assert flow.abs().max() == 0
    assert torch.allclose(flow_to_image(flow), torch.ones(1, 3, 4, 4))
    down, right = torch.zeros(1, 2, 1, 1), torch.zeros(1, 2, 1, 1)
    down[0, 0], right[0, 1] = 1, 1
    colours = flow_to_image(torch.cat([down, right]))
    assert colours.shape == (2, 3, 1, 1) and (colours[0] != colours[1]).any()
    # the official colour wheel: a full-length displacement downwards is red (arctan2(-0.0, -1) = -pi, the wheel's
    # first colour), one to the right is between its 13th and 14th colours, (255, 221, 0) and (255, 238, 0)
    assert np.allclose(colours[0, :, 0, 0].numpy(), [1, 0, 0], atol=1e-6)
    assert np.allclose(colours[1, :, 0, 0].numpy(), np.array([255, 229.5, 0]) / 255, atol=1e-6)


def test_gated_conv_is_features_times_sigmoid_gate():
    layer = GatedConv2d(3, 4, 3, dilation=2)
    x = torch.randn(2, 3, 10, 10)
    raw = F.conv2d(x, layer.conv.weight, layer.conv.bias, padding=2, dilation=2)
    expected = F.elu(raw[:, :4]) * torch.sigmoid(raw[:, 4:])
    assert torch.allclose(layer(x), expected, atol=1e-6)
    plain = GatedConv2d(3, 4, 3, stride=2, activation="none", padding_mode="reflect")
    raw = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), plain.conv.weight, plain.conv.bias, stride=2)
    assert torch.allclose(plain(x), raw[:, :4] * torch.sigmoid(raw[:, 4:]), atol=1e-6)
    with pytest.raises(InpaintbenchError, match="odd kernel"):
        GatedConv2d(3, 4, 2)
    with pytest.raises(InpaintbenchError, match="padding_mode"):
        GatedConv2d(3, 4, 3, padding_mode="circular")
