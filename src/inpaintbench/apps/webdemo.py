"""What the web page (``inpaintbench serve``) does, without the page: photos within limits, models, one run.

The page (:mod:`.serve`) only moves pictures between the browser and :class:`WebDemo`; this module holds every
decision, so that it is tested without a browser:

* **photos** come from scikit-image's bundled photos or from uploads; an upload is refused with a one-line
  :class:`~inpaintbench.InpaintbenchError` when its file is larger than the upload limit, when its header gives
  more pixels a side than the image limit (checked before any pixel is decoded, so a decompression bomb never
  is), or when Pillow cannot read it. The photo stays on the server at full size, exactly as read
  (:func:`~.images.as_rgb`): the browser's canvas never touches the pixels the model sees, so the known pixels
  of the result are the uploaded file's;
* **painting** happens on a preview (the photo scaled to at most :data:`PREVIEW_SIDE` pixels a side, the photo
  itself when smaller): every painted pixel of the editor's layers (alpha > 0) is hole, mapped back to the
  photo's size by nearest neighbour; an uploaded mask is kept on the server (shown tinted in the editor) and the
  strokes painted over it add to it;
* **models** are the classical ones (no weights) and every entry of the checkpoint store
  (:func:`~inpaintbench.models.store.list_checkpoints`), chosen by key, never by path: a key that is not in the
  list is an error, so the browser cannot make the server open any other file;
* **a run** is :func:`~.inpaint.inpaint` (with the user's edges for EdgeConnect) or
  :func:`~.replace.replace_object` (with a reference image) on the loaded model: the page adds no model logic.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .._registry import InpaintbenchError
from ..models.base import MODELS, InpaintModel
from .images import as_binary, as_rgb
from .inpaint import inpaint, load_model
from .replace import replace_object

__all__ = ["BUNDLED_PHOTOS", "PREVIEW_SIDE", "Limits", "ModelChoice", "RunResult", "WebDemo", "edge_view",
           "hole_from_layers", "preview_of", "tint_hole"]

# scikit-image's photos that ship inside the package (no download), as elsewhere in the project
BUNDLED_PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "immunohistochemistry")
PREVIEW_SIDE = 2048  # the editor paints on the photo scaled to at most this many pixels a side
HOLE_RGBA = (255, 51, 102, 153)  # the editor's brush: translucent pink
EDGE_SIGMA = 2.0  # EdgeConnect's Canny sigma, for the edge view
CACHED_MODELS = 2  # loaded models kept in memory (switching back and forth costs no reload)


@dataclass(frozen=True)
class Limits:
    """What an upload may be.

    Attributes:
        upload_mb: the largest file, in megabytes (10^6 bytes).
        max_side: the most pixels an image may have on its longer side.

    """

    upload_mb: float = 20.0
    max_side: int = 4096

    def check_file(self, path: str | Path, what: str = "photo") -> None:
        """Refuse a file over the upload limit, one Pillow cannot read, or an image over the size limit.

        Raises:
            InpaintbenchError: naming the file, its size and the limit (and the option that raises it).

        """
        path = Path(path)
        name = path.name
        size = path.stat().st_size
        if size > self.upload_mb * 1e6:
            raise InpaintbenchError(f"the {what} {name} is {size / 1e6:.1f} MB: the upload limit is "
                                    f"{self.upload_mb:g} MB (inpaintbench serve --max-upload-mb)")
        too_large = f"the limit is {self.max_side} pixels a side (inpaintbench serve --max-side)"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below in any case
                with Image.open(path) as img:  # reads the header only: no pixel is decoded here
                    width, height = img.size
        except Image.DecompressionBombError:
            raise InpaintbenchError(f"the {what} {name} has more pixels than Pillow opens: {too_large}") from None
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise InpaintbenchError(f"the {what} {name} is not an image file (PNG, JPEG, WebP, TIFF, BMP... that "
                                    "Pillow can read)") from None
        if max(width, height) > self.max_side:
            raise InpaintbenchError(f"the {what} {name} is {width}x{height}: {too_large}")


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the page's model list.

    Attributes:
        key: what the page sends back (``classical:<model>`` or ``store:<entry name>``).
        label: what the list shows.
        model: the registered model name.
        checkpoint: the store entry's folder, or None for a classical model.
        card: the entry's card (for a classical model: its registry description).

    """

    key: str
    label: str
    model: str
    checkpoint: Path | None = None
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def guidance(self) -> str:
        """What the edge view's strokes can be to this model's family: ``edges`` (EdgeConnect), ``sketch`` or empty.

        A family's (a DeepFill v2 without its sketch channel takes none: the loaded model's ``guidance`` says).
        """
        return MODELS.get(self.model).model_cls.guidance


