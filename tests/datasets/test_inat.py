"""The iNaturalist scraper against the fake iNaturalist server (tests/fakes/inat_server.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import webdataset as wds
from PIL import Image

import inpaintbench as ib
from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets import inat
from tests.fakes.images import png_claiming
from tests.fakes.inat_faults import Faults, max_requests_in_window
from tests.fakes.inat_server import FakeINat
from tests.fakes.inat_world import make_world

RATE = 4.0  # API requests per second in these tests (the default is 1)
COUNTS = {118552: 330, 47144: 330, 3: 420}


def write_recipe(path: Path, **extra: str) -> Path:
    """A small-image recipe with the three classes; ``extra`` lines override top-level keys."""
    top = {"name": '"inat-test"', "size": "64", "min_side": "128", "photo_size": '"medium"',
           "samples_per_shard": "150", **extra}
    path.write_text("\n".join(f"{k} = {v}" for k, v in top.items()) + f"""
[politeness]
requests_per_second = {RATE}
concurrency = 16
timeout_s = 1.0
max_retries = 5
contact = "tests@example.org"

[classes.cat]
taxon_id = 118552
query = {{ quality_grade = ["casual", "needs_id", "research"] }}

[classes.dog]
taxon_id = 47144
query = {{ quality_grade = ["casual", "needs_id", "research"] }}

