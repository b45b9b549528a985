"""`inpaintbench serve`: the page's decisions without a browser (WebDemo), its server, and the real page.

The browser tests drive the page in headless Chromium (Debian's chromium + chromium-driver, through Selenium; gradio
and selenium come with the test extra): they skip, naming what is missing, on a machine without them, unless
INPAINTBENCH_REQUIRE_BROWSER=1 (set by .ci/run when the browser is installed), where anything missing is a failure.
"""

import math
import os
import socket
import struct
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
from PIL import Image

from inpaintbench import InpaintbenchError
from inpaintbench.apps.images import as_binary
from inpaintbench.apps.webdemo import (
    PREVIEW_SIDE,
    Limits,
    WebDemo,
    edge_view,
    hole_from_layers,
    preview_of,
    tint_hole,
)
from inpaintbench.cli import main

from .browser import browser_missing

# Gradio's queue calls pandas options deprecated in pandas 3 (twice a request): not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

BRUSH_RADIUS = 12  # the editor's brush (serve.build_page), in image pixels


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _save(array, path):
    Image.fromarray(array).save(path)
    return path


# --------------------------------------------------------------------------------------------------
# without a browser


def test_uploads_over_the_limits_are_refused_naming_file_and_limit(tmp_path, photo):
    limits = Limits(upload_mb=0.5, max_side=256)
    noise = np.random.default_rng(0).integers(0, 256, (500, 500, 3), dtype=np.uint8)  # ~750 kB as PNG
    with pytest.raises(InpaintbenchError, match=r"noise.png is 0\.\d MB: the upload limit is 0.5 MB"):
        limits.check_file(_save(noise, tmp_path / "noise.png"))
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(InpaintbenchError, match="notes.png is not an image file"):
        limits.check_file(tmp_path / "notes.png")
    # the size comes from the header: a 5000-pixel-wide strip is refused before its pixels are decoded
    with pytest.raises(InpaintbenchError, match="wide.png is 5000x8: the limit is 256 pixels a side"):
        limits.check_file(_save(np.zeros((8, 5000, 3), np.uint8), tmp_path / "wide.png"), "reference")
    # a header claiming 20000 x 20000 pixels (a decompression bomb): refused from the header alone
    header = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
    (tmp_path / "bomb.png").write_bytes(header + _chunk(b"IEND", b""))
    with pytest.raises(InpaintbenchError, match="bomb.png has more pixels than Pillow opens: the limit is 256"):
        limits.check_file(tmp_path / "bomb.png")
    demo = WebDemo(limits=Limits(max_side=400))
    read = demo.read_upload(_save(photo, tmp_path / "cat.png"))
    assert np.array_equal(read, photo)


