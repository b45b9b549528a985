"""``inpaintbench serve``: a local web page to paint a hole on a photo, pick a model and compare (Gradio).

The page (:func:`build_page`) is a Gradio ``Blocks``: a bundled photo or an upload, Gradio's image editor to paint
the hole (brush and eraser with their sizes, undo and redo, zoom and pan), a mask upload instead of painting, the
model list (the classical models and every checkpoint-store entry, with its card), for EdgeConnect an edge view to
draw edges in, for object replacement a reference image, and the result beside the photo on a before/after slider,
with the mask and the result to download. Every decision (limits, models, the run itself) is in
:class:`~.webdemo.WebDemo`, which calls :func:`~.inpaint.inpaint` and :func:`~.replace.replace_object`.

Safety (:func:`serve`): the page listens on 127.0.0.1 unless told otherwise (another host gets a warning); uploads
over the limits are refused with a message and the photo already loaded stays; models are picked from a list by
key, never by path; Gradio serves only its own cache (the uploads and the pictures the page shows), the page's
static files and no ``allowed_paths``: nothing else of the file system, the store included, is reachable from
the browser (``GRADIO_ALLOWED_PATHS``, which would widen that, is refused).
"""

from __future__ import annotations

import os
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._registry import InpaintbenchError
from .webdemo import (
    BUNDLED_PHOTOS,
    HOLE_RGBA,
    Limits,
    WebDemo,
    edge_view,
    hole_from_layers,
    preview_of,
    tint_hole,
)

