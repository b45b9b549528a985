"""The fake iNaturalist API + photo host behaves like the real one (shape, paging, window, sizes, faults, logs)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import requests
from PIL import Image, UnidentifiedImageError

from tests.fakes.inat_faults import Faults, max_requests_in_window
from tests.fakes.inat_process import read_port_file
from tests.fakes.inat_server import FakeINat
from tests.fakes.inat_world import BIRD_SPECIES_IDS, BIRDS, CAT, DOG, WINDOW_ERROR, make_world

REPO = Path(__file__).resolve().parents[2]
COUNTS = {CAT: 120, DOG: 120, BIRDS: 360}
SEED = 5

# Key sets of a real recorded response of GET /v1/observations (pyinaturalist's sample_data
# v1/get_observations_page1.json, as recorded in the project's reference notes).
ENVELOPE_KEYS = {"total_results", "page", "per_page", "results"}
PHOTO_KEYS = {"id", "license_code", "url", "attribution", "original_dimensions", "flags"}
OBS_PHOTO_KEYS = {"id", "position", "uuid", "photo"}
RESULT_KEYS = {"id", "uuid", "quality_grade", "captive", "license_code", "observed_on", "created_at", "taxon"}
RESULT_KEYS |= {"photos", "observation_photos", "user", "geojson", "location", "species_guess", "uri"}
TAXON_KEYS = {"id", "name", "rank", "rank_level", "ancestor_ids", "ancestry", "iconic_taxon_id", "iconic_taxon_name"}
TAXON_KEYS |= {"preferred_common_name", "is_active", "parent_id"}
USER_KEYS = {"id", "login", "name"}
SQUARE_URL = re.compile(r"^http://127\.0\.0\.1:\d+/photos/(\d+)/square\.jpg\?\d+$")


@pytest.fixture(scope="module")
def world():
    return make_world(COUNTS, seed=SEED)


@pytest.fixture(scope="module")
def fake(world):
    with FakeINat(world, seed=SEED).running() as server:
        yield server


def search(fake, **params):
    return requests.get(f"{fake.api_url}/observations", params=params, timeout=10)


def brute(world, pred):
    return [o["id"] for o in world if pred(o)]


def photo_url(fake, pid, size="medium"):
    return f"{fake.photo_base}/photos/{pid}/{size}.jpg"


# ------------------------------------------------------------------------------------------------ world


def test_world_is_deterministic_and_realistic(world):
    assert make_world(COUNTS, seed=SEED) == world and make_world(COUNTS, seed=SEED + 1) != world
    ids = [o["id"] for o in world]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == 600
    photo_ids = [p["id"] for _, p in world.iter_photos()]
    assert photo_ids == sorted(photo_ids) and len(set(photo_ids)) == len(photo_ids)
    assert all(1 <= len(o["photos"]) <= 3 for o in world)
    assert all([op["photo"] for op in o["observation_photos"]] == o["photos"] for o in world)

    by_class = Counter(CAT if o["taxon"]["id"] == CAT else DOG if o["taxon"]["id"] == DOG else BIRDS for o in world)
    assert by_class == COUNTS
    birds = [o for o in world if BIRDS in o["taxon"]["ancestor_ids"]]
    assert len(birds) == 360 and all(o["taxon"]["ancestor_ids"][-1] == o["taxon"]["id"] for o in world)
    species = Counter(o["taxon"]["id"] for o in birds)
    assert set(species) <= set(BIRD_SPECIES_IDS) and len(species) >= 6
    assert 0.4 < species.most_common(1)[0][1] / len(birds) < 0.6
    pets = [o for o in world if o["taxon"]["id"] in (CAT, DOG)]
    assert sum(o["quality_grade"] == "casual" and o["captive"] for o in pets) / len(pets) > 0.7
    assert sum(o["quality_grade"] != "casual" and not o["captive"] for o in birds) / len(birds) > 0.8

    licenses = Counter(p["license_code"] for _, p in world.iter_photos())
    assert 0.08 < licenses[None] / sum(licenses.values()) < 0.22
    assert {"cc-by", "cc-by-nc", "cc-by-sa", "cc0", "cc-by-nd", "cc-by-nc-nd"} <= set(licenses)
    assert world.duplicates and world.world_duplicates is world.duplicates
    dims = {p["id"]: p["original_dimensions"] for _, p in world.iter_photos()}
    assert all(dims[d] == dims[s] and s < d for d, s in world.duplicates.items())
    assert world.tiny_photo_ids and all(max(dims[p].values()) < 100 for p in world.tiny_photo_ids)
    assert all(max(d.values()) <= 2048 for d in dims.values())
    with pytest.raises(ValueError, match="unknown class"):
        make_world({42: 1})


# ------------------------------------------------------------------------------------------------ API


def test_response_shape_matches_the_recorded_real_response(fake):
    resp = search(fake, per_page=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert "_content_id" not in resp.text  # private bookkeeping never leaks
    body = resp.json()
    assert set(body) == ENVELOPE_KEYS and (body["total_results"], body["page"], body["per_page"]) == (600, 1, 5)
    for obs in body["results"]:
        assert RESULT_KEYS <= set(obs) and TAXON_KEYS <= set(obs["taxon"]) and USER_KEYS <= set(obs["user"])
        assert obs["taxon"]["ancestry"] == "/".join(map(str, obs["taxon"]["ancestor_ids"][:-1]))
        for photo, op in zip(obs["photos"], obs["observation_photos"], strict=True):
            assert set(photo) == PHOTO_KEYS and set(op) == OBS_PHOTO_KEYS and op["photo"] == photo
            assert int(SQUARE_URL.match(photo["url"]).group(1)) == photo["id"]
            assert photo["url"].startswith(fake.photo_base + "/photos/")
            lic = photo["license_code"]
            assert lic is None or lic == lic.lower()
            tail = {None: "all rights reserved", "cc0": "no rights reserved (CC0)"}.get(lic)
            tail = tail or f"some rights reserved ({lic.upper().replace('CC-', 'CC ')})"
            assert photo["attribution"].startswith("(c) ") and photo["attribution"].endswith(tail)
    assert fake.observations[0]["photos"][0]["url"].startswith(fake.photo_base)


def test_per_page_default_clamp_and_count_only(fake):
    assert search(fake).json()["per_page"] == 30 and len(search(fake).json()["results"]) == 30
    body = search(fake, per_page=500).json()
    assert body["per_page"] == 200 and len(body["results"]) == 200
    body = search(fake, per_page=0, taxon_id=BIRDS).json()
    assert body == {"total_results": 360, "page": 1, "per_page": 0, "results": []}
    assert search(fake, per_page=200, page=4).json()["results"] == []  # past the end: empty page, not an error


def test_result_window_is_10000(fake):
    resp = search(fake, page=51, per_page=200)
    assert resp.status_code == 403
    assert resp.json() == {"error": WINDOW_ERROR, "status": 403}
    assert resp.json()["error"].startswith("Result window is too large, page x size must be less than or equal")
    assert search(fake, page=50, per_page=200).status_code == 200
    assert search(fake, page=700).status_code == 403  # default per_page 30 (the real API's own test)
    assert search(fake, page=60, per_page=500).status_code == 403  # clamped to 200 first


def test_id_above_paging_covers_every_match_exactly_once(fake, world):
    query = {"taxon_id": "3,118552", "photo_license": "cc-by,cc-by-nc,cc0", "order_by": "id", "order": "asc"}
    expected = brute(
        world,
        lambda o: (
            (BIRDS in o["taxon"]["ancestor_ids"] or o["taxon"]["id"] == CAT)
            and any(p["license_code"] in ("cc-by", "cc-by-nc", "cc0") for p in o["photos"])
        ),
    )
    seen, last, total = [], 0, None
    while True:
        body = search(fake, **query, per_page=37, id_above=last).json()
        total = body["total_results"] if total is None else total
        if not body["results"]:
            break
        seen += [o["id"] for o in body["results"]]
        last = seen[-1]
    assert seen == expected and total == len(expected)
    pivot = expected[10]
    below = [o["id"] for o in search(fake, **query, per_page=200, id_below=pivot).json()["results"]]
    assert below == expected[:10]
    assert search(fake, id_above="abc").status_code == 422


def test_taxon_filters_match_descendants(fake, world):
    for taxa, pred in (
        ("3", lambda o: BIRDS in o["taxon"]["ancestor_ids"]),
        ("118552,47144", lambda o: o["taxon"]["id"] in (CAT, DOG)),
        (str(BIRD_SPECIES_IDS[0]), lambda o: o["taxon"]["id"] == BIRD_SPECIES_IDS[0]),
        ("40151", lambda o: o["taxon"]["id"] in (CAT, DOG)),  # Mammalia
    ):
        body = search(fake, taxon_id=taxa, per_page=200, order_by="id", order="asc").json()
        assert body["total_results"] == len(brute(world, pred)) > 0, taxa
        assert [o["id"] for o in body["results"]] == brute(world, pred)[:200]
    assert search(fake, without_taxon_id=3, per_page=0).json()["total_results"] == 240
    assert search(fake, iconic_taxa="Aves", per_page=0).json()["total_results"] == 360


def test_photo_license_means_at_least_one_photo(fake, world):
    wanted = {"cc0", "cc-by"}
    body = search(fake, photo_license="CC0,cc-by", per_page=200, order_by="id", order="asc").json()
    expected = brute(world, lambda o: any(p["license_code"] in wanted for p in o["photos"]))
    assert body["total_results"] == len(expected) and [o["id"] for o in body["results"]] == expected[:200]
    assert all(any(p["license_code"] in wanted for p in o["photos"]) for o in body["results"])
    assert any(any(p["license_code"] not in wanted for p in o["photos"]) for o in body["results"])  # mixed obs
    licensed = brute(world, lambda o: any(p["license_code"] for p in o["photos"]))
    assert search(fake, photo_licensed="true", per_page=0).json()["total_results"] == len(licensed)


def test_grade_captive_verifiable_and_ordering(fake, world):
    def total(**q):
        return search(fake, per_page=0, **q).json()["total_results"]

    assert total(quality_grade="research,needs_id") == len(
        brute(world, lambda o: o["quality_grade"] in ("research", "needs_id"))
    )
    assert total(verifiable="true") == total(quality_grade="research,needs_id")
    assert total(captive="true") == len(brute(world, lambda o: o["captive"]))
    assert total(captive="false", taxon_id=CAT) == len(
        brute(world, lambda o: not o["captive"] and o["taxon"]["id"] == CAT)
    )
    assert total(photos="true", frobnicate="1") == 600  # unknown parameters are ignored
    default = [o["id"] for o in search(fake, per_page=50).json()["results"]]
    assert default == sorted((o["id"] for o in world), reverse=True)[:50]  # created_at desc
    asc = [o["id"] for o in search(fake, per_page=50, order_by="id", order="asc").json()["results"]]
    assert asc == [o["id"] for o in world][:50]


def test_unknown_api_path_is_404_and_logged(fake):
    n = len(fake.api_log)
    assert requests.get(f"{fake.api_url}/nope", timeout=5).status_code == 404
    assert fake.api_log[n].status == 404 and fake.api_log[n].path_qs == "/v1/nope"


# ------------------------------------------------------------------------------------------------ photos


def test_photo_sizes_follow_the_real_rules(fake, world):
    dims = {p["id"]: p["original_dimensions"] for _, p in world.iter_photos()}
    big = next(pid for pid, d in dims.items() if max(d.values()) > 1024)
    modest = next(pid for pid, d in dims.items() if 500 < max(d.values()) <= 800)
    for pid in (big, modest):
        w, h = dims[pid]["width"], dims[pid]["height"]
        sizes = {}
        for size in ("original", "large", "medium", "small", "thumb", "square"):
            resp = requests.get(photo_url(fake, pid, size) + "?1598551272", timeout=5)
            assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/jpeg"
            im = Image.open(io.BytesIO(resp.content))
            im.load()
            assert im.format == "JPEG"
            sizes[size] = im.size
            assert resp.content == requests.get(photo_url(fake, pid, size), timeout=5).content  # stable bytes
            assert resp.content == fake.photo_bytes(pid, size)
        assert sizes["original"] == (w, h) and sizes["square"] == (75, 75)
        for size, limit in (("large", 1024), ("medium", 500), ("small", 240), ("thumb", 100)):
            expected = (w, h) if max(w, h) <= limit else None
            assert max(sizes[size]) == min(limit, max(w, h)) and (expected is None or sizes[size] == expected)
            assert abs(sizes[size][0] / sizes[size][1] - w / h) < 0.02
    dup, src = next(iter(world.duplicates.items()))
    assert (
        requests.get(photo_url(fake, dup), timeout=5).content == requests.get(photo_url(fake, src), timeout=5).content
    )
    assert fake.photo_bytes(big) != fake.photo_bytes(modest)
    tiny = next(iter(world.tiny_photo_ids))
    assert max(Image.open(io.BytesIO(fake.photo_bytes(tiny, "original"))).size) < 100
    for bad in ("/photos/1/medium.jpg", f"/photos/{big}/huge.jpg", f"/photos/{big}/medium.png", "/other"):
        assert requests.get(fake.photo_base + bad, timeout=5).status_code == 404, bad


# ------------------------------------------------------------------------------------------------ faults


async def _get(session, url, timeout=5.0):
    """(status, headers, body) or the exception raised."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return resp.status, resp.headers, await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        return exc


