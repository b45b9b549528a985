"""Faults of the fake iNaturalist (``Faults``), the per-URL gate that draws them, and the request log records."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Sequence
from typing import NamedTuple

from aiohttp import web

API_FAULTS = ("api_429", "api_500", "api_503", "api_slow", "api_reset")
PHOTO_TRANSIENT = ("photo_429", "photo_500", "photo_503", "photo_slow", "photo_reset", "photo_truncated")
PHOTO_PERMANENT = ("photo_html", "photo_wrong_type", "photo_corrupt")


@dataclasses.dataclass
class Faults:
    """Fault probabilities (per request for transient faults, per photo id for permanent ones); all default 0.

    Transient faults are drawn from a seeded RNG (one draw per request), but never more than
    ``max_consecutive_faults`` times in a row for the same URL (path plus sorted query), so a client making
    ``max_consecutive_faults + 1`` attempts always succeeds. Permanent photo faults are a fixed property of a photo
    id (hash of seed and id): every request for any size of that photo gets the same bad answer. Where the
    probabilities of one group (API, photo transient, photo permanent) sum to more than 1 they are scaled to sum to 1.

    Attributes:
        api_429: HTTP 429 with ``Retry-After: <retry_after>`` and a JSON error body.
        api_500: HTTP 500 with a JSON error body.
        api_503: HTTP 503 with ``Retry-After`` and a JSON error body.
        api_slow: wait ``slow_seconds`` before answering normally (a client timeout should fire first).
        api_reset: abort the TCP connection (RST) without a response.
        photo_429: like ``api_429`` on the photo host (plain-text body).
        photo_500: HTTP 500 (S3-style XML body).
        photo_503: HTTP 503 ``SlowDown`` with ``Retry-After`` (S3-style XML body).
        photo_slow: wait ``slow_seconds`` before answering.
        photo_reset: abort the connection without a response.
        photo_truncated: full ``Content-Length`` header, then only part of the body, then close.
        photo_html: permanent; 200 with ``Content-Type: image/jpeg`` but the body is an HTML quota page.
        photo_wrong_type: permanent; the correct JPEG bytes but ``Content-Type: text/html; charset=utf-8``.
        photo_corrupt: permanent; 200 ``image/jpeg`` whose entropy data is garbled and cut (PIL ``load()`` fails).
        retry_after: seconds in ``Retry-After`` headers.
        slow_seconds: delay of the slow faults.
        max_consecutive_faults: cap on transient faults in a row for one URL.
    """

    api_429: float = 0.0
    api_500: float = 0.0
    api_503: float = 0.0
    api_slow: float = 0.0
    api_reset: float = 0.0
    photo_429: float = 0.0
    photo_500: float = 0.0
    photo_503: float = 0.0
    photo_slow: float = 0.0
    photo_reset: float = 0.0
    photo_truncated: float = 0.0
    photo_html: float = 0.0
    photo_wrong_type: float = 0.0
    photo_corrupt: float = 0.0
    retry_after: int = 1
    slow_seconds: float = 30.0
    max_consecutive_faults: int = 2

    @classmethod
    def everything(
        cls, p: float, *, slow_seconds: float = 30.0, retry_after: int = 1, max_consecutive_faults: int = 2
    ) -> Faults:
        """Every fault kind with probability ``p`` (pass a short ``slow_seconds`` to keep tests fast)."""
        probs = {name: p for name in (*API_FAULTS, *PHOTO_TRANSIENT, *PHOTO_PERMANENT)}
        return cls(
            **probs, slow_seconds=slow_seconds, retry_after=retry_after, max_consecutive_faults=max_consecutive_faults
        )


class LogRecord(NamedTuple):
    """One request as the server saw it.

    ``t`` is ``time.monotonic()`` at arrival; ``status`` is 0 when the connection was aborted without a response;
    ``nbytes`` is the number of body bytes sent (partial for truncated responses).
    """

    t: float
    path_qs: str
    status: int
    nbytes: int
    user_agent: str


def max_requests_in_window(log: Sequence[LogRecord | tuple], window: float = 10.0) -> int:
    """Largest number of logged requests whose arrival times fall within any ``window``-second span."""
    times = sorted(r[0] for r in log)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class Gate:
    """Draws transient faults with the per-URL consecutive cap (probabilities summing over 1 are scaled to 1)."""

    def __init__(self, faults: Faults, names: Sequence[str], seed: int, salt: str):
        table = [(n, float(getattr(faults, n))) for n in names if getattr(faults, n) > 0]
        total = sum(p for _, p in table)
        self.table = [(n, p / total) for n, p in table] if total > 1 else table
        self.cap = faults.max_consecutive_faults
        self.rng = random.Random(f"{salt}-{seed}")
        self.streak: dict[str, int] = {}

    def draw(self, key: str) -> str | None:
        if not self.table:
            return None
        r = self.rng.random()
        choice = None
        acc = 0.0
        for name, p in self.table:
            acc += p
            if r < acc:
                choice = name
                break
        if choice is None or self.streak.get(key, 0) >= self.cap:
            self.streak.pop(key, None)
            return None
        self.streak[key] = self.streak.get(key, 0) + 1
        return choice


def url_key(request: web.Request) -> str:
    return request.path + "?" + "&".join(sorted(f"{k}={v}" for k, v in request.query.items()))


def hash_unit(*parts: object) -> float:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