__all__ = ["build_page", "serve"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
TRANSPORT_MB = 64  # Gradio's own cap on one request's file: the editor sends its preview layers (<= 2048^2 RGBA)
TASKS = [("inpaint: fill the hole", "inpaint"), ("replace object: put the reference's object in the hole", "replace")]
INTRO = """\
## inpaintbench: paint a hole, pick a model, compare
Pick a bundled photo or upload one, paint over what should go (brush; eraser, undo and redo, zoom in the editor's
toolbar), or upload a mask (white = hole). Pick a model: the classical ones need no weights, the others come from
the checkpoint store (`inpaintbench weights list`). Known pixels come back exactly as uploaded.
"""


def _gradio() -> Any:
    try:
        import gradio
    except ImportError:
        raise InpaintbenchError("the web page needs Gradio: pip install -e '.[serve]' (or pip install gradio)"
                                ) from None
    return gradio


def _card_markdown(demo: WebDemo, key: str | None) -> str:
    """The chosen model's card, as a few markdown lines (the whole card is under 'the full card')."""
    try:
        option = demo.choice(key)
    except InpaintbenchError as err:
        return f"*{err}*"
    card = option.card
    if option.checkpoint is None:
        paper = card.get("paper", "").strip(" -")
        return f"**{option.model}**: {card.get('description', '')}" + (f"  \npaper: {paper}" if paper else "")
    rows = [f"**{option.key.split(':', 1)[1]}**: `{option.model}`, {card.get('source', 'stored')}, "
            f"{card.get('parameters', 0):,} parameters"]
    train = card.get("train") or {}
    if train:
        masks = ",".join(train.get("masks") or [])
        rows.append(f"trained {train.get('steps', '?')} steps, batch {train.get('batch_size', '?')}, masks {masks}"
                    + (f", data {card['data']}" if card.get("data") else ""))
    for name in ("layout", "file", "license"):
        if card.get(name):
            rows.append(f"{name}: {card[name]}")
    rows.append(f"sha256 `{str(card.get('sha256', ''))[:16]}`")
    if option.guidance:
        rows.append(f"takes {option.guidance}: draw them in the edge view below the editor")
    return "  \n".join(rows)


def _card(demo: WebDemo, key: str | None) -> dict:
    """The chosen model's whole card (without the server's path to it)."""
    try:
        return {k: v for k, v in demo.choice(key).card.items() if k != "path"}
    except InpaintbenchError:
        return {}


def build_page(demo: WebDemo) -> Any:
    """The page: a Gradio ``Blocks`` wired to ``demo``.

    Args:
        demo: the :class:`~.webdemo.WebDemo` holding the store, the device, the limits and the loaded models.

    Returns:
        The ``gradio.Blocks`` (not launched).

    Raises:
        InpaintbenchError: when Gradio is not installed.

    """
    gr = _gradio()

    def refuse(err: Exception | str) -> str:
        gr.Warning(str(err), title="Refused")
        return f"**Refused:** {err}"

    def editor_value(background: np.ndarray) -> dict[str, Any]:
        return {"background": background, "layers": [], "composite": None}

    def show_photo(rgb: np.ndarray, name: str) -> tuple:
        preview = preview_of(rgb)
        note = "" if preview is rgb else f" (painted on a {preview.shape[1]}x{preview.shape[0]} preview)"
        return ({"rgb": rgb, "name": name, "mask": None}, editor_value(preview), editor_value(edge_view(preview)),
                f"{name}: {rgb.shape[1]}x{rgb.shape[0]}{note}")

    def pick_bundled(name: str | None) -> tuple:
        if not name:
            return (gr.skip(),) * 4
        return show_photo(demo.bundled_photo(name), name)

    def upload_photo(path: str | None) -> tuple:
        if not path:
            return (gr.skip(),) * 5
        try:
            rgb = demo.read_upload(path)
        except InpaintbenchError as err:
            return *(gr.skip(),) * 4, refuse(err)
        return None, *show_photo(rgb, Path(path).name)  # the bundled choice is cleared

    def upload_mask(path: str | None, photo: dict | None) -> tuple:
        if not path:
            return (gr.skip(),) * 3
        if photo is None:
            return gr.skip(), gr.skip(), refuse(InpaintbenchError("pick or upload the photo before its mask"))
        try:
            hole = demo.read_mask(path, photo["rgb"].shape[:2])
        except InpaintbenchError as err:
            return gr.skip(), gr.skip(), refuse(err)
        return ({**photo, "mask": hole}, editor_value(tint_hole(preview_of(photo["rgb"]), hole)),
                f"mask {Path(path).name}: {int(hole.sum()):,} hole pixels ({hole.mean():.1%}); strokes painted over "
                "it add to it")

    def clear_mask(photo: dict | None) -> tuple:
        if photo is None:
            return (gr.skip(),) * 3
        return {**photo, "mask": None}, editor_value(preview_of(photo["rgb"])), "the hole is cleared"

    def show_edges(photo: dict | None, editor: dict | None) -> tuple:
        if photo is None:
            return gr.skip(), refuse(InpaintbenchError("pick or upload a photo first"))
        preview = preview_of(photo["rgb"])
        hole = hole_from_layers((editor or {}).get("layers"), preview.shape[:2], photo["mask"])
        return (editor_value(edge_view(preview, hole if hole.any() else None)),
                "edge view: the photo's edges outside the hole (tinted); draw the edges you want inside it")

    def pick_reference(name: str | None) -> tuple:
        if not name:
            return gr.skip(), gr.skip(), gr.skip()
        rgb = demo.bundled_photo(name)
        return rgb, rgb, f"reference: {name} ({rgb.shape[1]}x{rgb.shape[0]})"

    def upload_reference(path: str | None) -> tuple:
        if not path:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            rgb = demo.read_upload(path, "reference")
        except InpaintbenchError as err:
            return gr.skip(), gr.skip(), refuse(err)
        return rgb, rgb, f"reference: {Path(path).name} ({rgb.shape[1]}x{rgb.shape[0]})"

    def refresh_models(key: str | None) -> tuple:
        options = demo.choices()
        keys = [o.key for o in options]
        key = key if key in keys else (keys[0] if keys else None)
        return (gr.update(choices=[(o.label, o.key) for o in options], value=key), _card_markdown(demo, key),
                _card(demo, key))

    tracker = gr.Progress()  # Gradio finds a progress bar by the default value of the handler's argument

    def run(photo: dict | None, editor: dict | None, edges: dict | None, reference: np.ndarray | None,
            key: str | None, task: str, tiles: bool, progress: Any = tracker) -> tuple:
        skip = (gr.skip(),) * 4
        try:
            if photo is None:
                raise InpaintbenchError("pick a bundled photo or upload one first")
            rgb = photo["rgb"]
            hole = hole_from_layers((editor or {}).get("layers"), rgb.shape[:2], photo["mask"])
            strokes = hole_from_layers((edges or {}).get("layers"), rgb.shape[:2])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. a sketch far from the hole: the result says enough
                out = demo.run(rgb, hole, key, strokes=strokes, reference=reference, task=task,
                               fit="tile" if tiles else "resize", progress=progress)
        except InpaintbenchError as err:
            return (*skip, refuse(err))
        except Exception as err:  # a failure of the model itself: say so on the page, keep serving
            traceback.print_exc()
            return (*skip, refuse(f"the run failed: {type(err).__name__}: {err}"))
        mask = out.hole.astype(np.uint8) * 255
        return (rgb, out.result), out.result, mask, out.edges, out.message

    options = demo.choices()
    first = options[0].key if options else None
    brush = gr.Brush(default_size=12, colors=[(_hex(HOLE_RGBA), HOLE_RGBA[3] / 255)], color_mode="fixed")
    editor_options = {"type": "numpy", "format": "png", "image_mode": "RGBA", "sources": (), "transforms": (),
                      "layers": False, "height": 560, "eraser": gr.Eraser(default_size=12)}
    with gr.Blocks(title="inpaintbench", analytics_enabled=False, delete_cache=(600, 3600)) as page:
        photo = gr.State(None)
        reference = gr.State(None)
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    bundled = gr.Dropdown(list(BUNDLED_PHOTOS), value=BUNDLED_PHOTOS[0], label="a bundled photo "
                                          "(scikit-image)", elem_id="bundled")
                    upload = gr.File(label=f"or upload a photo (at most {demo.limits.upload_mb:g} MB and "
                                     f"{demo.limits.max_side} px a side)", file_types=["image"], height=140,
                                     elem_id="photo-upload")
                editor = gr.ImageEditor(label="paint the hole", brush=brush, elem_id="editor", **editor_options)
                with gr.Row():
                    mask_upload = gr.File(label="or upload a mask (white = hole; same aspect ratio as the photo)",
                                          file_types=["image"], height=100, elem_id="mask-upload", scale=4)
                    clear_button = gr.Button("clear the hole", elem_id="clear-mask", scale=1)
                with gr.Accordion("EdgeConnect's edges and object replacement", open=False,
                                  elem_id="edge-accordion"):
                    edges_button = gr.Button("show the photo's edges around the hole", elem_id="edges-button")
                    edge_editor = gr.ImageEditor(label="edge view: draw edges (EdgeConnect) or the object's outline "
                                                 "(replace)", elem_id="edge-editor",
                                                 brush=gr.Brush(default_size=2, colors=["#1f6feb"],
                                                                color_mode="fixed"), **editor_options)
                    with gr.Row():
                        reference_pick = gr.Dropdown(list(BUNDLED_PHOTOS), value=None, label="reference: a bundled "
                                                     "photo", elem_id="reference-bundled")
                        reference_upload = gr.File(label="or upload the reference", file_types=["image"], height=100,
                                                   elem_id="reference-upload")
                        reference_view = gr.Image(label="reference", interactive=False, height=160, format="png")
            with gr.Column(scale=2):
                model = gr.Dropdown([(o.label, o.key) for o in options], value=first, label="model",
                                    elem_id="model")
                refresh = gr.Button("refresh the list (new checkpoints in the store)", size="sm")
                card = gr.Markdown(_card_markdown(demo, first), elem_id="card")
                with gr.Accordion("the full card", open=False):
                    full_card = gr.JSON(_card(demo, first))
                task = gr.Radio(TASKS, value="inpaint", label="task", elem_id="task")
                tiles = gr.Checkbox(False, label="models of one size (mlp, cnn): paint in tiles of that size "
                                    "(else the photo is resized to it)")
                run_button = gr.Button("Run", variant="primary", elem_id="run")
                status = gr.Markdown("", elem_id="status")
                compare = gr.ImageSlider(label="before / after (drag the handle)", format="png", type="numpy",
                                         elem_id="compare", max_height=520)
        with gr.Row():
            result = gr.Image(label="result (PNG)", format="png", interactive=False, buttons=["download"],
                              elem_id="result", height=320)
            mask_view = gr.Image(label="the hole painted (white = hole: reuse with inpaintbench inpaint --mask)",
                                 format="png", interactive=False, buttons=["download"], elem_id="mask", height=320)
            edges_view = gr.Image(label="the edges painted from (object replacement)", format="png",
                                  interactive=False, buttons=["download"], elem_id="edges", height=320)

        photo_outputs = [photo, editor, edge_editor, status]
        page.load(pick_bundled, bundled, photo_outputs)
        bundled.input(pick_bundled, bundled, photo_outputs)
        upload.upload(upload_photo, upload, [bundled, *photo_outputs]).then(lambda: None, None, upload)
        mask_upload.upload(upload_mask, [mask_upload, photo], [photo, editor, status]).then(lambda: None, None,
                                                                                                  mask_upload)
        clear_button.click(clear_mask, photo, [photo, editor, status])
        edges_button.click(show_edges, [photo, editor], [edge_editor, status])
        reference_pick.input(pick_reference, reference_pick, [reference, reference_view, status])
        reference_upload.upload(upload_reference, reference_upload, [reference, reference_view, status]).then(
            lambda: None, None, reference_upload)
        model.change(lambda key: (_card_markdown(demo, key), _card(demo, key)), model, [card, full_card])
        refresh.click(refresh_models, model, [model, card, full_card])
        run_button.click(run, [photo, editor, edge_editor, reference, model, task, tiles],
                         [compare, result, mask_view, edges_view, status], concurrency_limit=1)
    return page


def _hex(rgba: tuple[int, int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def serve(port: int = 7860, host: str = "127.0.0.1", store: str | Path | None = None, device: str = "auto",
          max_upload_mb: float = 20.0, max_side: int = 4096, block: bool = True) -> Any:
    """Start the web page (``inpaintbench serve``) on ``host:port``.

    Args:
        port: the TCP port.
        host: the interface to listen on: 127.0.0.1 (this machine only) unless you mean to share it; any other
            host gets a warning, since whoever reaches the page can run models on this machine.
        store: the checkpoint store whose entries the page offers (default ``models/checkpoints``).
        device: where models run (``auto``: CUDA when available).
        max_upload_mb: the largest photo, mask or reference file accepted, in MB.
        max_side: the most pixels a side of an uploaded image.
        block: wait until interrupted (Ctrl+C); False returns at once with the server running (call
            ``close()`` on the returned page to stop it).

    Returns:
        The launched ``gradio.Blocks`` (its ``local_url`` is the page's address).

    Raises:
        InpaintbenchError: Gradio missing, ``GRADIO_ALLOWED_PATHS`` set, or limits that are not positive.

    Example:
        >>> import inpaintbench as ib
        >>> ib.serve()  # doctest: +SKIP
        * Running on local URL:  http://127.0.0.1:7860

    """
    if os.environ.get("GRADIO_ALLOWED_PATHS"):
        raise InpaintbenchError("GRADIO_ALLOWED_PATHS is set: the page serves no files beyond its uploads and "
                                "results; unset it")
    if max_upload_mb <= 0 or max_side <= 0:
        raise InpaintbenchError("--max-upload-mb and --max-side must be positive")
    _gradio()
    if host not in LOCAL_HOSTS:
        warnings.warn(f"serving on {host}: other machines can reach the page and run models on this one",
                      stacklevel=2)
    demo = WebDemo(store, device, Limits(upload_mb=max_upload_mb, max_side=max_side))
    page = build_page(demo)
    page.queue(default_concurrency_limit=1)
    page.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=not block,
                max_file_size=f"{max(TRANSPORT_MB, int(np.ceil(max_upload_mb)))}mb", ssr_mode=False,
                footer_links=["gradio", "settings"], enable_monitoring=False, mcp_server=False, pwa=False,
                show_error=False, quiet=not block)
    return page
