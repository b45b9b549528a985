"""The polite client's pieces: Retry-After parsing, the daily budget, settings checks."""

from __future__ import annotations

import email.utils
import time

import pytest

from inpaintbench._registry import InpaintbenchError
from inpaintbench.datasets.polite import DailyBudget, Politeness, retry_after_seconds


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
    with pytest.raises(InpaintbenchError):
        Politeness(**setting)