[classes.bird]
taxon_id = 3
max_per_species = 60
""")
    return path


@pytest.fixture(scope="module")
def world():
    return make_world(COUNTS, seed=7)


@pytest.fixture(scope="module")
def faulty_build(world, tmp_path_factory):
    """One build of 3 x 200 images with every fault at 3%, shared by the acceptance checks."""
    root = tmp_path_factory.mktemp("inat")
    recipe = write_recipe(root / "recipe.toml")
    faults = Faults.everything(0.03, slow_seconds=3.0)
    with FakeINat(world, faults=faults, seed=1).running() as fake:
        info = ib.build_dataset("inat", root / "ds", recipe=str(recipe), api_url=fake.api_url, per_class=200)
        logs = {"api": list(fake.api_log), "photo": list(fake.photo_log)}
    return root / "ds", info, logs


@pytest.mark.slow
def test_faulty_server_gives_exactly_200_valid_images_per_class(faulty_build):
    out, info, _ = faulty_build
    assert info["counts"]["train"] and sum(info["totals"].values()) == 600
    manifest = pd.read_parquet(out / "manifest.parquet")
    ok = manifest[manifest.status == "ok"]
    assert ok.groupby("label_name").size().to_dict() == {"bird": 200, "cat": 200, "dog": 200}
    assert ok.key.is_unique and ok.photo_id.is_unique and ok.sha256.is_unique
    assert set(ok.license) <= {"cc0", "cc-by", "cc-by-sa", "cc-by-nc", "cc-by-nc-sa"}
    assert ok[ok.label_name == "bird"].groupby("species").size().max() <= 60
    rejected = manifest[manifest.status == "rejected"]
    assert len(rejected) > 0 and (rejected.reason.str.len() > 0).all()
    reasons = " | ".join(rejected.reason)
    for expected in ("not an image", "corrupt image", "too small", "species cap", "duplicate content"):
        assert expected in reasons, expected


@pytest.mark.slow
def test_api_rate_never_exceeded_and_user_agent_names_the_contact(faulty_build):
    _, info, logs = faulty_build
    assert len(logs["api"]) >= 6  # at least two pages per class
    assert max_requests_in_window(logs["api"], window=10.0) <= RATE * 10
    assert all("inpaintbench/" in r[4] and "tests@example.org" in r[4] for r in logs["api"] + logs["photo"])
    statuses = {r[2] for r in logs["api"] + logs["photo"]}
    assert {429, 500, 503} <= statuses  # the faults really happened and were survived


@pytest.mark.slow
def test_shards_read_back_with_webdataset_and_open_dataset(faulty_build):
    out, _, _ = faulty_build
    keys = []
    for shard in sorted(out.glob("*/*.tar")):
        for sample in wds.WebDataset(str(shard), shardshuffle=False, empty_check=False):
            meta = json.loads(sample["json"])
            assert Image.open(io.BytesIO(sample["jpg"])).size == (64, 64)
            assert int(sample["cls"]) == meta["label"] and meta["license"] and meta["attribution"]
            assert "/medium.jpg" in meta["url"]
            keys.append(sample["__key__"])
    assert len(keys) == len(set(keys)) == 600
    loaded = [s["key"] for split in ("train", "val", "test") for s in ib.open_dataset(out, split)]
    assert sorted(loaded) == sorted(keys)


@pytest.mark.slow
def test_splits_are_stratified_by_observation_and_attribution_is_complete(faulty_build):
    out, info, _ = faulty_build
    assert info["counts"]["train"] == {"bird": 160, "cat": 160, "dog": 160}
    assert info["counts"]["val"] == info["counts"]["test"] == {"bird": 20, "cat": 20, "dog": 20}
    manifest = pd.read_parquet(out / "manifest.parquet")
    ok = manifest[manifest.status == "ok"]
    assert ok.groupby("observation_id").split.nunique().max() == 1
    with (out / "ATTRIBUTION.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 600 and {r["key"] for r in rows} == set(ok.key)
    assert all(r["license_url"].startswith("https://creativecommons.org/") and r["creator_attribution"]
               for r in rows)
    card = (out / "README.md").read_text()
    assert "Most frequent species" in card and "ATTRIBUTION.csv" in card and "cc-by" in card


def test_same_selection_without_transient_faults(world, faulty_build, tmp_path):
    """Transient faults change the traffic, never the dataset: a run with only the permanent faults (bad photos)
    chooses the same images."""
    out, _, _ = faulty_build
    recipe = write_recipe(tmp_path / "recipe.toml")
    permanent = Faults(photo_html=0.03, photo_wrong_type=0.03, photo_corrupt=0.03)
    with FakeINat(world, faults=permanent, seed=1).running() as fake:
        ib.build_dataset("inat", tmp_path / "ds", recipe=str(recipe), api_url=fake.api_url, per_class=200)
    def chosen(path):  # the photo URLs name the server's port, so compare what was chosen, not tar bytes
        manifest = pd.read_parquet(path / "manifest.parquet")
        return manifest[manifest.status == "ok"][["key", "split", "shard", "sha256"]].reset_index(drop=True)

    pd.testing.assert_frame_equal(chosen(out), chosen(tmp_path / "ds"))


def _cli(recipe: Path, out: Path, api_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "inpaintbench.cli", "data", "build", "inat", "--recipe", str(recipe),
            "--out", str(out), "--api-url", api_url, "--per-class", "120", *extra]


@pytest.mark.slow
def test_sigkill_then_rerun_equals_uninterrupted_and_downloads_nothing_twice(world, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.toml")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    faults = Faults.everything(0.02, slow_seconds=3.0)
    with FakeINat(world, faults=faults, seed=3, photo_latency=0.01).running() as fake:
        subprocess.run(_cli(recipe, tmp_path / "whole", fake.api_url), check=True, env=env, capture_output=True)
        first_log = len(fake.photo_log)
        proc = subprocess.Popen(_cli(recipe, tmp_path / "killed", fake.api_url), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = tmp_path / "killed" / ".inat" / "photos.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and (not log.exists() or log.read_text().count("\n") < 150):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = {json.loads(line)["photo_id"] for line in log.read_text().splitlines() if line.endswith("}")}
        assert 150 <= len(done) < 360, "the kill came too late to test anything"
        assert not (tmp_path / "killed" / "dataset.json").exists()
        rerun_from = len(fake.photo_log)
        subprocess.run(_cli(recipe, tmp_path / "killed", fake.api_url), check=True, env=env, capture_output=True)
        again = [r for r in fake.photo_log[rerun_from:] if r[2] == 200]
    assert first_log > 0
    refetched = {int(r[1].split("/")[2]) for r in again} & done
    assert not refetched, f"downloaded again after the kill: {sorted(refetched)[:5]}"
    whole, killed = sorted((tmp_path / "whole").glob("*/*.tar")), sorted((tmp_path / "killed").glob("*/*.tar"))
    assert [p.relative_to(tmp_path / "whole") for p in whole] == [p.relative_to(tmp_path / "killed") for p in killed]
    for a, b in zip(whole, killed, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_shortfall_is_reported(world, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.toml")
    with FakeINat(world, seed=1).running() as fake:
        result = subprocess.run(_cli(recipe, tmp_path / "ds", fake.api_url, "--limit-per-class", "60"),
                                env={**os.environ, "TQDM_DISABLE": "1"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "warning: class cat is" in result.stderr and "short" in result.stderr
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "## Shortfall" in card


def test_daily_budget_stops_cleanly_and_keeps_the_listing(world, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.toml")
    text = recipe.read_text().replace("max_retries = 5", "max_retries = 5\nrequests_per_day = 2")
    recipe.write_text(text)
    with FakeINat(world, seed=1).running() as fake:
        with pytest.raises(InpaintbenchError, match="daily API budget of 2 requests is spent"):
            ib.build_dataset("inat", tmp_path / "ds", recipe=str(recipe), api_url=fake.api_url, per_class=200)
        assert len(fake.api_log) == 2
    pages = list((tmp_path / "ds" / ".inat" / "listing").glob("*.jsonl"))
    assert sum(p.read_text().count("\n") for p in pages) == 2
    assert not (tmp_path / "ds" / "dataset.json").exists()


# ------------------------------------------------------------------------------------------ units


def test_default_recipe_is_the_balanced_20000():
    recipe = inat.load_recipe(Path(__file__).parents[2] / "datasets" / "inat-cats-dogs-birds.toml")
    assert recipe.per_class() == {"cat": 6667, "dog": 6667, "bird": 6666}
    assert [c.taxon_id for c in recipe.classes] == [118552, 47144, 3]
    assert recipe.politeness.requests_per_second == 1 and recipe.politeness.requests_per_day == 10000
    assert "cc-by-nd" not in recipe.licenses and recipe.photo_size == "large"


@pytest.mark.parametrize("text, message", [
    ("sise = 3\n[classes.a]\ntaxon_id = 1", "unknown key"),
    ('licenses = ["gpl"]\n[classes.a]\ntaxon_id = 1', "licenses must be among"),
    ("[splits]\ntrain = 0.5\n[classes.a]\ntaxon_id = 1", "sum to 1"),
    ('name = "x"', "no \\[classes"),
    ("[classes.a]\nquery = {}", "needs taxon_id"),
])
def test_bad_recipes_fail_with_one_line(tmp_path, text, message):
    path = tmp_path / "r.toml"
    path.write_text(('name = "x"\n' if not text.startswith("name") else "") + text)
    with pytest.raises(InpaintbenchError, match=message):
        inat.load_recipe(path)


def test_official_api_needs_a_contact(tmp_path):
    recipe = write_recipe(tmp_path / "r.toml")
    recipe.write_text(recipe.read_text().replace('contact = "tests@example.org"', 'contact = ""'))
    with pytest.raises(InpaintbenchError, match="set a contact"):
        inat.build_inat(tmp_path / "ds", recipe=recipe)
    assert not (tmp_path / "ds").exists()


def test_first_photo_with_an_allowed_license_is_chosen():
    licenses = ("cc0", "cc-by")
    observation = {"photos": [{"id": 1, "license_code": None}, {"id": 2, "license_code": "cc-by-nd"},
                              {"id": 3, "license_code": "cc-by"}, {"id": 4, "license_code": "cc0"}]}
    assert inat._photos_of(observation, licenses, 1) == ([{"id": 3, "license_code": "cc-by"}], "")
    assert [p["id"] for p in inat._photos_of(observation, licenses, 2)[0]] == [3, 4]
    closed = {"photos": [{"id": 1, "license_code": None}, {"id": 2, "license_code": "cc-by-nd"}]}
    assert inat._photos_of(closed, licenses, 1) == ([], "no photo with an allowed license (all rights reserved, "
                                                         "cc-by-nd)")


def test_photo_url_swaps_only_the_size_word():
    url = "https://static.inaturalist.org/photos/92152429/square.jpg?1598551272"
    assert inat.photo_url(url, "large") == "https://static.inaturalist.org/photos/92152429/large.jpg?1598551272"
    assert inat.photo_url("https://x/photos/1/square.png", "medium") == "https://x/photos/1/medium.png"
    with pytest.raises(ValueError):
        inat.photo_url("https://x/photos/1/thumb.jpg", "large")


def _jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("body, reason", [
    (b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>", "not an image: an HTML page"),
    (b"\x00\x01garbage", "not an image: not a recognised image format"),
    (png_claiming(20000, 20000), "decompression bomb"),
    (_jpeg(100, 300), "too small"),
    (_jpeg(300, 200)[:1500], "corrupt image"),
])
def test_process_photo_rejects_by_content(tmp_path, body, reason):
    outcome = inat.process_photo(body, 64, 128, "jpg", tmp_path / "x.jpg")
    assert outcome["status"] == "rejected" and reason in outcome["reason"]
    assert not (tmp_path / "x.jpg").exists()


def test_process_photo_crops_the_centre_and_resizes(tmp_path):
    outcome = inat.process_photo(_jpeg(300, 200), 64, 128, "png", tmp_path / "x.png")
    assert outcome["status"] == "ok" and (outcome["width"], outcome["height"]) == (300, 200)
    assert Image.open(tmp_path / "x.png").size == (64, 64)
