"""LPIPS, FID and KID through the real libraries, with randomly initialised networks in the real format."""

import http.server
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from inpaintbench import _weights as weights
from inpaintbench._registry import InpaintbenchError
from inpaintbench.benchmarks.metrics import WEIGHTS, WeightsUnavailable
from inpaintbench.benchmarks.metrics.distribution import fid_kid
from inpaintbench.benchmarks.metrics.perceptual import LPIPS
from inpaintbench.masks import draw_masks

pytestmark = pytest.mark.slow


def _photos(n=8, size=48):
    """Crops of scikit-image's photos and composites with blurred holes, as uint8 N x 3 x H x W."""
    from scipy.ndimage import gaussian_filter

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    real, fake = [], []
    for i in range(n):
        photo = photos[i % len(photos)]
        y, x = 20 * i, 15 * i
        crop = photo[y:y + size, x:x + size]
        mask = draw_masks("L3", 1, size=size, seed=i)[0, 0].astype(bool)[..., None]
        blurred = gaussian_filter(crop.astype(float), (3, 3, 0)).round().astype(np.uint8)
        real.append(crop)
        fake.append(np.where(mask, blurred, crop))
    to = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to(fake), to(real)


def test_lpips_equals_the_lpips_package(random_weights, monkeypatch):
    import lpips

    fake, real = _photos()
    ours = LPIPS("alex", weights_dir=random_weights, verify=False, device=torch.device("cpu"))
    values = ours(fake.float() / 255, real.float() / 255)
    # the package itself, finding the same trunk file in the torch hub cache
    hub = random_weights.parent / "hub"
    (hub / "checkpoints").mkdir(parents=True, exist_ok=True)
    (hub / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes((random_weights / "alexnet-owt-7be5be79.pth")
                                                                   .read_bytes())
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    direct = lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()
    with torch.no_grad():
        expected = direct(fake.float() / 255 * 2 - 1, real.float() / 255 * 2 - 1).flatten()
    assert values.shape == (8,) and (values > 0).all()
    torch.testing.assert_close(values, expected, rtol=1e-6, atol=1e-7)


def test_fid_and_kid_equal_torch_fidelity_on_png_folders(random_weights, tmp_path):
    import torch_fidelity

    fake, real = _photos()
    ours = fid_kid(fake, real, weights_dir=random_weights, verify=False)
    for name, images in [("fake", fake), ("real", real)]:
        (tmp_path / name).mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / name / f"{i:03d}.png")
    direct = torch_fidelity.calculate_metrics(
        input1=str(tmp_path / "fake"), input2=str(tmp_path / "real"), fid=True, kid=True, cuda=False,
        verbose=False, kid_subset_size=8, save_cpu_ram=True,
        feature_extractor_weights_path=str(random_weights / "weights-inception-2015-12-05-6726825d.pth"))
    assert ours["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-6)
    assert ours["kid"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-6, abs=1e-12)
    assert ours["n_fake"] == 8 and ours["comparable"] is False
    # 8 images in subsets of 8: every subset is the whole set reordered, so no spread is reported
    assert math.isnan(ours["kid_std"])
    halves = fid_kid(fake, real, weights_dir=random_weights, verify=False, kid_subset_size=4)
    direct = torch_fidelity.calculate_metrics(
        input1=str(tmp_path / "fake"), input2=str(tmp_path / "real"), kid=True, cuda=False, verbose=False,
        kid_subset_size=4, save_cpu_ram=True,
        feature_extractor_weights_path=str(random_weights / "weights-inception-2015-12-05-6726825d.pth"))
    assert halves["kid_std"] == pytest.approx(direct["kernel_inception_distance_std"], rel=1e-6, abs=1e-12)


def test_kids_spread_is_reported_only_when_the_subsets_differ(random_weights, monkeypatch):
    from torch_fidelity.metric_kid import kid_features_to_metric

    from inpaintbench.benchmarks.metrics import distribution

    # random Inception weights give near-constant features: stand in features that differ image by image
    monkeypatch.setattr(distribution, "_features", lambda images, extractor: images.flatten(1)[:, :256] / 255)
    fake, real = _photos()
    whole = fid_kid(fake, real, weights_dir=random_weights, verify=False)
    halves = fid_kid(fake, real, weights_dir=random_weights, verify=False, kid_subset_size=4)
    assert math.isnan(whole["kid_std"]) and math.isfinite(whole["kid"])
    expected = kid_features_to_metric(fake.flatten(1)[:, :256] / 255, real.flatten(1)[:, :256] / 255,
                                      kid_subsets=100, kid_subset_size=4, verbose=False)
    assert halves["kid_std"] > 0
    assert halves["kid_std"] == pytest.approx(expected["kernel_inception_distance_std"], rel=1e-6)


def test_real_features_are_cached_as_safetensors_and_no_user_file_is_ever_unpickled(random_weights, monkeypatch,
                                                                                    private_torch_home):
    from inpaintbench.benchmarks.metrics.distribution import feature_cache_dir

    fake, real = _photos()
    # a pickle planted where torch-fidelity's own cache would look: unpickling it would raise
    planted = private_torch_home / "fidelity_cache"
    planted.mkdir()
    for suffix in ("features-2048", "stat-fid-2048"):
        torch.save(_Bomb(), planted / f"inpaintbench-real-inception-v3-compat-{suffix}.pt")
    unpickled = []
    real_load = torch.load

    def spy(path, *args, weights_only=None, **kwargs):
        if not weights_only:
            unpickled.append(Path(path))
        return real_load(path, *args, weights_only=weights_only, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    first = fid_kid(fake, real, weights_dir=random_weights, verify=False, real_cache_name="inpaintbench-real")
    entry = feature_cache_dir() / "inpaintbench-real.safetensors"
    assert entry.is_file() and feature_cache_dir().parent == private_torch_home
    # torch-fidelity unpickles only the private copy of the weights, never the user's file
    assert unpickled and all(random_weights not in p.parents and p.parent != planted for p in unpickled)
    assert not any(p.exists() for p in unpickled)  # the copy is gone
    # the second call reads the cached features: other real images under the same name give the same numbers
    assert _nan_as_none(fid_kid(fake, torch.zeros_like(real), weights_dir=random_weights, verify=False,
                                real_cache_name="inpaintbench-real")) == _nan_as_none(first)
    entry.write_bytes(b"not safetensors")  # a damaged entry is recomputed and replaced
    again = fid_kid(fake, real, weights_dir=random_weights, verify=False, real_cache_name="inpaintbench-real")
    assert _nan_as_none(again) == _nan_as_none(first)
    assert entry.read_bytes() != b"not safetensors"


def _nan_as_none(values: dict) -> dict:
    """``values`` with NaN (KID's spread over 8 images in subsets of 8) as None, so that dicts compare."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


class _Bomb:
    """An object whose unpickling raises: proof that a file holding it was never unpickled."""

    def __reduce__(self):
        return (_explode, ())


def _explode():
    raise AssertionError("a planted pickle was unpickled")


def test_missing_and_unverified_weights_are_unavailable_with_a_reason(random_weights, tmp_path):
    with pytest.raises(WeightsUnavailable, match="alexnet-owt-7be5be79.pth not found in"):
        LPIPS("alex", weights_dir=tmp_path)
    with pytest.raises(WeightsUnavailable, match="fails its checksum"):
        LPIPS("alex", weights_dir=random_weights)  # verify=True: random weights are not the official file
    fake, real = _photos(4)
    with pytest.raises(WeightsUnavailable, match="weights-inception-2015-12-05-6726825d.pth not found"):
        fid_kid(fake, real, weights_dir=tmp_path)


def test_weights_status(random_weights, tmp_path):
    rows = {r["name"]: r for r in weights.weights_status(random_weights)}
    assert rows["alexnet"]["status"] == "checksum mismatch" and rows["vgg16"]["status"] == "missing"
    assert rows["inception"]["path"].endswith("weights-inception-2015-12-05-6726825d.pth")


@pytest.fixture
def fake_alexnet_entry(random_weights, monkeypatch):
    """Point the alexnet entry at the random file's real checksum, so the success paths can run."""
    path = random_weights / "alexnet-owt-7be5be79.pth"
    entry = WEIGHTS.get("alexnet")
    patched = type(entry)(entry.name, entry.filename, entry.url, weights.sha256(path)[:8], entry.used_by)
    monkeypatch.setitem(WEIGHTS._entries, "alexnet", patched)
    return path, patched


def test_import_checks_checksum_and_content(fake_alexnet_entry, tmp_path):
    path, _ = fake_alexnet_entry
    target = weights.import_weights(path, tmp_path / "w")
    assert target.read_bytes() == path.read_bytes() and weights.locate("alexnet", tmp_path / "w") == target
    wrong = tmp_path / "alexnet-owt-7be5be79.pth"
    wrong.write_bytes(b"not weights")
    with pytest.raises(InpaintbenchError, match="sha256 does not start"):
        weights.import_weights(wrong, tmp_path / "w2")
    assert not (tmp_path / "w2" / "alexnet-owt-7be5be79.pth").exists()
    with pytest.raises(InpaintbenchError, match="not a known weights file"):
        weights.import_weights(_renamed(path, tmp_path), tmp_path / "w3")


def _renamed(path: Path, folder: Path) -> Path:
    copy = folder / "some-model.pth"
    copy.write_bytes(path.read_bytes())
    return copy


def test_download_from_a_local_server_verifies_the_checksum(fake_alexnet_entry, tmp_path, monkeypatch):
    path, entry = fake_alexnet_entry
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(path.parent), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{path.name}"
        monkeypatch.setitem(WEIGHTS._entries, "alexnet", type(entry)(entry.name, entry.filename, url,
                                                                      entry.sha256_prefix, entry.used_by))
        [got] = weights.download_weights(["alexnet"], tmp_path / "ok")
        assert got.read_bytes() == path.read_bytes()
        monkeypatch.setitem(WEIGHTS._entries, "alexnet", type(entry)(entry.name, entry.filename, url, "00000000",
                                                                      entry.used_by))
        with pytest.raises(InpaintbenchError, match="could not download"):
            weights.download_weights(["alexnet"], tmp_path / "bad")
        assert not (tmp_path / "bad" / entry.filename).exists()
        with pytest.raises(InpaintbenchError, match="unknown weights file 'nosuch'"):
            weights.download_weights(["nosuch"], tmp_path / "new")
        assert not (tmp_path / "new").exists()  # refused before its folder is made
    finally:
        server.shutdown()


def test_paired_ids_follow_their_definition(random_weights):
    from inpaintbench.benchmarks.metrics.distribution import inception_features, paired_ids

    fake, real = _photos(8)
    real_features = inception_features(real, random_weights, verify=False)
    assert real_features.shape == (8, 2048)
    # an inpainting identical to its ground truth cannot be told apart: chance error, never "more real"
    same = paired_ids(real_features, real_features)
    assert same["u_ids"] == pytest.approx(0.5) and same["p_ids"] == 0.0
    # flat grey "inpaintings" are separated perfectly
    grey = inception_features(torch.full_like(real, 128), random_weights, verify=False)
    separable = paired_ids(grey + torch.randn(grey.shape, dtype=grey.dtype) * 1e-3, real_features)
    assert separable["u_ids"] == 0.0 and separable["p_ids"] == 0.0


def test_public_metrics_agree_with_the_harness(tmp_path, monkeypatch, random_weights):
    """ib.metrics.lpips/fid/kid/p_ids_u_ids on the harness's own inputs give the harness's numbers."""
    import pandas as pd

    import inpaintbench as ib
    from inpaintbench.datasets.loader import InpaintDataset
    from inpaintbench.masks.sets import load_mask_set

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(f"""
name = "nets"
output = "out"
metrics = ["psnr", "lpips", "fid", "kid", "p_ids", "u_ids"]
weights_dir = "{random_weights}"
verify_weights = false
[dataset]
source = "sample"
path = "data/sample-32"
split = "test"
build = {{ size = 32, seed = 0, crops_per_photo = {{ train = 12, val = 4, test = 8 }} }}
[masks]
levels = ["L2"]
count = 12
[[models]]
name = "mean-fill"
""")
    results = pd.read_parquet(ib.run_suite(tmp_path / "s.toml", report=False))
    runs = pd.read_parquet(tmp_path / "out" / "run_metrics.parquet").set_index("metric")["value"]
    images = InpaintDataset(results["dataset"].iloc[0], "test").images_at(range(12)).float() / 255
    masks = torch.from_numpy(load_mask_set(results["mask_set"].iloc[0])[0][:12]).float()
    composite = ib.create_model("mean-fill")(images * (1 - masks), masks).clamp(0, 1) * masks + images * (1 - masks)
    options = {"weights_dir": random_weights, "verify": False}
    np.testing.assert_allclose(ib.metrics.lpips(composite, images, **options).numpy(), results["lpips"], rtol=1e-5,
                               atol=1e-6)
    assert ib.metrics.fid(composite, images, **options) == pytest.approx(runs["fid"], rel=1e-6)
    assert ib.metrics.kid(composite, images, **options)[0] == pytest.approx(runs["kid"], rel=1e-6, abs=1e-12)
    ids = ib.metrics.p_ids_u_ids(composite, images, **options)
    assert ids == {"p_ids": pytest.approx(runs["p_ids"]), "u_ids": pytest.approx(runs["u_ids"])}
    # image folders (PNG files, paired by name) give the same FID as the tensors: the harness's uint8 rounding
    for name, batch in [("pred", composite), ("real", images)]:
        (tmp_path / name).mkdir()
        for i, image in enumerate(ib.metrics.to_uint8(batch)):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / name / f"{i:03d}.png")
    assert ib.metrics.fid(tmp_path / "pred", tmp_path / "real", **options) == pytest.approx(runs["fid"], rel=1e-6)
    folder_lpips = ib.metrics.lpips(tmp_path / "pred", tmp_path / "real", **options).numpy()
    np.testing.assert_allclose(folder_lpips, results["lpips"], atol=2e-3)  # only the uint8 rounding differs


def test_public_metrics_without_weights_give_the_import_hint(tmp_path):
    import inpaintbench as ib

    images = torch.rand(2, 3, 32, 32)
    for call in (lambda: ib.metrics.lpips(images, images, weights_dir=tmp_path),
                 lambda: ib.metrics.fid(images, images, weights_dir=tmp_path)):
        with pytest.raises(WeightsUnavailable) as err:
            call()
        assert "inpaintbench weights import" in str(err.value) and "\n" not in str(err.value)


def test_public_metrics_refuse_unpaired_folders(tmp_path, random_weights):
    import inpaintbench as ib

    for name, files in [("a", ["x.png", "y.png"]), ("b", ["x.png", "z.png"])]:
        (tmp_path / name).mkdir()
        for f in files:
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / f)
    with pytest.raises(InpaintbenchError, match="same file names"):
        ib.metrics.lpips(tmp_path / "a", tmp_path / "b", weights_dir=random_weights, verify=False)


def test_public_metrics_refuse_a_broken_or_bomb_file_in_one_line(tmp_path, random_weights):
    import inpaintbench as ib
    from tests.fakes.images import png_claiming

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "x.png")
    for content, reason in [(b"not a png", "not a recognised image format"),
                            (png_claiming(9000, 9000), "decompression-bomb limit"),  # 81 Mpx: under Pillow's limit
                            (png_claiming(20000, 20000), "decompression bomb guard")]:
        (tmp_path / "a" / "x.png").write_bytes(content)
        with pytest.raises(InpaintbenchError, match=reason) as err:
            ib.metrics.lpips(tmp_path / "a", tmp_path / "b", weights_dir=random_weights, verify=False)
        assert "x.png" in str(err.value) and "\n" not in str(err.value)