TRANSIENT = {
    "api_429": lambda r: r[0] == 429 and r[1]["Retry-After"] == "1",
    "api_500": lambda r: r[0] == 500,
    "api_503": lambda r: r[0] == 503 and r[1]["Retry-After"] == "1",
    "api_slow": lambda r: isinstance(r, asyncio.TimeoutError),
    "api_reset": lambda r: isinstance(r, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)),
    "photo_429": lambda r: r[0] == 429 and r[1]["Retry-After"] == "1",
    "photo_500": lambda r: r[0] == 500,
    "photo_503": lambda r: r[0] == 503 and r[1]["Retry-After"] == "1",
    "photo_slow": lambda r: isinstance(r, asyncio.TimeoutError),
    "photo_reset": lambda r: isinstance(r, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)),
    "photo_truncated": lambda r: isinstance(r, aiohttp.ClientPayloadError),
}


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_transient_fault_is_observable_then_capped(world, name):
    faults = Faults(**{name: 1.0}, slow_seconds=2.0)

    async def main():
        async with FakeINat(world, faults=faults, seed=SEED) as fake, aiohttp.ClientSession() as session:
            pid = world[0]["photos"][0]["id"]
            url = f"{fake.api_url}/observations?per_page=3" if name.startswith("api") else photo_url(fake, pid)
            results = [await _get(session, url, timeout=0.25) for _ in range(3)]
            return fake, pid, results

    fake, pid, results = asyncio.run(main())
    log = fake.api_log if name.startswith("api") else fake.photo_log
    assert TRANSIENT[name](results[0]), results[0]
    if name.endswith("reset"):
        # aiohttp silently retries an idempotent request once after a reset, so one client call costs two
        # server requests here: both reset, and the next call succeeds.
        assert [r.status for r in log[:3]] == [0, 0, 200] and log[0].nbytes == 0
        ok = results[1]
    else:
        assert TRANSIENT[name](results[1]), results[1]
        assert len(log) == 3
        ok = results[2]
    assert not isinstance(ok, Exception) and ok[0] == 200  # never more than 2 faults in a row for one URL
    if name.startswith("photo"):
        assert ok[2] == fake.photo_bytes(pid, "medium")
    if name == "photo_truncated":
        assert 0 < log[0].nbytes < len(fake.photo_bytes(pid, "medium")) == log[2].nbytes