@dataclass(frozen=True)
class RunResult:
    """What one run gives back.

    Attributes:
        result: H x W x 3 uint8, the photo with the hole painted (every known pixel the photo's).
        hole: H x W bool, the hole the model painted.
        edges: H x W uint8 (255 on an edge): object replacement's composite edge map, else None.
        message: one line for the page (model, photo size, hole size, time).

    """

    result: np.ndarray
    hole: np.ndarray
    edges: np.ndarray | None
    message: str


# --------------------------------------------------------------------------------------------------
# pictures between the photo and the editor


def preview_of(rgb: np.ndarray) -> np.ndarray:
    """The picture the editor shows: the photo, scaled down to :data:`PREVIEW_SIDE` a side when larger."""
    h, w = rgb.shape[:2]
    scale = PREVIEW_SIDE / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))


def hole_from_layers(layers: list[np.ndarray] | None, shape: tuple[int, int],
                     uploaded: np.ndarray | None = None) -> np.ndarray:
    """The hole: what is painted in the editor's layers (alpha > 0), with an uploaded mask, at ``shape``.

    Args:
        layers: the editor's layers (H x W x 4 at the preview's size), or None.
        shape: the size wanted, (height, width): the photo's, or the preview's.
        uploaded: an uploaded mask (bool, at any size of the photo's aspect ratio), or None.

    Returns:
        H x W bool (all False when nothing is painted or uploaded).

    """
    hole = np.zeros(shape, bool)
    for layer in layers or []:
        layer = np.asarray(layer)
        alpha = layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[2] == 4 else layer.reshape(layer.shape[:2]) > 0
        hole |= _resize_nearest(alpha, shape)
    if uploaded is not None:
        hole |= _resize_nearest(uploaded, shape)
    return hole


