"""Single-image inpainting: any registered model on a photo of any size, or on a folder of photos.

The model sees the photo at its own size when it is fully convolutional: the sides are padded (reflection) to the
model's :attr:`~inpaintbench.models.base.InpaintModel.size_multiple` and the result cropped back. A model built
for one size (``fixed_size()``: the MLP, the CNN) needs ``resize=True`` (the photo is resized to that size and the
painted hole resized back) or ``tile=True`` (the photo is cut into tiles of that size and each tile with a hole is
painted). Either way the known pixels of the result are the input's, exactly: only hole pixels change.

Weights: classical models run as they are; a trainable model needs ``checkpoint`` (a training run's folder or its
state file, or a checkpoint-store entry), else it is an error rather than the output of random weights.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .._registry import InpaintbenchError
from ..models.base import MODELS, InpaintModel, create_model
from .images import IMAGE_SUFFIXES, as_binary, as_rgb, write_image

__all__ = ["inpaint", "inpaint_files", "load_model", "run_model"]

_GUIDE_OPTION = {"edges": "--edges", "sketch": "--sketch"}
_GUIDED_BY = {"edges": "EdgeConnect", "sketch": "DeepFill v2 with its sketch channel"}


# --------------------------------------------------------------------------------------------------
# models and weights


def load_model(model: str | None = None, checkpoint: str | Path | None = None, device: str = "auto"
               ) -> InpaintModel:
    """The model to run, with its weights, in eval mode on ``device``.

    Args:
        model: a registered model name; None takes the checkpoint's.
        checkpoint: a checkpoint-store entry (a finished training run's folder, an imported checkpoint's name) or
            an unfinished run's ``checkpoint.pt``; None for models that need no training.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...

    Returns:
        The model.

    Raises:
        InpaintbenchError: no model named, a trainable model without weights, or a checkpoint of another model
            (naming both).

    """
    from ..models.train import pick_device

    if checkpoint is None:
        if model is None:
            raise InpaintbenchError("name a model (--model) or a checkpoint (--checkpoint)")
        net = create_model(model)
        if net.trainable:
            raise InpaintbenchError(f"{model} is a trained model and no checkpoint was given: its weights would be "
                                    "random; pass --checkpoint (a training run or a stored checkpoint)")
    else:
        net = _load_checkpoint(checkpoint, model)
    return net.to(pick_device(device)).eval()


def _load_checkpoint(checkpoint: str | Path, model: str | None) -> InpaintModel:
    """A checkpoint-store entry (a finished run's folder, a stored name) or an unfinished run's state file."""
    from ..models.resume import STATE_FILE, load_state
    from ..models.store import CARD_FILE, load_stored
    from ..models.train import load_weights

    path = Path(checkpoint)
    if path.is_dir() and not (path / CARD_FILE).is_file() and (path / STATE_FILE).is_file():
        path = path / STATE_FILE  # a run still in progress
    if path.name != STATE_FILE:
        net, _ = load_stored(checkpoint, model=model)
        return net
    state = load_state(path)
    name = state.get("model_name")
    if not name:
        raise InpaintbenchError(f"{path} does not name its model (not written by the inpaintbench Trainer)")
    _same_family(name, model, path)
    return load_weights(create_model(name, **json.loads(state["model_config"])), path)


def _same_family(stored: str, wanted: str | None, where: Path | str) -> None:
    if wanted is not None and stored != wanted and MODELS.get(stored).model_cls is not MODELS.get(wanted).model_cls:
        raise InpaintbenchError(f"checkpoint {where} is a {stored} checkpoint, not {wanted}")


# --------------------------------------------------------------------------------------------------
# running a model on one photo


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    array = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]


# Networks are padded to at least this side: their reflection pads need a few pixels at their coarsest scale
# (EdgeConnect's dilated blocks at 1/4 raised on photos of 8 px and under, or 1 px high).
MIN_SIDE = 32


def _padding(h: int, w: int, multiple: int) -> tuple[int, int]:
    """Rows and columns to add below and right: up to a multiple of ``multiple``, and to MIN_SIDE at least."""
    least = -(-MIN_SIDE // multiple) * multiple
    return max(-h % multiple, least - h), max(-w % multiple, least - w)


def _pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    pad_h, pad_w = _padding(h, w, multiple)
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _pad_mask(mask: torch.Tensor, multiple: int) -> torch.Tensor:
    """``mask`` padded as :func:`_pad` pads its image; the padding counts as known."""
    pad_h, pad_w = _padding(*mask.shape[-2:], multiple)
    return F.pad(mask, (0, pad_w, 0, pad_h))


def _call(net: InpaintModel, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
    masked = image * (1 - mask)
    if guide is None:
        return net(masked, mask)
    return net(masked, mask, guide=guide)


def run_model(net: InpaintModel, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None = None,
              resize: bool = False, tile: bool = False) -> torch.Tensor:
    """The model's prediction for one photo of any size (the hole is composited by the caller).

    Args:
        net: the model (in eval mode).
        image: 1 x 3 x H x W in [0, 1].
        mask: 1 x 1 x H x W, 1 = hole.
        guide: 1 x 1 x H x W strokes for a guided model, or None.
        resize: a fixed-size model paints the photo resized to its size.
        tile: a fixed-size model paints the photo tile by tile.

    Returns:
        1 x 3 x H x W prediction in [0, 1] (float32, on the CPU).

    Raises:
        InpaintbenchError: a fixed-size model without ``resize`` or ``tile``, or both asked for.

    """
    if resize and tile:
        raise InpaintbenchError("--resize and --tile are two ways to paint a fixed-size model: pass one of them")
    device = next(iter(net.parameters()), torch.empty(0)).device
    image, mask = image.to(device), mask.to(device)
    guide = guide.to(device) if guide is not None else None
    h, w = image.shape[-2:]
    fixed = net.fixed_size()
    with torch.no_grad():
        if fixed is None:
            multiple = max(1, net.size_multiple)
            padded_guide = _pad(guide, multiple) if guide is not None else None
            pred = _call(net, _pad(image, multiple), _pad_mask(mask, multiple), padded_guide)[..., :h, :w]
        elif resize:
            small = F.interpolate(image, size=(fixed, fixed), mode="area")
            small_mask = (F.interpolate(mask, size=(fixed, fixed), mode="area") > 0).to(image.dtype)
            small_guide = None if guide is None else (F.interpolate(guide, size=(fixed, fixed), mode="area") > 0
                                                      ).to(image.dtype)
            pred = F.interpolate(_call(net, small, small_mask, small_guide), size=(h, w), mode="bilinear",
                                 align_corners=False)
        elif tile:
            pred = _tiles(net, image, mask, guide, fixed)
        else:
            raise InpaintbenchError(f"this model works on {fixed}x{fixed} images only and the photo is {w}x{h}: "
                                    "pass --resize (or resize=True) to paint it resized, or --tile (tile=True) to "
                                    f"paint it in {fixed}x{fixed} tiles")
    return pred.float().clamp(0, 1).cpu()


def _tiles(net: InpaintModel, image: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor | None,
           side: int) -> torch.Tensor:
    """Paint every ``side`` x ``side`` tile that holds a hole (the photo padded to a multiple of ``side``)."""
    h, w = image.shape[-2:]
    padded, padded_mask = _pad(image, side), _pad_mask(mask, side)
    padded_guide = _pad(guide, side) if guide is not None else None
    pred = padded.clone()
    for top in range(0, padded.shape[-2], side):
        for left in range(0, padded.shape[-1], side):
            window = (..., slice(top, top + side), slice(left, left + side))
            if padded_mask[window].any():
                g = padded_guide[window] if padded_guide is not None else None
                pred[window] = _call(net, padded[window], padded_mask[window], g)
    return pred[..., :h, :w]


def _composite(rgb: np.ndarray, hole: np.ndarray, pred: torch.Tensor) -> np.ndarray:
    """The input with its hole pixels replaced: known pixels are copied, bit for bit."""
    painted = pred[0].permute(1, 2, 0).numpy()
    if rgb.dtype == np.uint8:
        painted = np.clip(np.round(painted * 255.0), 0, 255).astype(np.uint8)
    else:
        painted = painted.astype(rgb.dtype)
    return np.where(hole[..., None], painted, rgb)


def _guide_tensor(guide: Any, shape: tuple[int, int], net: InpaintModel, what: str) -> torch.Tensor | None:
    if guide is None:
        return None
    if not net.guidance:
        raise InpaintbenchError(f"{type(net).__name__} takes no guide ({what}): only edge- and sketch-guided models "
                                "(edgeconnect, deepfill v2 with its sketch channel) do")
    strokes = as_binary(guide, shape, what=what, minority=True)
    return torch.from_numpy(strokes.astype(np.float32))[None, None]


def inpaint(image: Any, mask: Any, model: str | InpaintModel | None = None, checkpoint: str | Path | None = None,
            guide: Any = None, resize: bool = False, tile: bool = False, device: str = "auto") -> np.ndarray:
    """Inpaint one photo: the hole painted by ``model``, every known pixel kept exactly.

    Args:
        image: a path, a PIL image, or an H x W x 3 array (uint8, or float in [0, 1]); any size.
        mask: a path or an H x W array, white / True / non-zero = hole (see :mod:`.images` for sizes).
        model: a registered model name, or a model already loaded (:func:`load_model`); None takes the
            checkpoint's.
        checkpoint: the weights of a trainable model (a training run or a store entry).
        guide: strokes for a guided model (EdgeConnect's edges, DeepFill v2's sketch): a path or an H x W array.
        resize: fixed-size models: paint the photo resized to the model's size.
        tile: fixed-size models: paint the photo in tiles of the model's size.
        device: where the model runs (``auto``: CUDA when available).

    Returns:
        H x W x 3: uint8 for files and uint8 arrays, the input's float dtype for float arrays. Without a hole the
        input comes back unchanged (with a warning).

    Raises:
        InpaintbenchError: one line for any bad input (unreadable files, sizes that do not fit, a trainable model
            without weights, a checkpoint of another model, a guide for a model without guidance).

    Example:
        >>> import skimage.data
        >>> photo = skimage.data.chelsea()
        >>> hole = np.zeros(photo.shape[:2], bool)
        >>> hole[100:150, 200:260] = True
        >>> result = inpaint(photo, hole, model="biharmonic")
        >>> bool((result[~hole] == photo[~hole]).all())
        True

    """
    rgb = as_rgb(image)
    hole = as_binary(mask, rgb.shape[:2])
    net = model if isinstance(model, InpaintModel) else load_model(model, checkpoint, device)
    what = {"edges": "edge image", "sketch": "sketch"}.get(net.guidance, "guide")  # for the messages
    strokes = _guide_tensor(guide, rgb.shape[:2], net, what)
    if not hole.any():
        warnings.warn("the mask has no hole: the image comes back unchanged", stacklevel=2)
        return rgb.copy()
    if hole.all():
        warnings.warn("the mask covers the whole image: no known pixel is left to fill the hole from", stacklevel=2)
    x = _to_tensor(rgb)
    m = torch.from_numpy(hole.astype(np.float32))[None, None]
    pred = run_model(net, x, m, strokes, resize=resize, tile=tile)
    return _composite(rgb, hole, pred)


# --------------------------------------------------------------------------------------------------
# files and folders


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _partner(path: Path | None, stem: str, what: str) -> Path | None:
    """The file for the image ``stem``: the file itself, or the folder's file with the same stem."""
    if path is None or path.is_file():
        return path
    if not path.is_dir():
        raise InpaintbenchError(f"{what} {path} not found")
    matches = [p for p in _images_in(path) if p.stem == stem]
    if not matches:
        raise InpaintbenchError(f"no {what} for {stem} in {path} (a file named {stem}.png, for example)")
    return matches[0]


def inpaint_files(image: str | Path, mask: str | Path, out: str | Path, model: str | None = None,
                  checkpoint: str | Path | None = None, edges: str | Path | None = None,
                  sketch: str | Path | None = None, resize: bool = False, tile: bool = False,
                  device: str = "auto") -> list[Path]:
    """Inpaint a photo file, or every photo of a folder, and write the results (``inpaintbench inpaint``).

    Args:
        image: a photo, or a folder of photos.
        mask: the mask file, or a folder of masks named as the photos (``cat.jpg`` -> ``cat.png``); one mask file
            serves every photo of a folder.
        out: the result file (a folder for a folder of photos: ``<stem>.png`` each).
        model: a registered model name (None: the checkpoint's).
        checkpoint: weights of a trainable model.
        edges: EdgeConnect: the user's edge strokes (a file, or a folder named as the photos).
        sketch: DeepFill v2 with its sketch channel: the user's sketch (a file or a folder).
        resize: fixed-size models: paint resized.
        tile: fixed-size models: paint in tiles.
        device: where the model runs.

    Returns:
        The files written.

    Raises:
        InpaintbenchError: one line for bad input; nothing is written for a photo that fails, and the files
            already written stay.

    """
    image, mask, out = Path(image), Path(mask), Path(out)
    if image.is_dir():
        photos = _images_in(image)
        if not photos:
            raise InpaintbenchError(f"folder {image} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        if out.exists() and not out.is_dir():
            raise InpaintbenchError(f"--out {out} is a file: the results of a folder of photos go into a folder")
        targets = [out / f"{p.stem}.png" for p in photos]
    elif image.is_file():
        photos, targets = [image], [out]
    else:
        raise InpaintbenchError(f"{image} not found")
    guide_kind, guide_path = _guide_choice(edges, sketch)
    _check_targets(photos, targets, [mask, guide_path])
    net = load_model(model, checkpoint, device)
    if guide_path is not None and net.guidance != guide_kind:
        have = f"takes {_GUIDE_OPTION[net.guidance]}" if net.guidance else "takes no guide"
        raise InpaintbenchError(f"{_GUIDE_OPTION[guide_kind]} guides {_GUIDED_BY[guide_kind]}; "
                                f"{type(net).__name__} {have}")
    written = []
    # no bar for one photo; otherwise tqdm's own default, so that TQDM_DISABLE=1 still silences it
    quiet = {"disable": True} if len(photos) == 1 else {}
    for photo, target in tqdm(list(zip(photos, targets, strict=True)), desc="inpaint", unit="img", **quiet):
        result = inpaint(photo, _partner(mask, photo.stem, "mask"), net,
                         guide=_partner(guide_path, photo.stem, guide_kind or "guide"), resize=resize, tile=tile)
        written.append(write_image(result, target))
    return written


def _check_targets(photos: list[Path], targets: list[Path], others: list[Path | None]) -> None:
    """Refuse results that would overwrite an input, or one another (``a.jpg`` and ``a.png`` both give ``a.png``)."""
    stems = [p.stem for p in photos]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise InpaintbenchError(f"photos {', '.join(twice)} appear with two suffixes and would both be written to "
                                f"{twice[0]}.png: keep one of each")
    inputs = {p.resolve() for p in photos}
    for other in others:
        if other is not None:
            inputs |= {p.resolve() for p in (_images_in(other) if other.is_dir() else [other])}
    for target in targets:
        if target.resolve() in inputs:
            raise InpaintbenchError(f"--out {target} is one of the inputs: the result would overwrite it")


def _guide_choice(edges: str | Path | None, sketch: str | Path | None) -> tuple[str, Path | None]:
    if edges is not None and sketch is not None:
        raise InpaintbenchError("give --edges (EdgeConnect) or --sketch (DeepFill v2), not both")
    if edges is not None:
        return "edges", Path(edges)
    if sketch is not None:
        return "sketch", Path(sketch)
    return "", None