def test_permanent_photo_faults(world):
    async def main(faults):
        async with FakeINat(world, faults=faults, seed=SEED) as fake, aiohttp.ClientSession() as session:
            pid = fake.photo_ids()[3]
            return fake, pid, [await _get(session, photo_url(fake, pid)) for _ in range(3)]

    fake, pid, results = asyncio.run(main(Faults(photo_html=1.0)))
    assert fake.permanent_fault(pid) == "photo_html"
    for status, headers, body in results:
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and body.startswith(b"<!DOCTYPE html")
        with pytest.raises(UnidentifiedImageError):
            Image.open(io.BytesIO(body))

    fake, pid, results = asyncio.run(main(Faults(photo_wrong_type=1.0)))
    for status, headers, body in results:
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert body == fake.photo_bytes(pid, "medium")
        Image.open(io.BytesIO(body)).load()  # a content-checking client accepts it

    fake, pid, results = asyncio.run(main(Faults(photo_corrupt=1.0)))
    assert len({r[2] for r in results}) == 1  # the same bad bytes every time
    for status, headers, body in results:
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
        im = Image.open(io.BytesIO(body))
        assert im.format == "JPEG" and im.size == Image.open(io.BytesIO(fake.photo_bytes(pid, "medium"))).size
        with pytest.raises(OSError):
            im.load()