def _resize_nearest(on: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool map resized to ``shape`` by nearest neighbour (each pixel takes the pixel it falls in)."""
    if on.shape == tuple(shape):
        return on
    rows = np.minimum((np.arange(shape[0]) + 0.5) * on.shape[0] / shape[0], on.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * on.shape[1] / shape[1], on.shape[1] - 1).astype(int)
    return on[rows][:, cols]


def tint_hole(preview: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The preview with ``hole`` (any size of its aspect ratio) tinted as the brush paints (an uploaded mask).

    Gradio's editor does not draw layers given to it by the server (and drops them at the next stroke), so an
    uploaded mask is shown in the editor's background and kept on the server; strokes painted over it add to it.
    """
    on = _resize_nearest(hole, preview.shape[:2])
    alpha = HOLE_RGBA[3] / 255
    shown = preview.copy()
    shown[on] = np.round((1 - alpha) * preview[on] + alpha * np.array(HOLE_RGBA[:3])).astype(np.uint8)
    return shown


def edge_view(preview: np.ndarray, hole: np.ndarray | None = None, sigma: float = EDGE_SIGMA) -> np.ndarray:
    """The photo's Canny edges as EdgeConnect sees them (known pixels only), black on white, the hole tinted.

    Args:
        preview: the editor's picture (h x w x 3 uint8).
        hole: the hole at the preview's size (or None): its edges are not shown (EdgeConnect does not see them)
            and it is tinted, so that the user sees where to draw.
        sigma: Canny's sigma (EdgeConnect's).

    Returns:
        h x w x 3 uint8.

    """
    import torch

    from ..models.edges import canny_edges

    x = torch.from_numpy(preview.astype(np.float32) / 255).permute(2, 0, 1)[None]
    known = None if hole is None else torch.from_numpy((~hole).astype(np.float32))[None, None]
    edges = canny_edges(x, sigma, where=known)[0, 0].numpy() > 0.5
    view = np.full(preview.shape, 255, np.uint8)
    if hole is not None:
        view[hole] = (255, 220, 228)
    view[edges] = 0
    return view


# --------------------------------------------------------------------------------------------------
# the demo


class WebDemo:
    """The page's state that outlives a request: the store, the device, the limits and the loaded models.

    Args:
        store: the checkpoint store folder (default ``models/checkpoints``).
        device: where models run (``auto``: CUDA when available).
        limits: what uploads may be.

    """

    def __init__(self, store: str | Path | None = None, device: str = "auto", limits: Limits | None = None):
        from ..models.store import DEFAULT_STORE

        self.store = Path(store) if store is not None else DEFAULT_STORE
        self.device = device
        self.limits = limits or Limits()
        self._models: dict[str, InpaintModel] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ photos

    def read_upload(self, path: str | Path, what: str = "photo") -> np.ndarray:
        """An uploaded photo as H x W x 3 uint8, after the limits (:meth:`Limits.check_file`).

        Raises:
            InpaintbenchError: one line naming the file and the limit it breaks.

        """
        self.limits.check_file(path, what)
        rgb = as_rgb(path, what)
        return rgb if rgb.dtype == np.uint8 else np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)

    @staticmethod
    def bundled_photo(name: str) -> np.ndarray:
        """One of scikit-image's bundled photos (:data:`BUNDLED_PHOTOS`), H x W x 3 uint8.

        Raises:
            InpaintbenchError: for a name not in the list.

        """
        import skimage.data

        if name not in BUNDLED_PHOTOS:
            raise InpaintbenchError(f"no bundled photo {name!r} (there are {', '.join(BUNDLED_PHOTOS)})")
        return np.ascontiguousarray(getattr(skimage.data, name)())

    def read_mask(self, path: str | Path, shape: tuple[int, int]) -> np.ndarray:
        """An uploaded mask (white = hole) at the photo's ``shape``, after the limits.

        Raises:
            InpaintbenchError: over a limit, unreadable, or of another aspect ratio than the photo.

        """
        self.limits.check_file(path, "mask")
        with warnings.catch_warnings():  # a mask of the photo's aspect ratio is resized: expected here
            warnings.simplefilter("ignore")
            return as_binary(path, shape)

    # ------------------------------------------------------------------ models

    def choices(self) -> list[ModelChoice]:
        """The classical models, then every entry of the store (read now: new entries appear)."""
        from ..models.store import list_checkpoints

        options = []
        for name in MODELS.names("*"):
            entry = MODELS.get(name)
            if not entry.model_cls.trainable:
                card = {"model": name, "source": "classical (no weights)", "paper": entry.paper,
                        "description": entry.description}
                options.append(ModelChoice(f"classical:{name}", f"{name} (classical, no weights)", name, None, card))
        for card in list_checkpoints(self.store):
            if card["model"] not in MODELS:
                continue  # an entry of a model this version does not have
            label = f"{card['name']} ({card['model']}, {card.get('source', 'stored')})"
            options.append(ModelChoice(f"store:{card['name']}", label, card["model"], Path(card["path"]), card))
        return options

    def choice(self, key: str | None) -> ModelChoice:
        """The model list's entry ``key``.

        Raises:
            InpaintbenchError: for no key or a key not in the list (e.g. an entry removed since the page loaded).

        """
        if not key:
            raise InpaintbenchError("pick a model")
        for option in self.choices():
            if option.key == key:
                return option
        raise InpaintbenchError(f"{key} is not in the model list (removed from the store?): refresh the list")

    def model(self, option: ModelChoice) -> InpaintModel:
        """The loaded model of ``option`` (kept for the next run; the :data:`CACHED_MODELS` last ones are kept)."""
        with self._lock:
            net = self._models.pop(option.key, None)
            if net is None:
                net = load_model(option.model, option.checkpoint, self.device)
            self._models[option.key] = net  # most recent last
            while len(self._models) > CACHED_MODELS:
                self._models.pop(next(iter(self._models)))
            return net

    # ------------------------------------------------------------------ a run

    def run(self, photo: np.ndarray, hole: np.ndarray, key: str, strokes: np.ndarray | None = None,
            reference: np.ndarray | None = None, task: str = "inpaint", fit: str = "resize",
            progress: Any = None) -> RunResult:
        """Paint the hole of ``photo`` with the model ``key``.

        Args:
            photo: H x W x 3 uint8.
            hole: H x W bool.
            key: a :meth:`choices` key.
            strokes: H x W bool, the edge view's strokes: EdgeConnect's edges (or a sketch model's sketch) when
                inpainting, the sketch that places the object when replacing; None or empty for none.
            reference: H x W x 3 uint8, the object to put in (task ``replace``).
            task: ``inpaint`` (:func:`~.inpaint.inpaint`) or ``replace`` (:func:`~.replace.replace_object`).
            fit: fixed-size models (the MLP, the CNN): ``resize`` or ``tile``.
            progress: a callable ``progress(fraction, desc=...)`` (the page's progress bar), or None.

        Returns:
            The :class:`RunResult`.

        Raises:
            InpaintbenchError: one line: no photo, no hole, an unknown model, replace without a reference or with
                a model that is not EdgeConnect, or whatever :func:`~.inpaint.inpaint` refuses.

        """
        if photo is None:
            raise InpaintbenchError("pick a bundled photo or upload one first")
        if hole is None or not hole.any():
            raise InpaintbenchError("paint the hole first (brush), or upload a mask")
        if task not in ("inpaint", "replace"):
            raise InpaintbenchError(f"unknown task {task!r} (inpaint or replace)")
        option = self.choice(key)
        if task == "replace" and reference is None:
            raise InpaintbenchError("object replacement needs a reference image: upload one or pick a bundled "
                                    "photo under 'reference'")
        report = progress or (lambda *args, **kwargs: None)
        report(0.05, desc=f"loading {option.model}")
        net = self.model(option)
        strokes = strokes if strokes is not None and strokes.any() else None
        started = time.perf_counter()
        report(0.3, desc=f"painting with {option.model}")
        edges = None
        if task == "replace":
            if net.guidance != "edges":
                raise InpaintbenchError(f"object replacement paints with EdgeConnect; {option.model} is not "
                                        "EdgeConnect: pick an EdgeConnect checkpoint")
            replaced = replace_object(photo, hole, reference, sketch=strokes, model=net)
            result, edges = replaced.result, replaced.edges
        else:
            guide = strokes if net.guidance else None
            result = inpaint(photo, hole, net, guide=guide, resize=fit == "resize", tile=fit == "tile")
        seconds = time.perf_counter() - started
        report(1.0, desc="done")
        h, w = hole.shape
        what = "object replacement" if task == "replace" else "inpainting"
        guided = " with your edges" if strokes is not None and (net.guidance or task == "replace") else ""
        message = (f"{what}{guided} by {option.label} on {w}x{h}: {int(hole.sum()):,} hole pixels "
                   f"({hole.mean():.1%}), {seconds:.2f} s")
        return RunResult(result, hole, edges, message)
