"""Reference-guided object replacement: EdgeConnect paints the hole from edges borrowed from a second image.

The steps (:func:`replace_object`):

1. Canny's edges of both images, as EdgeConnect computes them (gray = ``rgb2gray``, ``sigma`` of the model): the
   photo's from its known pixels only, the reference's from all of it;
2. the query: with the user's sketch, its strokes (the sketch places the object: the reference's edges are
   copied where they line up with it); without one, the photo's known edges in a ring around the hole's box (the
   box places the object: the reference's edges are copied where their surroundings match the photo's);
3. a contextual-attention match (:func:`~inpaintbench.models.layers.patch_transfer.transfer_patches`): the
   query's 3x3 edge patches are the filters, their cosine similarity with the reference's patches is propagated
   over the whole region (so every position of the hole agrees on one placement and the copy stays coherent),
   a softmax over the placements weighs them, and the reference's edges are pasted into the hole;
4. the composite edge map (the photo's edges outside the hole, the borrowed ones inside) goes to EdgeConnect's
   image generator (:meth:`~inpaintbench.models.edgeconnect.EdgeConnect.paint`); the known pixels of the result are
   the photo's, exactly.

The reference is used at its own scale: it must be at least as large as the hole's box (resize it to change the
object's size). With the photo itself as the reference and no sketch, the match finds the hole's own place and
the borrowed edges are the true ones: the test that the borrowed edges are what the generator paints from.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .._registry import InpaintbenchError
from ..models.layers.patch_transfer import TransferResult, transfer_patches
from .images import as_binary, as_rgb, write_image
from .inpaint import _composite, _pad, _pad_mask, _to_tensor, load_model

__all__ = ["Replacement", "borrow_edges", "replace_files", "replace_object"]

MATCH_SIDE = 16  # the region's longer side at the coarse matching resolution (sets the rate)


class Replacement(NamedTuple):
    """What :func:`replace_object` returns (all uint8).

    Attributes:
        result: H x W x 3, the photo with the hole painted.
        edges: H x W, the composite edge map the image generator painted from (255 on an edge).
        panel: a side-by-side picture: the photo with its hole, the reference, the composite edges, the result.

    """

    result: np.ndarray
    edges: np.ndarray
    panel: np.ndarray


def _box(on: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def borrow_edges(query: torch.Tensor, reference_edges: torch.Tensor, box: tuple[int, int, int, int],
                 sharpness: float = 100.0) -> TransferResult:
    """The reference's edges copied where they match ``query`` (:func:`~.layers.patch_transfer.transfer_patches`).

    Args:
        query: 1 x 1 x h x w edge evidence of the region to fill (sketch strokes, or the known edges around the hole).
        reference_edges: 1 x 1 x H x W, the edges to copy from.
        box: (top, bottom, left, right) of the hole's box in the region: it must land inside the reference.
        sharpness: the softmax scale of the match.

    Returns:
        The transfer: ``output`` (1 x 1 x h x w borrowed edges), the displacement and its attention weight.

    """
    rate = max(1, math.ceil(max(query.shape[-2:]) / MATCH_SIDE))
    result = transfer_patches(query, reference_edges, box=box, rate=rate, softmax_scale=sharpness)
    return result._replace(output=result.output.clamp(0, 1))


def replace_object(image: Any, mask: Any, reference: Any, sketch: Any = None, model: str = "edgeconnect",
                   checkpoint: str | Path | None = None, margin: float = 0.25, sharpness: float = 100.0,
                   device: str = "auto") -> Replacement:
    """Put the reference's object into the hole: borrowed edges, painted by EdgeConnect's image generator.

    Args:
        image: the photo (a path, a PIL image or an H x W x 3 uint8 array).
        mask: its hole (white / True = hole), the region to replace.
        reference: the image to borrow the object's edges from (at least as large as the hole's box).
        sketch: optional strokes (a path or an H x W array) that place the object; without them the hole's box
            and the edges around it place it.
        model: an EdgeConnect model name (or a loaded EdgeConnect).
        checkpoint: its weights (a training run or a stored checkpoint).
        margin: without a sketch, the ring of known edges matched around the hole's box, as a fraction of its
            longer side (at least 4 pixels).
        sharpness: softmax scale of the match (large: copy the best placement; small: blend several).
        device: where the model runs.

    Returns:
        A :class:`Replacement` (result, composite edges, panel). A mask without a hole returns the photo
        unchanged (with a warning).

    Raises:
        InpaintbenchError: one line: unreadable inputs, a mask of another size, a reference smaller than the
            hole's box, a model that is not EdgeConnect, a missing checkpoint.

    """
    from ..models.edgeconnect import EdgeConnect
    from ..models.edges import canny_edges, gray_image

    rgb = _uint8(as_rgb(image))
    ref = _uint8(as_rgb(reference, "reference"))
    hole = as_binary(mask, rgb.shape[:2])
    strokes = None if sketch is None else as_binary(sketch, rgb.shape[:2], what="sketch", minority=True)
    net = model if isinstance(model, EdgeConnect) else load_model(model, checkpoint, device)
    if not isinstance(net, EdgeConnect):
        raise InpaintbenchError(f"replace paints with EdgeConnect's image generator; {type(net).__name__} is not an "
                                "EdgeConnect model")
    if not hole.any():
        warnings.warn("the mask has no hole: the image comes back unchanged", stacklevel=2)
        edges = canny_edges(gray_image(_to_tensor(rgb)), net.config.sigma)[0, 0].numpy()
        return Replacement(rgb.copy(), _edge_picture(edges), _panel(rgb, hole, ref, edges, rgb))
    top, bottom, left, right = _box(hole)
    if ref.shape[0] < bottom - top or ref.shape[1] < right - left:
        raise InpaintbenchError(f"the reference is {ref.shape[1]}x{ref.shape[0]} and the hole's box "
                                f"{right - left}x{bottom - top}: the reference must hold a copy of the whole box "
                                "(use a larger reference, or a smaller mask)")
    x, ref_t = _to_tensor(rgb), _to_tensor(ref)
    m = torch.from_numpy(hole.astype(np.float32))[None, None]
    known_edges = canny_edges(gray_image(x * (1 - m)), net.config.sigma, where=1 - m)
    reference_edges = canny_edges(gray_image(ref_t), net.config.sigma)

    # the region matched and filled: the hole's box with a ring of context around it
    ring = max(4, round(margin * max(bottom - top, right - left)))
    r0, r1 = max(0, top - ring), min(rgb.shape[0], bottom + ring)
    c0, c1 = max(0, left - ring), min(rgb.shape[1], right + ring)
    if strokes is not None and strokes[r0:r1, c0:c1].any():
        query = torch.from_numpy(strokes[r0:r1, c0:c1].astype(np.float32))[None, None]
    else:
        if strokes is not None:
            warnings.warn("the sketch has no stroke near the hole: the hole's surroundings place the object",
                          stacklevel=2)
        query = (known_edges * (1 - m))[..., r0:r1, c0:c1]
    borrowed = torch.zeros_like(known_edges)
    borrowed[..., r0:r1, c0:c1] = borrow_edges(query, reference_edges, (top - r0, bottom - r0, left - c0, right - c0),
                                               sharpness).output
    composite = known_edges * (1 - m) + borrowed * m

    device_t = next(net.parameters()).device
    multiple = max(1, net.size_multiple)
    h, w = rgb.shape[:2]
    with torch.no_grad():
        pred = net.paint(_pad(x, multiple).to(device_t), _pad_mask(m, multiple).to(device_t),
                         _pad(composite, multiple).to(device_t))[..., :h, :w]
    result = _composite(rgb, hole, pred.float().clamp(0, 1).cpu())
    edges = composite[0, 0].numpy()
    return Replacement(result, _edge_picture(edges), _panel(rgb, hole, ref, edges, result))


def _uint8(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.dtype == np.uint8 else np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def _edge_picture(edges: np.ndarray) -> np.ndarray:
    """An edge map as a picture: 255 on an edge (lines white on black, as EdgeConnect's edge inputs)."""
    return np.clip(np.round(edges * 255), 0, 255).astype(np.uint8)


def _panel(rgb: np.ndarray, hole: np.ndarray, reference: np.ndarray, edges: np.ndarray,
           result: np.ndarray) -> np.ndarray:
    """The photo with its hole (white), the reference, the composite edges (black on white) and the result."""
    from PIL import Image

    h = rgb.shape[0]
    shown_hole = np.where(hole[..., None], 255, rgb).astype(np.uint8)
    scale = h / reference.shape[0]
    ref_img = Image.fromarray(reference).resize((max(1, round(reference.shape[1] * scale)), h), Image.BILINEAR)
    edge_img = np.repeat((255 - _edge_picture(edges))[..., None], 3, axis=2)
    gap = np.full((h, 4, 3), 255, np.uint8)
    parts = [shown_hole, gap, np.asarray(ref_img), gap, edge_img, gap, result]
    return np.concatenate(parts, axis=1)


def replace_files(image: str | Path, mask: str | Path, reference: str | Path, out: str | Path,
                  sketch: str | Path | None = None, model: str = "edgeconnect", checkpoint: str | Path | None = None,
                  device: str = "auto") -> list[Path]:
    """``inpaintbench replace``: write the result, the composite edge map and the side-by-side panel.

    Args:
        image: the photo file.
        mask: the hole's mask file.
        reference: the reference image file.
        out: the result file; ``<stem>-edges.png`` and ``<stem>-panel.png`` are written beside it.
        sketch: optional sketch file placing the object.
        model: the EdgeConnect model name.
        checkpoint: its weights.
        device: where the model runs.

    Returns:
        The three files written.

    """
    out = Path(out)
    replaced = replace_object(image, mask, reference, sketch=sketch, model=model, checkpoint=checkpoint,
                              device=device)
    return [write_image(replaced.result, out),
            write_image(replaced.edges, out.with_name(f"{out.stem}-edges.png")),
            write_image(replaced.panel, out.with_name(f"{out.stem}-panel.png"))]
