"""CelebA from files in the official layout: a zip of 178x218 JPEGs and CRLF annotation lists."""

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import skimage.data
import webdataset as wds
from PIL import Image

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets import build_dataset, open_dataset
from tests.fakes.images import png_claiming

N = 12
SPLITS = ["0"] * 6 + ["1"] * 3 + ["2"] * 3  # images 1-6 train, 7-9 val, 10-12 test, as the real file orders them
ATTRS = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Smiling"]


def _face(i):
    photo = skimage.data.astronaut() if i % 2 else skimage.data.chelsea()
    return photo[10 * i:10 * i + 218, 5 * i:5 * i + 178]


def _jpeg(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _crlf(lines):
    return "".join(line + "\r\n" for line in lines)


@pytest.fixture
def celeba_source(tmp_path):
    src = tmp_path / "celeba"
    src.mkdir()
    names = [f"{i:06d}.jpg" for i in range(1, N + 1)]
    with zipfile.ZipFile(src / "img_align_celeba.zip", "w") as archive:
        archive.writestr("img_align_celeba/", "")
        for i, name in enumerate(names, start=1):
            archive.writestr(f"img_align_celeba/{name}", _jpeg(_face(i)))
    partition = [f"{n} {s}" for n, s in zip(names, SPLITS, strict=True)]
    (src / "list_eval_partition.txt").write_bytes(_crlf(partition).encode())
    attr_rows = [f"{n} " + " ".join(f"{(1 if (i + k) % 2 else -1):>2}" for k in range(len(ATTRS)))
                 for i, n in enumerate(names)]
    (src / "list_attr_celeba.txt").write_bytes(_crlf([str(N), " ".join(ATTRS) + " ", *attr_rows]).encode())
    marks = ["lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y", "leftmouth_x", "leftmouth_y",
             "rightmouth_x", "rightmouth_y"]
    mark_rows = [f"{n} 69  109  106  113   77  142   73  152  108  {150 + i}" for i, n in enumerate(names)]
    (src / "list_landmarks_align_celeba.txt").write_bytes(_crlf([str(N), " ".join(marks), *mark_rows]).encode())
    (src / "identity_CelebA.txt").write_bytes(_crlf([f"{n} {2880 + i % 3}" for i, n in enumerate(names)]).encode())
    return src


def test_build_from_the_official_zip(celeba_source, tmp_path):
    info = build_dataset("celeba", tmp_path / "out", source_dir=celeba_source, size=64)
    assert info["totals"] == {"train": 6, "val": 3, "test": 3}
    samples = list(wds.WebDataset(str(tmp_path / "out" / "val" / "val-000000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["celeba-000007", "celeba-000008", "celeba-000009"]
    meta = json.loads(samples[0]["json"])
    assert meta["split"] == "val" and meta["original_size"] == [178, 218] and meta["crop_box"] == [0, 20, 178, 198]
    assert meta["attributes"] == {"5_o_Clock_Shadow": -1, "Arched_Eyebrows": 1, "Smiling": -1}
    assert meta["landmarks"]["rightmouth_y"] == 156 and meta["identity"] == 2880
    with Image.open(io.BytesIO(samples[0]["jpg"])) as image:
        assert image.size == (64, 64)
    # the crop is the centred square, resized: compare with doing it by hand
    expected = np.asarray(Image.fromarray(np.asarray(Image.open(io.BytesIO(_jpeg(_face(7)))).convert("RGB"))[20:198])
                          .resize((64, 64), Image.Resampling.LANCZOS, reducing_gap=None)).astype(float)
    ds = open_dataset(tmp_path / "out", "val")
    got = ds.images[0].permute(1, 2, 0).numpy().astype(float)
    assert np.abs(got - expected).mean() < 3  # only the JPEG re-encoding differs
    assert "CelebA, aligned faces, 64x64" in (tmp_path / "out" / "README.md").read_text()


def test_extracted_folder_and_missing_image_is_a_rejected_row(celeba_source, tmp_path):
    folder = tmp_path / "extracted"
    folder.mkdir()
    with zipfile.ZipFile(celeba_source / "img_align_celeba.zip") as archive:
        for info in archive.infolist():
            if not info.is_dir() and not info.filename.endswith("000003.jpg"):
                (folder / info.filename.split("/")[-1]).write_bytes(archive.read(info))
    src = tmp_path / "src2"
    src.mkdir()
    (src / "img_align_celeba").symlink_to(folder)
    (src / "list_eval_partition.txt").write_bytes((celeba_source / "list_eval_partition.txt").read_bytes())
    (folder / "000004.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "000005.jpg").write_bytes(png_claiming(20_000, 20_000))  # Pillow's own DecompressionBombError
    info = build_dataset("celeba", tmp_path / "out", source_dir=src, size=32, image_format="png")
    assert info["totals"]["train"] == 3
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet").set_index("key")
    assert manifest.loc["celeba-000003", "reason"] == "listed in the partition but missing from the images"
    assert manifest.loc["celeba-000004", "reason"].startswith("unreadable image")
    assert manifest.loc["celeba-000005", "reason"].startswith("decompression bomb guard: Image size (400000000")


@pytest.mark.parametrize("damage, message", [
    ("no-partition", "list_eval_partition.txt not found"),
    ("truncated-zip", "not a valid zip archive"),
    ("bad-count", "the count line says 99 rows"),
])
def test_broken_sources_fail_with_one_line_and_write_nothing(celeba_source, tmp_path, damage, message):
    if damage == "no-partition":
        (celeba_source / "list_eval_partition.txt").unlink()
    elif damage == "truncated-zip":
        data = (celeba_source / "img_align_celeba.zip").read_bytes()
        (celeba_source / "img_align_celeba.zip").write_bytes(data[: len(data) // 2])
    else:
        data = (celeba_source / "list_attr_celeba.txt").read_bytes()
        (celeba_source / "list_attr_celeba.txt").write_bytes(data.replace(f"{N}\r\n".encode(), b"99\r\n", 1))
    with pytest.raises(InpaintbenchError, match=message) as err:
        build_dataset("celeba", tmp_path / "out", source_dir=celeba_source, size=32)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.tar"))


def test_unknown_option_is_refused(celeba_source, tmp_path):
    with pytest.raises(InpaintbenchError, match="takes no option crops"):
        build_dataset("celeba", tmp_path / "out", source_dir=celeba_source, crops=3)


def test_download_then_build_from_a_local_server(celeba_source, tmp_path, monkeypatch):
    """--download fetches every official file (md5-checked) before building; the server is local."""
    import hashlib
    import http.server
    import threading

    from inpaintbench.datasets import celeba

    files = {name: (celeba_source / name).read_bytes() for name in celeba.OFFICIAL_FILES}
    monkeypatch.setattr(celeba, "OFFICIAL_FILES", {n: (n, hashlib.md5(b).hexdigest()) for n, b in files.items()})
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(celeba_source), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(celeba, "official_url", lambda name: f"http://127.0.0.1:{server.server_port}/{name}")
    try:
        info = build_dataset("celeba", tmp_path / "out", source_dir=tmp_path / "fetched", size=32, download=True)
    finally:
        server.shutdown()
    assert info["totals"] == {"train": 6, "val": 3, "test": 3}
    assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == sorted(files)


def test_two_workers_read_the_zip_safely(celeba_source, tmp_path):
    build_dataset("celeba", tmp_path / "one", source_dir=celeba_source, size=32, workers=1)
    build_dataset("celeba", tmp_path / "two", source_dir=celeba_source, size=32, workers=2)
    for split in ("train", "val", "test"):
        one = (tmp_path / "one" / split / f"{split}-000000.tar").read_bytes()
        assert one == (tmp_path / "two" / split / f"{split}-000000.tar").read_bytes()


def test_a_grayscale_jpeg_is_stored_as_rgb(celeba_source, tmp_path):
    # the aligned faces are RGB; a grayscale file must still come out as 3 equal channels, not fail or stay L
    gray = np.asarray(Image.fromarray(_face(1)).convert("L"))
    with zipfile.ZipFile(celeba_source / "img_align_celeba.zip", "a") as archive:
        buf = io.BytesIO()
        Image.fromarray(gray).save(buf, format="JPEG", quality=95)
        archive.writestr("img_align_celeba/000013.jpg", buf.getvalue())
    with open(celeba_source / "list_eval_partition.txt", "ab") as f:
        f.write(b"000013.jpg 2\r\n")
    build_dataset("celeba", tmp_path / "out", source_dir=celeba_source, size=64)
    samples = list(wds.WebDataset(str(tmp_path / "out" / "test" / "test-000000.tar"), shardshuffle=False))
    with Image.open(io.BytesIO(samples[-1]["jpg"])) as image:
        assert samples[-1]["__key__"] == "celeba-000013" and image.mode == "RGB" and image.size == (64, 64)
        pixels = np.asarray(image).astype(int)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 2 and np.abs(pixels[..., 1] - pixels[..., 2]).max() <= 2