def test_painted_layers_and_an_uploaded_mask_are_the_hole_at_the_photos_size(photo, hole):
    # a photo under the preview size is painted as it is
    assert preview_of(photo) is photo
    layer = np.zeros((*photo.shape[:2], 4), np.uint8)
    layer[hole] = (255, 51, 102, 153)
    assert np.array_equal(hole_from_layers([layer], photo.shape[:2]), hole)
    assert not hole_from_layers(None, photo.shape[:2]).any()
    stroke = np.zeros_like(layer)
    stroke[10:20, 10:40, 3] = 255
    both = hole_from_layers([stroke], photo.shape[:2], uploaded=hole)
    assert both.sum() == hole.sum() + 300 and both[hole].all()
    tinted = tint_hole(photo, hole)
    assert np.array_equal(tinted[~hole], photo[~hole]) and (tinted[hole] != photo[hole]).any()
    # a large photo is painted on a preview; the painted hole maps back by nearest neighbour
    big_shape = (3 * PREVIEW_SIDE // 4, 3 * PREVIEW_SIDE // 2)  # previewed at 2/3
    preview_shape = preview_of(np.zeros((*big_shape, 3), np.uint8)).shape[:2]
    assert max(preview_shape) == PREVIEW_SIDE
    painted = np.zeros((*preview_shape, 4), np.uint8)
    painted[100:200, 300:500, 3] = 153
    full = hole_from_layers([painted], big_shape)
    rows, cols = np.flatnonzero(full.any(axis=1)), np.flatnonzero(full.any(axis=0))
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (150, 300, 450, 750)  # scale 1.5, exactly
    assert full.sum() == 150 * 300


def test_the_edge_view_hides_the_holes_edges(photo, hole):
    plain, holed = edge_view(photo), edge_view(photo, hole)
    assert (plain[hole] == 0).any()  # the cat has edges under the hole...
    assert not (holed[hole] == 0).any()  # ...which EdgeConnect does not see: the view shows none there
    assert (holed[~hole] == 0).any()


def test_models_come_from_the_registry_and_the_store_by_key_only(edgeconnect_run):
    demo = WebDemo(store=edgeconnect_run.parent)
    keys = [o.key for o in demo.choices()]
    assert {"classical:mean-fill", "classical:biharmonic", "classical:telea", "classical:navier-stokes"} <= set(keys)
    assert f"store:{edgeconnect_run.name}" in keys
    assert not any(k.startswith("classical:") and "tiny" in k for k in keys)  # trainable models need weights
    entry = demo.choice(f"store:{edgeconnect_run.name}")
    assert entry.model == "edgeconnect-tiny" and entry.guidance == "edges" and entry.checkpoint == edgeconnect_run
    # nothing but a listed key opens a file
    for key in (str(edgeconnect_run), f"store:../{edgeconnect_run.parent.name}/{edgeconnect_run.name}",
                "classical:edgeconnect-tiny"):
        with pytest.raises(InpaintbenchError, match="is not in the model list"):
            demo.choice(key)
    with pytest.raises(InpaintbenchError, match="pick a model"):
        demo.choice(None)


def test_a_run_changes_only_the_hole_and_uses_the_users_edges(photo, hole, edgeconnect_run):
    demo = WebDemo(store=edgeconnect_run.parent, device="cpu")
    calls = []
    telea = demo.run(photo, hole, "classical:telea", progress=lambda f, desc="": calls.append(f))
    changed = np.any(telea.result != photo, axis=2)
    assert changed[hole].mean() > 0.9 and not changed[~hole].any()
    assert calls[-1] == 1.0 and "telea" in telea.message and f"{int(hole.sum()):,} hole pixels" in telea.message
    key = f"store:{edgeconnect_run.name}"
    strokes = np.zeros(hole.shape, bool)
    strokes[85, 100:210] = True
    plain = demo.run(photo, hole, key)
    guided = demo.run(photo, hole, key, strokes=strokes)
    differs = np.any(guided.result != plain.result, axis=2)
    assert differs.any() and not differs[~hole].any() and "with your edges" in guided.message
    # a stroke for a model without guidance is not passed to it (and not claimed)
    assert "with your edges" not in demo.run(photo, hole, "classical:telea", strokes=strokes).message
    with pytest.raises(InpaintbenchError, match="paint the hole first"):
        demo.run(photo, np.zeros_like(hole), "classical:telea")
    with pytest.raises(InpaintbenchError, match="pick a bundled photo"):
        demo.run(None, hole, "classical:telea")


def test_replace_needs_a_reference_and_edgeconnect(photo, hole, edgeconnect_run):
    demo = WebDemo(store=edgeconnect_run.parent, device="cpu")
    key = f"store:{edgeconnect_run.name}"
    with pytest.raises(InpaintbenchError, match="needs a reference image"):
        demo.run(photo, hole, key, task="replace")
    with pytest.raises(InpaintbenchError, match="mean-fill is not EdgeConnect"):
        demo.run(photo, hole, "classical:mean-fill", reference=photo, task="replace")
    out = demo.run(photo, hole, key, reference=demo.bundled_photo("coffee"), task="replace")
    assert out.edges.shape == hole.shape and out.edges.dtype == np.uint8
    assert not np.any(out.result != photo, axis=2)[~hole].any()
    assert out.message.startswith("object replacement by")


def test_serve_command_passes_its_options(monkeypatch):
    import inpaintbench as ib

    seen = {}
    monkeypatch.setattr(ib, "serve", lambda **kwargs: seen.update(kwargs), raising=False)
    assert main(["serve", "--port", "7999", "--max-upload-mb", "5", "--store", "somewhere"]) == 0
    assert seen == {"port": 7999, "host": "127.0.0.1", "store": "somewhere", "device": "auto", "max_upload_mb": 5.0,
                    "max_side": 4096}


def test_serve_refuses_to_widen_what_gradio_serves(monkeypatch, capsys):
    monkeypatch.setenv("GRADIO_ALLOWED_PATHS", "/")
    assert main(["serve"]) == 2
    assert "GRADIO_ALLOWED_PATHS is set" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# the server and the page


def _skip_unless_required(reason):
    """Skip with ``reason``; fail instead where INPAINTBENCH_REQUIRE_BROWSER=1 (.ci/run, with the browser there)."""
    if os.environ.get("INPAINTBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"INPAINTBENCH_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(edgeconnect_run, tmp_path_factory):
    """The page served in this process on a free local port (uploads over 1 MB refused), the store: one run."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        _skip_unless_required("gradio is not installed (pip install -e '.[test]' or '.[serve]')")
    from inpaintbench.apps.serve import serve

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        page = serve(port=_free_port(), store=edgeconnect_run.parent, device="cpu", max_upload_mb=1, block=False)
        try:
            yield page.local_url.rstrip("/")
        finally:
            page.close()


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_server_serves_no_file_beyond_its_uploads_and_results(server, edgeconnect_run):
    assert _status(server) == 200
    for path in (edgeconnect_run / "card.json", edgeconnect_run / "model.safetensors", "/etc/passwd",
                 "../../../../etc/passwd", __file__):
        assert _status(f"{server}/gradio_api/file={path}") == 403, path


@pytest.fixture(scope="module")
def page(server):
    """The page in headless Chromium; skipped (with the reason) where no browser can be driven."""
    reason = browser_missing()
    if reason:
        _skip_unless_required(reason)
    from .browser import Page

    browser = Page(server)
    try:
        yield browser
    finally:
        browser.close()


def _zoom(page):
    """The editor's zoom (screen pixels per image pixel), from its toolbar (e.g. '146%')."""
    texts = [e.text for e in page.find("#editor").find_elements("css selector", "*") if e.text.endswith("%")]
    return int(min(texts, key=len).rstrip("%")) / 100


def _check_stroke_run(page, photo, previous=None):
    """The hole is the capsule painted across the photo's middle and only its pixels changed; returns the src."""
    result, src = page.image("result", previous)
    mask, _ = page.image("mask")
    hole = mask[..., 0] > 127
    assert result.shape == photo.shape and hole.shape == photo.shape[:2]
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    height, width = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    length = 180 / _zoom(page)  # the stroke: 180 screen pixels, from -90 to +90 around the canvas's centre
    assert abs(height - 2 * BRUSH_RADIUS) <= 2 and abs(width - (length + 2 * BRUSH_RADIUS)) <= 6
    assert abs((rows[0] + rows[-1]) / 2 - photo.shape[0] / 2) <= 3 and abs((cols[0] + cols[-1]) / 2 -
                                                                          photo.shape[1] / 2) <= 3
    capsule = length * 2 * BRUSH_RADIUS + math.pi * BRUSH_RADIUS**2
    assert abs(hole.sum() - capsule) < 0.1 * capsule
    changed = np.any(result != photo, axis=2)
    assert not changed[~hole].any(), f"{changed[~hole].sum()} pixels changed outside the stroke"
    assert changed[hole].mean() > 0.5
    return src


@pytest.mark.slow
def test_paint_a_stroke_run_models_and_only_the_stroke_changes(page, photo, tmp_path, edgeconnect_run):
    """Upload a photo, paint one stroke, run a classical model, then the store's EdgeConnect."""
    page.upload("photo-upload", _save(photo, tmp_path / "cat.png"))
    assert "cat.png: 300x217" in page.wait_status("cat.png")
    page.paint_stroke()
    page.choose("model", "telea")
    page.click("run")
    assert "telea" in page.wait_status("inpainting by telea")
    src = _check_stroke_run(page, photo)
    page.choose("model", edgeconnect_run.name)
    page.wait(lambda: "edgeconnect-tiny" in page.find("#card").text, "the stored model's card")
    page.click("run")
    page.wait_status(f"inpainting by {edgeconnect_run.name}")
    _check_stroke_run(page, photo, previous=src)


@pytest.mark.slow
def test_bad_uploads_show_a_message_and_the_server_keeps_serving(page, photo, tmp_path):
    page.driver.get(page.url)  # a fresh session: the first bundled photo (chelsea)
    page.wait_status("chelsea")
    noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)  # ~1.5 MB as PNG
    page.upload("photo-upload", _save(noise, tmp_path / "noise.png"))
    message = page.wait_status("Refused")
    assert "noise.png is 1.5 MB: the upload limit is 1 MB" in message
    # the status line and the toast render apart: wait for the toast rather than read it at once
    page.wait(lambda: any("upload limit" in t for t in page.toasts()), "the upload-limit message")
    (tmp_path / "notes.png").write_text("a text file with an image's name")
    page.upload("photo-upload", tmp_path / "notes.png")
    assert "notes.png is not an image file" in page.wait_status("notes.png")
    (tmp_path / "notes.txt").write_text("a text file")
    page.upload("photo-upload", tmp_path / "notes.txt")  # refused by the page's file types, in the browser
    page.wait(lambda: any("Invalid file type: notes.txt" in t for t in page.toasts()), "the file type message")
    # the photo loaded before stays, and the page still paints
    page.dismiss_toasts()
    page.paint_stroke()
    page.choose("model", "telea")
    page.click("run")
    assert "on 451x300" in page.wait_status("inpainting by telea")
    import skimage.data

    _check_stroke_run(page, skimage.data.chelsea())


@pytest.mark.slow
def test_an_uploaded_mask_and_a_stroke_over_it_are_the_hole(page, tmp_path):
    import skimage.data

    chelsea = skimage.data.chelsea()
    page.driver.get(page.url)  # a fresh session: chelsea, 451 x 300
    page.wait_status("chelsea")
    box = np.zeros((150, 225), np.uint8)  # half the photo's size: scaled to the photo
    box[20:50, 60:120] = 255
    page.upload("mask-upload", _save(box, tmp_path / "mask.png"))
    page.wait_status("mask.png")
    page.paint_stroke()  # across the middle, below the box
    page.choose("model", "biharmonic")
    page.click("run")
    page.wait_status("inpainting by biharmonic")
    result, _ = page.image("result")
    used = page.image("mask")[0][..., 0] > 127
    with pytest.warns(UserWarning, match="resized to the image"):
        expected = as_binary(tmp_path / "mask.png", chelsea.shape[:2])
    assert abs(expected.sum() - 4 * 30 * 60) < 300
    assert used[expected].all() and used.sum() > expected.sum() + 1000  # the mask, plus the stroke
    changed = np.any(result != chelsea, axis=2)
    assert not changed[~used].any() and changed[used].mean() > 0.5
