"""The polite client's pieces: Retry-After parsing, the daily budget, settings checks."""

from __future__ import annotations

import email.utils
import time

import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets import polite
from inpaintbench.datasets.polite import DailyBudget, PermanentError, Politeness, retry_after_seconds


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("7") == 7.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(future) <= 31
    assert retry_after_seconds(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_daily_budget_counts_across_runs_and_forgets_after_a_day(tmp_path):
    ledger = tmp_path / "requests.log"
    ledger.write_text(f"{time.time() - 25 * 3600:.3f}\n{time.time() - 60:.3f}\nnot-a-time\n")
    budget = DailyBudget(ledger, limit=3)
    assert len(budget.times) == 1  # the old entry and the garbage line are dropped
    budget.take()
    budget.take()
    with pytest.raises(InpaintbenchError, match="daily API budget of 3 requests is spent"):
        budget.take()
    assert len(DailyBudget(ledger, limit=3).times) == 3  # a new run sees the same count


@pytest.mark.parametrize("setting", [{"requests_per_second": 0}, {"concurrency": 0}, {"max_retries": -1}])
def test_bad_politeness_settings(setting):
    with pytest.raises(InpaintbenchError, match=f"{next(iter(setting))} must be"):  # each refused by its name
        Politeness(**setting)


def test_a_body_is_bounded_after_gzip_decompression(monkeypatch):
    import asyncio
    import gzip

    from aiohttp import ClientSession, web

    monkeypatch.setattr(polite, "MAX_RESPONSE_BYTES", 1 << 20)
    bodies = {"/bomb": gzip.compress(bytes(4 << 20)), "/page": gzip.compress(b'{"results": []}')}  # 4 MiB -> 4 KB

    async def handler(request):
        return web.Response(body=bodies[request.path], headers={"Content-Encoding": "gzip"},
                            content_type="application/json")

    async def run():
        app = web.Application()
        app.router.add_get("/{name}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/bomb") as response:
                    with pytest.raises(PermanentError, match="response larger than 1 MiB; refused"):
                        await polite._bounded_body(response)
                async with session.get(f"http://127.0.0.1:{port}/page") as response:
                    assert await polite._bounded_body(response) == b'{"results": []}'
        finally:
            await runner.cleanup()

    asyncio.run(run())
