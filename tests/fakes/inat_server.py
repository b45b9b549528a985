"""A fake iNaturalist API v1 plus a fake photo host, for scraper tests and benchmarks.

Two aiohttp apps on 127.0.0.1 with OS-chosen ports:

* the API host, ``GET {api_url}/observations`` (``api_url`` ends in ``/v1``) with the filters, paging, ordering,
  ``per_page`` clamp and 10,000-result window of the real API (the project's reference notes, data_anchors.md
  section 1), answering with the real response shape (envelope ``total_results, page, per_page, results``, as in
  pyinaturalist's recorded ``v1/get_observations_page1.json``);
* a photo host (stands in for ``inaturalist-open-data.s3.amazonaws.com`` and ``static.inaturalist.org``),
  ``GET {photo_base}/photos/<id>/<size>.jpg`` serving deterministic synthetic JPEGs at the real size rules.

Both hosts log every request and can inject faults (``Faults``, tests/fakes/inat_faults.py);
``make_world`` (tests/fakes/inat_world.py) builds the observations, and ``ObservationIndex``
(tests/fakes/inat_query.py) answers the API's queries.

Start it with ``async with FakeINat(world) as fake`` (inside a loop), ``with FakeINat(world).running() as fake``
(from synchronous code: the servers run on a background thread), or as a process (tests/fakes/inat_process.py)::

    python -m tests.fakes.inat_process --counts 118552=300,47144=300,3=300 --photo-latency 0.02 --port-file F
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from tests.fakes.inat_faults import (
    API_FAULTS,
    PHOTO_PERMANENT,
    PHOTO_TRANSIENT,
    Faults,
    Gate,
    LogRecord,
    hash_unit,
    url_key,
)
from tests.fakes.inat_query import ObservationIndex, Row, json_response
from tests.fakes.inat_world import (
    PHOTO_HOST_RE,
    PHOTO_SIZES,
    QUOTA_HTML,
    corrupt_jpeg,
    encode_jpeg,
    render_photo,
)

# --------------------------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _PhotoInfo:
    content_id: int
    width: int
    height: int


def _public(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [_public(v) for v in obj]
    return obj


class FakeINat:
    """Fake iNaturalist API v1 host plus photo host (see the module docstring).

    Attributes:
        api_url: ``http://127.0.0.1:<port>/v1`` once started.
        photo_base: ``http://127.0.0.1:<port>`` once started; photos are at ``{photo_base}/photos/<id>/<size>.jpg``.
        observations: the served observations as the API returns them (photo URLs on ``photo_base``) once
            started; the input observations before.
        api_log: ``LogRecord`` per request that reached the API host (faulted and 404 ones included).
        photo_log: the same for the photo host.
        faults: the ``Faults`` in force.
    """

    def __init__(
        self,
        observations: Sequence[dict],
        *,
        faults: Faults | None = None,
        seed: int = 0,
        photo_latency: float = 0.0,
        api_latency: float = 0.0,
        cache_bytes: int = 256 << 20,
    ):
        self.faults = faults or Faults()
        self.seed = seed
        self.photo_latency = photo_latency
        self.api_latency = api_latency
        self.observations: list[dict] = list(observations)
        self.api_log: list[LogRecord] = []
        self.photo_log: list[LogRecord] = []
        self.api_url = ""
        self.photo_base = ""
        self._cache_budget = cache_bytes
        self._cache: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._cache_size = 0
        self._lock = threading.Lock()
        self._api_gate = Gate(self.faults, API_FAULTS, seed, "api")
        self._photo_gate = Gate(self.faults, PHOTO_TRANSIENT, seed, "photo")
        self._photos: dict[int, _PhotoInfo] = {}
        rows: list[Row] = []
        for obs in self.observations:
            photos = obs.get("photos") or []
            all_photos = [*photos, *(op["photo"] for op in obs.get("observation_photos") or [])]
            for p in all_photos:
                dims = p.get("original_dimensions") or {}
                info = _PhotoInfo(int(p.get("_content_id", p["id"])), int(dims["width"]), int(dims["height"]))
                self._photos.setdefault(int(p["id"]), info)
            taxon = obs.get("taxon") or {}
            rows.append(
                Row(
                    id=int(obs["id"]),
                    created_at=obs.get("created_at") or "",
                    updated_at=obs.get("updated_at") or obs.get("created_at") or "",
                    observed_on=obs.get("observed_on") or "",
                    ancestors=frozenset(taxon.get("ancestor_ids") or ([taxon["id"]] if taxon.get("id") else [])),
                    iconic=(taxon.get("iconic_taxon_name") or "unknown").lower(),
                    licenses=frozenset(
                        p.get("license_code").lower() if p.get("license_code") else None for p in photos
                    ),
                    quality=obs.get("quality_grade") or "casual",
                    captive=bool(obs.get("captive")),
                    obs_license=(obs.get("license_code") or None),
                    n_photos=len(photos),
                )
            )
        self._index = ObservationIndex(rows, seed)
        self._runners: list[web.AppRunner] = []
        self._closing: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FakeINat:
        """Bind both hosts on 127.0.0.1 (OS-chosen ports) and start serving."""
        self._closing = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-inat-photo")
        api_app = web.Application()
        api_app.router.add_get("/v1/observations", self._handle_observations)
        api_app.router.add_route("*", "/{tail:.*}", self._handle_api_404)
        photo_app = web.Application()
        photo_app.router.add_get("/photos/{pid}/{name}", self._handle_photo)
        photo_app.router.add_route("*", "/{tail:.*}", self._handle_photo_404)
        ports = []
        for app in (api_app, photo_app):
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
            await runner.setup()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(256)
            sock.setblocking(False)
            await web.SockSite(runner, sock, backlog=256).start()
            self._runners.append(runner)
            ports.append(sock.getsockname()[1])
        self.api_url = f"http://127.0.0.1:{ports[0]}/v1"
        self.photo_base = f"http://127.0.0.1:{ports[1]}"
        self._publish()
        return self

    def _publish(self) -> None:
        """Serialise observations once, with photo URLs on this photo host."""
        texts = []
        ordered = sorted(self.observations, key=lambda o: o["id"])
        for row, obs in zip(self._index.rows, ordered, strict=True):
            text = PHOTO_HOST_RE.sub(self.photo_base, json.dumps(_public(obs), ensure_ascii=False))
            row.json = text
            texts.append(text)
        self.observations = json.loads("[" + ",".join(texts) + "]")

    async def stop(self) -> None:
        """Stop both hosts (in-flight slow responses are cut short)."""
        if self._closing is not None:
            self._closing.set()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> FakeINat:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeINat]:
        """Serve from an event loop on a background thread, for synchronous callers.

        Yields:
            This server, started (``api_url`` and ``photo_base`` set).
        """
        loop = asyncio.new_event_loop()
        started = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, name="fake-inat", daemon=True)
        thread.start()
        started.wait()
        if errors:
            thread.join()
            loop.close()
            raise errors[0]
        self._thread_loop = loop
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
            self._thread_loop = None

    # ---------------------------------------------------------------- helpers for tests

    def clear_logs(self) -> None:
        """Empty ``api_log`` and ``photo_log``."""
        self.api_log.clear()
        self.photo_log.clear()

    def photo_ids(self) -> list[int]:
        """Ids of every photo the photo host serves."""
        return sorted(self._photos)

    def permanent_fault(self, photo_id: int) -> str | None:
        """The permanent fault of a photo (``"photo_html"``, ``"photo_wrong_type"``, ``"photo_corrupt"``) or None."""
        u = hash_unit(self.seed, photo_id, "permanent")
        probs = [(name, float(getattr(self.faults, name))) for name in PHOTO_PERMANENT]
        total = sum(p for _, p in probs)
        acc = 0.0
        for name, p in probs:
            acc += p / total if total > 1 else p
            if u < acc:
                return name
        return None

    def photo_bytes(self, photo_id: int, size: str = "original") -> bytes:
        """The correct JPEG bytes of a photo size (what a fault-free request returns); cached.

        Raises:
            KeyError: unknown photo id or size.
        """
        info = self._photos[photo_id]
        if size not in PHOTO_SIZES:
            raise KeyError(size)
        key = (info.content_id, size)
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        data = encode_jpeg(render_photo(self.seed, info.content_id, info.width, info.height, size))
        with self._lock:
            if key not in self._cache:
                self._cache[key] = data
                self._cache_size += len(data)
                while self._cache_size > self._cache_budget and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._cache_size -= len(old)
        return data

    def prewarm(self, sizes: Iterable[str] = ("medium",), workers: int = 8) -> None:
        """Generate (and cache) the given sizes of every photo now, so serving them later costs nothing."""
        jobs = [(pid, size) for size in sizes for pid in self._photos]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda job: self.photo_bytes(*job), jobs))

    # ---------------------------------------------------------------- request plumbing

    def _log(self, log: list[LogRecord], request: web.Request, t0: float, status: int, nbytes: int) -> None:
        log.append(LogRecord(t0, request.path_qs, status, nbytes, request.headers.get("User-Agent", "")))

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._closing is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    @staticmethod
    def _abort(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=500)  # never reaches the client

    async def _handle_api_404(self, request: web.Request) -> web.Response:
        t0 = time.monotonic()
        status, body, headers = json_response({"error": "Not found", "status": 404}, 404)
        self._log(self.api_log, request, t0, status, len(body))
        return web.Response(status=status, body=body, headers=headers)

    async def _handle_photo_404(self, request: web.Request) -> web.Response:
        t0 = time.monotonic()
        body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
        self._log(self.photo_log, request, t0, 404, len(body))
        return web.Response(status=404, body=body, content_type="application/xml")

    # ---------------------------------------------------------------- API host

    async def _handle_observations(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        fault = self._api_gate.draw(url_key(request))
        ra = {"Retry-After": str(int(self.faults.retry_after))}
        if fault == "api_reset":
            self._log(self.api_log, request, t0, 0, 0)
            await self._sleep(self.api_latency)
            return self._abort(request)
        if fault == "api_429":
            status, body, headers = json_response({"error": "Too Many Requests", "status": 429}, 429, ra)
        elif fault == "api_500":
            status, body, headers = json_response({"error": "Internal Server Error", "status": 500}, 500)
        elif fault == "api_503":
            status, body, headers = json_response({"error": "Service Unavailable", "status": 503}, 503, ra)
        else:
            status, body, headers = self._index.search(request.query)
        self._log(self.api_log, request, t0, status, len(body))
        delay = self.api_latency + (self.faults.slow_seconds if fault == "api_slow" else 0.0)
        await self._sleep(delay)
        return web.Response(status=status, body=body, headers=headers)

    # ---------------------------------------------------------------- photo host

    async def _handle_photo(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        pid_s, name = request.match_info["pid"], request.match_info["name"]
        size, _, ext = name.partition(".")
        info = self._photos.get(int(pid_s)) if pid_s.isdigit() else None
        if info is None or size not in PHOTO_SIZES or ext.lower() != "jpg":
            return await self._handle_photo_404(request)
        pid = int(pid_s)
        fault = self._photo_gate.draw(url_key(request))
        if fault == "photo_reset":
            self._log(self.photo_log, request, t0, 0, 0)
            await self._sleep(self.photo_latency)
            return self._abort(request)
        ra = {"Retry-After": str(int(self.faults.retry_after))}
        if fault == "photo_429":
            body = b"Too Many Requests"
            self._log(self.photo_log, request, t0, 429, len(body))
            await self._sleep(self.photo_latency)
            return web.Response(status=429, body=body, content_type="text/plain", headers=ra)
        if fault in ("photo_500", "photo_503"):
            status = 500 if fault == "photo_500" else 503
            code = "InternalError" if status == 500 else "SlowDown"
            body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>".encode()
            self._log(self.photo_log, request, t0, status, len(body))
            await self._sleep(self.photo_latency)
            return web.Response(
                status=status, body=body, content_type="application/xml", headers=ra if status == 503 else None
            )

        permanent = self.permanent_fault(pid)
        content_type = "image/jpeg"
        if permanent == "photo_html":
            body = QUOTA_HTML
        else:
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(self._executor, self.photo_bytes, pid, size)
            if permanent == "photo_wrong_type":
                content_type = "text/html; charset=utf-8"
            elif permanent == "photo_corrupt":
                body = corrupt_jpeg(body, pid)
        headers = {
            "Content-Type": content_type,
            "ETag": '"' + hashlib.md5(body).hexdigest() + '"',
            "Cache-Control": "max-age=31536000",
        }
        delay = self.photo_latency + (self.faults.slow_seconds if fault == "photo_slow" else 0.0)
        if fault == "photo_truncated" and request.method == "GET":
            part = body[: max(1, len(body) // 3)]
            self._log(self.photo_log, request, t0, 200, len(part))
            await self._sleep(delay)
            resp = web.StreamResponse(status=200, headers=headers)
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(part)
            if request.transport is not None:
                request.transport.close()
            return resp
        self._log(self.photo_log, request, t0, 200, len(body))
        await self._sleep(delay)
        return web.Response(status=200, body=body, headers=headers)
