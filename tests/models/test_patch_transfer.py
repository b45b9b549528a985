"""Patch transfer (replace's contextual-attention match): exact scores, coherent placement, the box constraint."""

import pytest
import torch
import torch.nn.functional as F
from skimage.transform import resize

from inpaintbench import InpaintbenchError
from inpaintbench.models.edges import canny_edges, gray_image
from inpaintbench.models.layers.patch_transfer import displacement_scores, transfer_patches


def _direct_score(query, key, dy, dx):
    """Mean cosine of the query's non-empty 3x3 patches against the key's at (y + dy, x + dx), by loops."""
    qp, kp = F.unfold(query, 3, padding=1)[0], F.unfold(key, 3, padding=1)[0]
    (h, w), (kh, kw) = query.shape[-2:], key.shape[-2:]
    total, count = 0.0, 0
    for y in range(h):
        for x in range(w):
            a = qp[:, y * w + x]
            if a.norm() <= 1e-6:
                continue
            count += 1
            if 0 <= y + dy < kh and 0 <= x + dx < kw:
                b = kp[:, (y + dy) * kw + x + dx]
                if b.norm() > 1e-6:
                    total += float(a @ b / a.norm() / b.norm())
    return total / count


def test_displacement_scores_are_the_mean_patch_cosine():
    g = torch.Generator().manual_seed(0)
    query, key = torch.rand(1, 2, 5, 6, generator=g), torch.rand(1, 2, 7, 8, generator=g)
    query[..., 2, :] = 0  # empty patches carry no evidence
    query[..., 1:4, :] = 0
    scores = displacement_scores(query, key)
    assert scores.shape == (5 + 7 - 1, 6 + 8 - 1)
    for dy, dx in [(0, 0), (1, 2), (-3, 4), (6, -5), (-4, -5)]:
        assert scores[dy + 4, dx + 5].item() == pytest.approx(_direct_score(query, key, dy, dx), abs=1e-5)


@pytest.mark.parametrize("size, box, rate", [(32, (10, 22, 8, 20), 2), (128, (40, 80, 50, 90), 4)])
def test_a_ring_of_known_edges_finds_the_holes_own_place(astronaut, size, box, rate):
    """Matched against the photo's own edges, the ring around a hole places the copy where the hole is."""
    image = torch.from_numpy(resize(astronaut, (size, size), anti_aliasing=True)).permute(2, 0, 1)[None].float()
    top, bottom, left, right = box
    hole = torch.zeros(1, 1, size, size)
    hole[..., top:bottom, left:right] = 1
    known = canny_edges(gray_image(image * (1 - hole)), 2.0, where=1 - hole)
    truth = canny_edges(gray_image(image), 2.0)
    r0, c0 = top - 8, left - 8
    query = (known * (1 - hole))[..., r0:bottom + 8, c0:right + 8]
    result = transfer_patches(query, truth, box=(8, bottom - r0, 8, right - c0), rate=rate)
    assert result.offset == (r0, c0) and result.attention > 0.99
    assert torch.equal(result.output[..., 8:-8, 8:-8], truth[..., top:bottom, left:right])


def test_a_sketch_places_the_copy_and_the_box_must_fit():
    g = torch.Generator().manual_seed(1)
    key = (torch.rand(1, 1, 40, 50, generator=g) > 0.85).float()
    sketch = torch.zeros(1, 1, 20, 20)
    sketch[..., 4:16, 4:16] = key[..., 21:33, 30:42]  # the strokes of the key's region at (17, 26) + (4, 4)
    result = transfer_patches(sketch, key, rate=2)
    assert result.offset == (17, 26)
    assert torch.equal(result.output, key[..., 17:37, 26:46])
    with pytest.raises(InpaintbenchError, match="does not fit"):
        transfer_patches(torch.rand(1, 1, 45, 10), key)
    with pytest.raises(InpaintbenchError, match="same channels"):
        transfer_patches(torch.rand(1, 2, 5, 5), key)


def test_ambiguous_evidence_blends_the_candidates():
    key = torch.zeros(1, 1, 16, 16)
    key[..., 4, 2:14] = 1  # one long horizontal line: the short query line matches both of its ends as well
    query = torch.zeros(1, 1, 3, 5)
    query[..., 1, 1:4] = 1
    result = transfer_patches(query, key, softmax_scale=100.0)
    assert result.attention < 0.9
    assert ((result.output > 0) & (result.output < 1)).any() and result.output.max() <= 1  # a mix of copies
