"""Patch transfer: copy a coherent region from a second image where its patches match a query (replace's match).

This is contextual attention (Yu et al. 2018) with the attention propagation taken to its limit. Contextual
attention scores every (foreground position, background patch) pair by the cosine similarity of their 3x3
patches (the patches are convolution filters), propagates the scores over neighbouring pairs with an identity
kernel (``fuse``: pairs whose displacement agrees reinforce each other), takes a softmax over the background and
pastes background patches weighted by it (a transposed convolution). When the propagation window covers the
whole query region, every position of the region sums the same pairs, so its scores depend on the displacement
only: one attention map over displacements, shared by the region, and a copy that stays coherent however large
the hole. That is what replacing an object needs (a hole whose inside carries no evidence of its own, only its
surroundings or a sketch do), and it is what :func:`transfer_patches` computes:

1. ``scores[o]`` = the mean, over the query's non-empty 3x3 patches ``p``, of ``cos(query patch at p, key patch
   at p + o)``, for every displacement ``o`` (at a coarse ``rate`` first: ``rate x rate`` averages of both maps);
2. displacements that would put ``box`` (the part of the region to fill) outside the key are excluded;
3. the best coarse displacement is refined at full resolution among its ``rate``-neighbours, where the softmax
   (scale ``softmax_scale``) weighs the candidates;
4. the output is the ``value`` map (default: the key) shifted by each candidate displacement, weighted by the
   attention: the transposed convolution of the attention with the value's patches, for a shared attention map.

DeepFill's contextual attention (``layers/attention.py``) propagates scores with a small identity kernel over the
score matrix in raster order, which suits its self-attention on features that are informative everywhere; the two
agree when ``fuse`` covers the region and the raster order does not wrap rows.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..._registry import InpaintbenchError

__all__ = ["TransferResult", "displacement_scores", "transfer_patches"]

_EMPTY = 1e-6  # a patch whose norm is below this carries no evidence


class TransferResult(NamedTuple):
    """What :func:`transfer_patches` returns.

    Attributes:
        output: 1 x C_v x h x w, the value map copied into the query region.
        offset: the (row, column) displacement with the largest attention: query pixel (y, x) copies value pixel
            (y + row, x + column).
        attention: the largest attention weight (1 for an unambiguous match).

    """

    output: torch.Tensor
    offset: tuple[int, int]
    attention: float


def _patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """C*p*p x (H*W) unit-norm patches (zero where the patch is empty)."""
    columns = F.unfold(x, patch, padding=patch // 2)[0]
    norms = columns.norm(dim=0, keepdim=True)
    return torch.where(norms > _EMPTY, columns / norms.clamp_min(_EMPTY), torch.zeros_like(columns))


def displacement_scores(query: torch.Tensor, key: torch.Tensor, patch: int = 3) -> torch.Tensor:
    """Mean patch cosine similarity of ``query`` placed at every displacement over ``key``.

    Args:
        query: 1 x C x h x w.
        key: 1 x C x H x W.
        patch: odd side of the compared patches.

    Returns:
        (h + H - 1) x (w + W - 1): entry ``[dy + h - 1, dx + w - 1]`` scores displacement (dy, dx), i.e. query
        pixel (y, x) against key pixel (y + dy, x + dx); 0 where no non-empty query patch lands on the key.

    """
    h, w = query.shape[-2:]
    big_h, big_w = key.shape[-2:]
    q, k = _patches(query, patch), _patches(key, patch)
    used = torch.nonzero(q.abs().sum(dim=0) > 0).flatten()  # the query's non-empty patches (the filters)
    scores = torch.zeros((h + big_h - 1) * (w + big_w - 1), dtype=key.dtype, device=key.device)
    if not len(used):
        return scores.view(h + big_h - 1, w + big_w - 1)
    similarity = q[:, used].T @ k  # U x L: each query patch as a filter over every key position
    py, px = used // w, used % w
    ky = torch.arange(big_h, device=key.device).repeat_interleave(big_w)
    kx = torch.arange(big_w, device=key.device).repeat(big_h)
    index = (ky[None] - py[:, None] + h - 1) * (w + big_w - 1) + (kx[None] - px[:, None] + w - 1)
    scores.index_add_(0, index.flatten(), similarity.flatten())
    return (scores / len(used)).view(h + big_h - 1, w + big_w - 1)


def _allowed(scores: torch.Tensor, shape: tuple[int, int], key_shape: tuple[int, int],
             box: tuple[int, int, int, int]) -> torch.Tensor:
    """The displacements (as score entries) that keep ``box`` inside the key."""
    (h, w), (big_h, big_w) = shape, key_shape
    top, bottom, left, right = box
    dy = torch.arange(scores.shape[0], device=scores.device) - (h - 1)
    dx = torch.arange(scores.shape[1], device=scores.device) - (w - 1)
    rows = (top + dy >= 0) & (bottom + dy <= big_h)
    cols = (left + dx >= 0) & (right + dx <= big_w)
    return rows[:, None] & cols[None, :]


def transfer_patches(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor | None = None,
                     box: tuple[int, int, int, int] | None = None, rate: int = 1, patch: int = 3,
                     softmax_scale: float = 100.0) -> TransferResult:
    """Copy ``value`` into the query region at the displacement where ``key`` matches ``query`` best.

    Args:
        query: 1 x C x h x w, the evidence of where the copy goes (zeros carry none: a sketch's strokes, or the
            known edges around a hole).
        key: 1 x C x H x W, the map matched against.
        value: 1 x C_v x H x W, the map copied (default ``key``).
        box: (top, bottom, left, right) of the part of the region that must land inside the key (default: the
            whole region).
        rate: the coarse matching works on ``rate`` x ``rate`` averages (1 = full resolution only).
        patch: odd side of the compared patches (3, as contextual attention).
        softmax_scale: scale of the mean cosine scores before the softmax over the refined candidates.

    Returns:
        A :class:`TransferResult`.

    Raises:
        InpaintbenchError: shapes that do not fit, or a key too small to hold ``box``.

    """
    value = key if value is None else value
    if query.dim() != 4 or key.dim() != 4 or query.shape[:2] != key.shape[:2] or query.shape[0] != 1:
        raise InpaintbenchError(f"transfer_patches takes 1 x C x h x w maps of the same channels, got "
                                f"{tuple(query.shape)} and {tuple(key.shape)}")
    if value.shape[-2:] != key.shape[-2:]:
        raise InpaintbenchError(f"transfer_patches: value {tuple(value.shape)} must have the key's size")
    if rate < 1 or patch < 1 or patch % 2 == 0:
        raise InpaintbenchError("transfer_patches needs rate >= 1 and an odd patch")
    h, w = query.shape[-2:]
    big_h, big_w = key.shape[-2:]
    box = box or (0, h, 0, w)
    if box[1] - box[0] > big_h or box[3] - box[2] > big_w:
        raise InpaintbenchError(f"a {box[3] - box[2]}x{box[1] - box[0]} box does not fit in a {big_w}x{big_h} key")

    # coarse: every displacement on the rate grid
    if rate > 1:
        coarse_q = F.avg_pool2d(query, rate, ceil_mode=True)
        coarse_k = F.avg_pool2d(key, rate, ceil_mode=True)
        coarse = displacement_scores(coarse_q, coarse_k, patch)
        cbox = (box[0] // rate, -(-box[1] // rate), box[2] // rate, -(-box[3] // rate))
        allowed = _allowed(coarse, coarse_q.shape[-2:], coarse_k.shape[-2:], cbox)
        if not allowed.any():  # the rounded box may not fit a key of nearly its size: fall back to full resolution
            centre, radius = None, None
        else:
            best = torch.where(allowed, coarse, torch.full_like(coarse, -1.0)).flatten().argmax()
            hc, wc = coarse_q.shape[-2:]
            centre = (int(best // coarse.shape[1]) - (hc - 1)) * rate, (int(best % coarse.shape[1]) - (wc - 1)) * rate
            radius = rate
    else:
        centre, radius = None, None

    # fine: full-resolution candidates (around the coarse choice, or all of them)
    fine = displacement_scores(query, key, patch) if centre is None else _scores_near(query, key, patch, centre,
                                                                                      radius)
    allowed = _allowed(fine, (h, w), (big_h, big_w), box)
    if not allowed.any():
        raise InpaintbenchError(f"no placement keeps the {box[3] - box[2]}x{box[1] - box[0]} box inside the "
                                f"{big_w}x{big_h} key")
    logits = torch.where(allowed, fine * softmax_scale, torch.full_like(fine, float("-inf")))
    attention = torch.softmax(logits.flatten(), dim=0).view_as(fine)
    output = torch.zeros(1, value.shape[1], h, w, dtype=value.dtype, device=value.device)
    weights, order = attention.flatten().sort(descending=True)
    keep = weights > 1e-4 * weights[0]
    for weight, entry in zip(weights[keep], order[keep], strict=True):
        dy, dx = int(entry // fine.shape[1]) - (h - 1), int(entry % fine.shape[1]) - (w - 1)
        output += weight * _shifted(value, dy, dx, h, w)
    output = output / weights[keep].sum()
    best = int(order[0])
    return TransferResult(output, (best // fine.shape[1] - (h - 1), best % fine.shape[1] - (w - 1)),
                          float(weights[0]))


def _scores_near(query: torch.Tensor, key: torch.Tensor, patch: int, centre: tuple[int, int],
                 radius: int) -> torch.Tensor:
    """:func:`displacement_scores` for the displacements within ``radius`` of ``centre`` only (others -1)."""
    h, w = query.shape[-2:]
    big_h, big_w = key.shape[-2:]
    scores = torch.full((h + big_h - 1, w + big_w - 1), -1.0, dtype=key.dtype, device=key.device)
    q, k = _patches(query, patch), _patches(key, patch)
    used = torch.nonzero(q.abs().sum(dim=0) > 0).flatten()
    if not len(used):
        return scores
    py, px = used // w, used % w
    steps = torch.arange(-radius, radius + 1, device=key.device)
    dy = (centre[0] + steps).repeat_interleave(len(steps))  # D candidates
    dx = (centre[1] + steps).repeat(len(steps))
    valid = (dy > -h) & (dy < big_h) & (dx > -w) & (dx < big_w)
    dy, dx = dy[valid], dx[valid]
    ky, kx = py[None] + dy[:, None], px[None] + dx[:, None]  # D x U key positions
    inside = (ky >= 0) & (ky < big_h) & (kx >= 0) & (kx < big_w)
    index = torch.where(inside, ky * big_w + kx, torch.zeros_like(ky))
    cos = (q[:, used][:, None, :] * k[:, index]).sum(dim=0) * inside  # D x U
    scores[dy + h - 1, dx + w - 1] = cos.sum(dim=1) / len(used)
    return scores


def _shifted(value: torch.Tensor, dy: int, dx: int, h: int, w: int) -> torch.Tensor:
    """``value[..., y + dy, x + dx]`` for the h x w query grid (zeros outside the value)."""
    big_h, big_w = value.shape[-2:]
    out = torch.zeros(1, value.shape[1], h, w, dtype=value.dtype, device=value.device)
    ys, ye = max(0, -dy), min(h, big_h - dy)
    xs, xe = max(0, -dx), min(w, big_w - dx)
    if ye > ys and xe > xs:
        out[..., ys:ye, xs:xe] = value[..., ys + dy:ye + dy, xs + dx:xe + dx]
    return out