def test_permanent_faults_are_a_stable_share_of_photo_ids(world):
    faults = Faults(photo_html=0.1, photo_wrong_type=0.1, photo_corrupt=0.1)
    a, b = FakeINat(world, faults=faults, seed=1), FakeINat(world, faults=faults, seed=1)
    kinds = Counter(a.permanent_fault(p) for p in a.photo_ids())
    assert [a.permanent_fault(p) for p in a.photo_ids()] == [b.permanent_fault(p) for p in b.photo_ids()]
    n = len(a.photo_ids())
    for name in ("photo_html", "photo_wrong_type", "photo_corrupt"):
        assert 0.05 * n < kinds[name] < 0.15 * n


def test_three_attempts_always_succeed_under_heavy_random_faults(world):
    faults = Faults.everything(0.3, slow_seconds=1.0)
    for name in ("photo_html", "photo_wrong_type", "photo_corrupt"):
        setattr(faults, name, 0.0)

    async def main():
        async with FakeINat(world, faults=faults, seed=11) as fake, aiohttp.ClientSession() as session:
            urls = [photo_url(fake, p) for p in fake.photo_ids()[:25]]
            urls += [f"{fake.api_url}/observations?per_page=2&page={i}" for i in range(1, 11)]

            async def attempts(url):
                outcomes = []
                for _ in range(3):
                    r = await _get(session, url, timeout=0.3)
                    outcomes.append(r)
                    if not isinstance(r, Exception) and r[0] == 200:
                        break
                return outcomes

            return fake, await asyncio.gather(*(attempts(u) for u in urls))

    fake, outcomes = asyncio.run(main())
    assert all(not isinstance(o[-1], Exception) and o[-1][0] == 200 for o in outcomes)
    assert sum(len(o) > 1 for o in outcomes) >= 10  # faults really happened
    statuses = Counter(r.status for r in fake.api_log + fake.photo_log)
    assert statuses[0] and statuses[429] and statuses[500] and statuses[503]


