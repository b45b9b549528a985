"""A polite asynchronous HTTP client: rate limits, a daily request budget, a media budget, retries.

Used by the iNaturalist scraper, whose API asks for about one request per second, at most 10,000 requests a
day and at most 5 GB of media per hour. Rate limiting is aiolimiter's leaky bucket; retries are tenacity's,
with Retry-After honoured on 429 and 503 and exponential backoff with jitter on other transient failures
(5xx, timeouts, connection resets, truncated bodies).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import tenacity
from aiolimiter import AsyncLimiter

from .._io import atomic_write
from .._registry import InpaintbenchError

# Statuses worth another try; 429 and 503 may carry Retry-After.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# The bucket spaces requests slightly wider than the configured rate, so that network jitter between the
# client and the server can never make the server count more requests than the rate in a window.
RATE_MARGIN = 1.02
# An API page is well under a megabyte and a "large" photo a few: a longer body (after aiohttp's gzip
# decompression) is refused rather than held in memory
MAX_RESPONSE_BYTES = 64 << 20


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's wish in seconds, when it said one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure that another try would repeat (404, a refused request)."""


@dataclass(frozen=True)
class Politeness:
    """How hard the client may use a service.

    Attributes:
        requests_per_second: API requests per second (a token bucket with no burst).
        requests_per_day: API requests in any 24 hours, counted across runs in a ledger file.
        media_gb_per_hour: downloaded media per hour (charged after each download).
        concurrency: downloads in flight at once.
        timeout_s: total time allowed for one request.
        max_retries: further tries after the first for a transient failure.
        max_retry_after_s: the longest Retry-After that is honoured as is (longer ones are capped).
        contact: an e-mail or URL naming who runs the scraper, sent in the User-Agent.

    """

    requests_per_second: float = 1.0
    requests_per_day: int = 10_000
    media_gb_per_hour: float = 5.0
    concurrency: int = 16
    timeout_s: float = 30.0
    max_retries: int = 5
    max_retry_after_s: float = 600.0
    contact: str = ""

    def __post_init__(self) -> None:
        for name in ("requests_per_second", "requests_per_day", "media_gb_per_hour", "concurrency", "timeout_s"):
            if getattr(self, name) <= 0:
                raise InpaintbenchError(f"politeness setting {name} must be positive, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise InpaintbenchError(f"max_retries must be >= 0, got {self.max_retries}")


class DailyBudget:
    """At most ``limit`` requests in any 24 hours, counted in a ledger file so that reruns count too."""

    WINDOW_S = 24 * 3600.0

    def __init__(self, ledger: Path, limit: int) -> None:
        self.ledger, self.limit = Path(ledger), limit
        now = time.time()
        lines = self.ledger.read_text().split() if self.ledger.exists() else []
        self.times = [t for t in (_float(x) for x in lines) if t is not None and now - t < self.WINDOW_S]
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        # rewritten whole under a temporary name: a torn ledger would forget requests and overspend the budget
        atomic_write(self.ledger, lambda tmp: tmp.write_text("".join(f"{t:.3f}\n" for t in self.times)))

    def take(self) -> None:
        """Count one request, or raise InpaintbenchError when the budget of the last 24 hours is spent."""
        now = time.time()
        self.times = [t for t in self.times if now - t < self.WINDOW_S]
        if len(self.times) >= self.limit:
            free_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.times[0] + self.WINDOW_S))
            raise InpaintbenchError(f"daily API budget of {self.limit} requests is spent; what was fetched is kept, "
                                    f"run the same command again after {free_at}")
        self.times.append(now)
        with self.ledger.open("a") as f:
            f.write(f"{now:.3f}\n")


async def _bounded_body(response: aiohttp.ClientResponse) -> bytes:
    """The body, decompressed as aiohttp does, refused past MAX_RESPONSE_BYTES (a gzip bomb stops there)."""
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise PermanentError(f"response larger than {MAX_RESPONSE_BYTES >> 20} MiB; refused")
        chunks.append(chunk)
    return b"".join(chunks)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class PoliteClient:
    """An aiohttp session behind the rate limits, with retries. Use as ``async with PoliteClient(...) as c``.

    Args:
        politeness: the limits.
        user_agent: the User-Agent header (names the tool and the contact).
        budget_ledger: file that counts API requests of the last 24 hours.

    """

    def __init__(self, politeness: Politeness, user_agent: str, budget_ledger: Path) -> None:
        self.politeness = politeness
        self.user_agent = user_agent
        self.budget = DailyBudget(budget_ledger, politeness.requests_per_day)
        self.api_limiter = AsyncLimiter(1, RATE_MARGIN / politeness.requests_per_second)
        # The hourly media budget drips in 10-second portions, so no burst exceeds 1/360 of it.
        self.media_limiter = AsyncLimiter(politeness.media_gb_per_hour * 1e9 / 360, 10)
        self.downloads = asyncio.Semaphore(politeness.concurrency)
        self.api_requests = 0
        self.media_bytes = 0
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PoliteClient:
        connector = aiohttp.TCPConnector(limit=self.politeness.concurrency + 4)
        self.session = aiohttp.ClientSession(
            headers={"User-Agent": self.user_agent}, connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.politeness.timeout_s))
        # aiohttp resends an idempotent request once, by itself, when the connection drops (RFC 9112 9.3.1).
        # That second request would bypass the rate limiter, so every retry goes through tenacity instead.
        # There is no public switch; aiohttp's own test client sets the same attribute.
        if hasattr(self.session, "_retry_connection"):
            self.session._retry_connection = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    def _retrying(self) -> tenacity.AsyncRetrying:
        backoff = tenacity.wait_exponential_jitter(multiplier=0.5, max=60, jitter=0.5)
        cap = self.politeness.max_retry_after_s

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, TransientError) and error.retry_after is not None:
                return min(error.retry_after, cap)
            return backoff(state)

        return tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(TransientError), wait=wait, reraise=True,
            stop=tenacity.stop_after_attempt(self.politeness.max_retries + 1))

    async def _fetch(self, url: str, params: dict[str, Any] | None) -> tuple[bytes, str]:
        """One attempt: the body and its content type, or TransientError / PermanentError."""
        try:
            async with self.session.get(url, params=params) as response:
                if response.status in TRANSIENT_STATUSES:
                    raise TransientError(f"HTTP {response.status}",
                                         retry_after_seconds(response.headers.get("Retry-After")))
                body = await _bounded_body(response)
                if response.status != 200:
                    raise PermanentError(f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
                return body, response.headers.get("Content-Type", "")
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as err:
            raise TransientError(f"{type(err).__name__}: {err}".strip(": ")) from err

    async def get_json(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET an API URL under the rate limit and the daily budget, with retries; return the decoded JSON."""
        async for attempt in self._retrying():
            with attempt:
                await self.api_limiter.acquire()
                self.budget.take()
                self.api_requests += 1
                body, _ = await self._fetch(url, params)
                try:
                    return json.loads(body)
                except ValueError as err:  # a cut or garbled body: the next try usually succeeds
                    raise TransientError(f"invalid JSON ({len(body)} bytes)") from err
        raise AssertionError("unreachable")  # tenacity re-raises the last error

    async def get_media(self, url: str) -> tuple[bytes, str]:
        """GET a media file with bounded concurrency, retries and the media budget; return body, content type."""
        async with self.downloads:
            async for attempt in self._retrying():
                with attempt:
                    body, content_type = await self._fetch(url, None)
            self.media_bytes += len(body)
            await self.media_limiter.acquire(min(len(body), self.media_limiter.max_rate))
            return body, content_type
        raise AssertionError("unreachable")
