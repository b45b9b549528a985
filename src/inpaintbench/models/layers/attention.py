"""Contextual attention (Yu et al., "Generative Image Inpainting with Contextual Attention", CVPR 2018).

Each position of a *foreground* feature map is rebuilt from patches of a *background* feature map, weighted
by how well they match. The algorithm (official ``inpaint_ops.py: contextual_attention``, mmagic
``ContextualAttentionModule``):

1. foreground and background are downsampled by ``rate`` (nearest neighbour) for the matching;
2. every ``patch_size`` x ``patch_size`` background patch, L2-normalised (norm floored at 1e-4), is a filter;
   correlating the foreground with these filters gives, for each foreground position, its cosine-like
   similarity to each background patch (the foreground patch is not normalised, as in the official code);
3. attention propagation (``fuse_size``): the score matrix (foreground positions x background patches, both
   in raster order) is convolved with a ``fuse_size`` x ``fuse_size`` identity kernel, then the same in
   column-major order, which adds the scores of the neighbouring pairs and so favours coherent copies of
   larger regions;
4. background patches that touch the hole (``mask``) are excluded; softmax over the background patches with
   the scores multiplied by ``softmax_scale`` (10);
5. the output is pasted from the *raw* (not downsampled) background, patches of ``2 * rate`` pixels at stride
   ``rate``, weighted by the attention: a transposed convolution, then divided by the overlap of the pasted
   patches.

Two conventions differ between the official TensorFlow code (and nipponjo's PyTorch port) and mmagic; both are
options, so that imported weights run as their authors trained them:

* ``masked_softmax``: mmagic excludes hole patches from the softmax (their score is -inf: the weights of a
  position sum to 1); the official code zeroes their *scores* before the softmax and their weights after it
  (each excluded patch still takes ``exp(0)`` of the normalisation, so the weights sum to less than 1);
* ``normalize_overlap``: mmagic divides the pasted result by the number of patches overlapping each pixel
  (4 inside, 2 on the borders, 1 in the corners at ``rate = 2``); the official code divides by 4 everywhere.

The official code reads the mask of the first image of the batch for every image (its training masks are
shared by a batch); here each image has its own mask. Everything is batched: no Python loop over images
(the score matrix of one image has ``(h * w / rate^2)^2`` entries: 1M, 4 MB in float32, for 64 x 64 features).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..._registry import InpaintbenchError

__all__ = ["AttentionResult", "ContextualAttention", "attention_flow", "contextual_attention", "flow_to_image"]

# the interior overlap of 2r x 2r patches pasted at stride r: 2 patches per direction
_INTERIOR_OVERLAP = 4.0


class AttentionResult(NamedTuple):
    """What :func:`contextual_attention` returns.

    Attributes:
        output: N x C_v x H x W: the foreground rebuilt from background (``values``) patches.
        scores: with ``return_scores``: N x h_f x w_f x h_b x w_b attention weights (after the softmax), at the
            matching resolution (``H / rate``); else None.
        offsets: with ``return_offsets``: N x 2 x h_f x w_f long tensor, the (row, column) of the background
            patch with the largest weight for each foreground position, at the matching resolution; else None.

    """

    output: torch.Tensor
    scores: torch.Tensor | None = None
    offsets: torch.Tensor | None = None


def _check(foreground: torch.Tensor, background: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None,
           rate: int, patch_size: int, fuse_size: int) -> None:
    if foreground.dim() != 4 or background.dim() != 4:
        raise InpaintbenchError("contextual_attention takes N x C x H x W foreground and background features")
    n, c = foreground.shape[:2]
    if background.shape[:2] != (n, c):
        raise InpaintbenchError(f"contextual_attention: background {tuple(background.shape)} does not match "
                                f"foreground {tuple(foreground.shape)} in batch size and channels")
    if values.dim() != 4 or values.shape[0] != n or values.shape[2:] != background.shape[2:]:
        raise InpaintbenchError(f"contextual_attention: values {tuple(values.shape)} must have the background's "
                                f"batch size and size {tuple(background.shape[2:])}")
    if rate < 1 or patch_size < 1 or patch_size % 2 == 0 or fuse_size < 1 or fuse_size % 2 == 0:
        raise InpaintbenchError("contextual_attention needs rate >= 1 and odd patch_size and fuse_size")
    for name, t in (("foreground", foreground), ("background", background)):
        if t.shape[2] % rate or t.shape[3] % rate:
            raise InpaintbenchError(f"contextual_attention: the {name}'s size {t.shape[2]}x{t.shape[3]} must be a "
                                    f"multiple of rate={rate}")
    if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2:] != background.shape[2:]
                             or mask.shape[0] not in (1, n)):
        raise InpaintbenchError(f"contextual_attention: mask {tuple(mask.shape)} must be N x 1 x "
                                f"{background.shape[2]} x {background.shape[3]} (the background's size)")


def _fuse(scores: torch.Tensor, size: int, fg_hw: tuple[int, int], bg_hw: tuple[int, int]) -> torch.Tensor:
    """Attention propagation: an identity-kernel convolution over the score matrix, in raster then column order.

    Args:
        scores: N x P x L (foreground positions x background patches, raster order).
        size: the identity kernel's side.
        fg_hw: foreground (h, w) at the matching resolution.
        bg_hw: background (h, w) at the matching resolution.

    Returns:
        The fused N x P x L scores.

    """
    n, p, length = scores.shape
    (hf, wf), (hb, wb) = fg_hw, bg_hw
    eye = torch.eye(size, dtype=scores.dtype, device=scores.device).view(1, 1, size, size)
    fused = F.conv2d(scores.reshape(n, 1, p, length), eye, padding=size // 2)
    # the same over column-major orders of both axes, then back to raster order
    fused = fused.view(n, hf, wf, hb, wb).transpose(1, 2).transpose(3, 4).reshape(n, 1, p, length)
    fused = F.conv2d(fused, eye, padding=size // 2)
    return fused.view(n, wf, hf, wb, hb).transpose(1, 2).transpose(3, 4).reshape(n, p, length)


def contextual_attention(foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor | None = None, *,
                         values: torch.Tensor | None = None, patch_size: int = 3, rate: int = 2,
                         softmax_scale: float = 10.0, fuse_size: int = 3, masked_softmax: bool = True,
                         normalize_overlap: bool = True, return_scores: bool = False,
                         return_offsets: bool = False) -> AttentionResult:
    """Rebuild ``foreground`` from the background patches that match it best (batched over images).

    For DeepFill's self-attention pass the same features as foreground and background and the hole as
    ``mask``. Foreground and background may differ in size (matching one image's features against another's);
    ``values`` (default: the background) are the features whose patches are pasted, so one map can be matched
    and another copied (e.g. matching edge features and copying the reference's edges).

    Args:
        foreground: N x C x H_f x W_f features to rebuild.
        background: N x C x H_b x W_b features to match against.
        mask: optional N x 1 x H_b x W_b (or 1 x 1 x ...) at the background's size, 1 = unavailable (the hole):
            background patches with any unavailable pixel (after downsampling by ``rate``) are excluded.
        values: optional N x C_v x H_b x W_b features to paste (default ``background``).
        patch_size: side of the matching patches (official: 3).
        rate: downsampling for the matching; the pasted patches are ``2 * rate`` pixels at stride ``rate``
            (official: 2). Every side must be a multiple of it.
        softmax_scale: the scores are multiplied by this before the softmax (official: 10).
        fuse_size: side of the identity kernel of attention propagation; 1 turns it off (official: 3).
        masked_softmax: exclude hole patches from the softmax (mmagic); False: the official formula (module
            docstring).
        normalize_overlap: divide by the actual overlap of pasted patches (mmagic); False: by 4 (official).
        return_scores: also return the attention weights.
        return_offsets: also return the best-matching background patch of each foreground position.

    Returns:
        An :class:`AttentionResult` (``output`` N x C_v x H_f x W_f, plus ``scores`` / ``offsets`` when asked).

    Raises:
        InpaintbenchError: for shapes that do not fit (sizes not multiples of ``rate``, a mask of another size).

    Example:
        >>> feats = torch.rand(2, 8, 32, 32)
        >>> hole = torch.zeros(2, 1, 32, 32)
        >>> hole[..., 8:16, 8:16] = 1
        >>> tuple(contextual_attention(feats, feats, hole).output.shape)
        (2, 8, 32, 32)

    """
    values = background if values is None else values
    _check(foreground, background, values, mask, rate, patch_size, fuse_size)
    n = foreground.shape[0]
    r, k = rate, 2 * rate
    before, after = r // 2, r - r // 2  # TensorFlow "SAME" padding of 2r-wide windows at stride r

    # raw patches to paste: N x (C_v * k * k) x L
    raw = F.unfold(F.pad(values, (before, after, before, after)), k, stride=r)

    f, b = foreground[..., ::r, ::r], background[..., ::r, ::r]  # nearest-neighbour downsampling
    (hf, wf), (hb, wb) = f.shape[2:], b.shape[2:]
    filters = F.unfold(b, patch_size, padding=patch_size // 2)  # N x (C * p * p) x L
    filters = filters / filters.norm(dim=1, keepdim=True).clamp_min(1e-4)
    windows = F.unfold(f, patch_size, padding=patch_size // 2)  # N x (C * p * p) x P
    scores = torch.bmm(windows.transpose(1, 2), filters)  # N x P x L: foreground positions x background patches
    if fuse_size > 1:
        scores = _fuse(scores, fuse_size, (hf, wf), (hb, wb))
    scores = scores * softmax_scale

    available = None
    if mask is not None:
        m = mask[..., ::r, ::r].to(scores.dtype)
        touched = F.max_pool2d(m, patch_size, stride=1, padding=patch_size // 2) > 0
        available = (~touched).flatten(1).expand(n, -1)[:, None, :]  # N x 1 x L
        if masked_softmax:
            # -inf for excluded patches; 0 where an image has no available patch at all (its weights are then
            # zeroed below instead of being NaN)
            blocked = torch.where(available.any(dim=2, keepdim=True), float("-inf"), 0.0).to(scores.dtype)
            scores = torch.where(available, scores, blocked)
        else:
            scores = scores * available
    attention = torch.softmax(scores, dim=2)
    if available is not None:
        attention = attention * available

    # paste: (N x C_v k k x L) @ (N x L x P), then col2im sums the overlapping patches
    columns = torch.bmm(raw, attention.transpose(1, 2).to(raw.dtype))
    full = ((hf + 1) * r, (wf + 1) * r)
    output = F.fold(columns, full, k, stride=r)[..., before:before + hf * r, before:before + wf * r]
    if normalize_overlap:
        ones = torch.ones(1, k * k, hf * wf, dtype=output.dtype, device=output.device)
        overlap = F.fold(ones, full, k, stride=r)[..., before:before + hf * r, before:before + wf * r]
        output = output / overlap.clamp_min(1)
    else:
        output = output / _INTERIOR_OVERLAP

    scores_out = attention.view(n, hf, wf, hb, wb) if return_scores else None
    offsets = None
    if return_offsets:
        best = attention.argmax(dim=2)  # N x P
        offsets = torch.stack([best // wb, best % wb], dim=1).view(n, 2, hf, wf)
    return AttentionResult(output, scores_out, offsets)


class ContextualAttention(nn.Module):
    """:func:`contextual_attention` as a module with fixed options (no parameters).

    Args:
        patch_size: side of the matching patches.
        rate: downsampling for the matching (pasted patches: ``2 * rate``).
        softmax_scale: scale of the scores before the softmax.
        fuse_size: side of the attention-propagation kernel (1 = off).
        masked_softmax: mmagic's exclusion of hole patches (False: the official formula).
        normalize_overlap: mmagic's overlap division (False: the official division by 4).

    """

    def __init__(self, patch_size: int = 3, rate: int = 2, softmax_scale: float = 10.0, fuse_size: int = 3,
                 masked_softmax: bool = True, normalize_overlap: bool = True) -> None:
        super().__init__()
        self.options = dict(patch_size=patch_size, rate=rate, softmax_scale=softmax_scale, fuse_size=fuse_size,
                            masked_softmax=masked_softmax, normalize_overlap=normalize_overlap)

    def forward(self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor | None = None,
                return_offsets: bool = False) -> AttentionResult:
        """Apply contextual attention.

        Args:
            foreground: N x C x H x W features to rebuild.
            background: N x C x H' x W' features to copy from.
            mask: N x 1 x H' x W', 1 = unavailable background.
            return_offsets: also return the best match of each position.

        Returns:
            An :class:`AttentionResult`.

        """
        with torch.profiler.record_function("contextual_attention"):
            return contextual_attention(foreground, background, mask, return_offsets=return_offsets,
                                        **self.options)

    def extra_repr(self) -> str:
        """The options, for ``print(model)``."""
        return ", ".join(f"{k}={v}" for k, v in self.options.items())


def attention_flow(offsets: torch.Tensor) -> torch.Tensor:
    """The displacement from each foreground position to its best background patch (same-size maps).

    Args:
        offsets: N x 2 x h x w from :func:`contextual_attention` (``return_offsets=True``).

    Returns:
        N x 2 x h x w (row, column) displacements, in positions of the matching resolution.

    """
    h, w = offsets.shape[2:]
    rows = torch.arange(h, device=offsets.device).view(1, h, 1)
    cols = torch.arange(w, device=offsets.device).view(1, 1, w)
    return torch.stack([offsets[:, 0] - rows, offsets[:, 1] - cols], dim=1)


def _color_wheel() -> np.ndarray:
    """The Middlebury optical-flow colour wheel: 55 RGB colours around the hue circle (red-yellow-green-...)."""
    # segment lengths: red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13, magenta-red 6
    segments = ((15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
                (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0)))
    colours = []
    for length, start, end in segments:
        t = np.arange(length)[:, None] / length
        step = np.asarray(end, float) - np.asarray(start, float)
        colours.append(np.asarray(start) + np.sign(step) * np.floor(np.abs(step) * t))
    return np.concatenate(colours)


def flow_to_image(flow: torch.Tensor) -> torch.Tensor:
    """Colour-code a flow field (the attention maps of the papers' figures): hue = direction, saturation = length.

    The flow is scaled by the largest displacement of the batch; zero flow is white (Middlebury convention,
    as the official code's visualisation).

    Args:
        flow: N x 2 x h x w (row, column) displacements, e.g. :func:`attention_flow`.

    Returns:
        N x 3 x h x w RGB in [0, 1].

    """
    # as the official visualisation: u is the row displacement, v the column's
    u, v = flow[:, 0].double().cpu().numpy(), flow[:, 1].double().cpu().numpy()
    radius = np.sqrt(u ** 2 + v ** 2)
    scale = radius.max() + np.finfo(float).eps
    u, v, radius = u / scale, v / scale, radius / scale
    wheel = _color_wheel() / 255
    ncols = len(wheel)
    angle = np.arctan2(-v, -u) / math.pi  # in [-1, 1]
    position = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % ncols
    frac = (position - k0)[..., None]
    colour = (1 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (radius <= 1)[..., None]
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)
    return torch.from_numpy(colour).float().permute(0, 3, 1, 2).to(flow.device)