# ------------------------------------------------------------------------------------------------ logs, latency


def test_logs_record_every_request_with_user_agent(world):
    with FakeINat(world, faults=Faults(api_500=1.0), seed=SEED, api_latency=0.05).running() as fake:
        ua = {"User-Agent": "inpaintbench-test/1.0 (me@example.org)"}
        t0 = time.monotonic()
        for _ in range(3):
            requests.get(f"{fake.api_url}/observations?per_page=1", headers=ua, timeout=5)
        assert time.monotonic() - t0 >= 0.15  # api_latency per request
        pid = fake.photo_ids()[0]
        body = requests.get(photo_url(fake, pid, "small"), headers=ua, timeout=5).content
        requests.get(fake.photo_base + "/photos/1/small.jpg", headers=ua, timeout=5)
    assert [r.status for r in fake.api_log] == [500, 500, 200]
    assert all(r.user_agent == ua["User-Agent"] and isinstance(r, tuple) and len(r) == 5 for r in fake.api_log)
    assert fake.api_log[0].path_qs == "/v1/observations?per_page=1"
    assert [(r.status, r.nbytes) for r in fake.photo_log] == [(200, len(body)), (404, fake.photo_log[1].nbytes)]
    times = [r.t for r in fake.api_log]
    assert times == sorted(times) and t0 <= times[0] <= time.monotonic()
    assert max_requests_in_window(fake.api_log) == 3
    assert max_requests_in_window([(0.0,), (5.0,), (9.99,), (10.0,), (19.5,)]) == 3


def test_standalone_process_serves_until_terminated(tmp_path):
    port_file, log_file = tmp_path / "ports.json", tmp_path / "log.json"
    cmd = [sys.executable, "-m", "tests.fakes.inat_process", "--counts", "118552=5,47144=5,3=10"]
    cmd += ["--photo-latency", "0.02", "--port-file", str(port_file), "--log-file", str(log_file)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        info = read_port_file(port_file, timeout=30, proc=proc)
        assert info["api_url"].endswith("/v1") and info["observations"] == 20
        body = requests.get(f"{info['api_url']}/observations", params={"per_page": 1}, timeout=5).json()
        assert body["total_results"] == 20
        url = body["results"][0]["photos"][0]["url"].replace("/square.", "/medium.")
        assert url.startswith(info["photo_base"]) and requests.get(url, timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    logs = json.loads(log_file.read_text())
    assert len(logs["api_log"]) == 1 and len(logs["photo_log"]) == 1 and os.path.exists(port_file)
