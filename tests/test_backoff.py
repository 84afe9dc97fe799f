"""Retry timing: exponential backoff with jitter, capped, and Retry-After as a floor."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from app.services.outbox.delivery import parse_retry_after
from app.services.outbox.jobs import backoff_seconds


@given(attempts=st.integers(1, 30), retry_after=st.none() | st.floats(0, 1000))
def test_backoff_is_bounded_and_honours_retry_after(
    attempts: int, retry_after: float | None
) -> None:
    delay = backoff_seconds(attempts, base=1.0, cap=60.0, retry_after=retry_after)
    assert 0.5 <= delay <= 60.0
    if retry_after is None:
        assert delay <= max(0.5, min(60.0, 2 ** (attempts - 1)))
    else:
        assert delay >= min(retry_after, 60.0)


def test_backoff_grows_with_attempts() -> None:
    early = max(backoff_seconds(1, 1.0, 300.0, None) for _ in range(50))
    late = max(backoff_seconds(8, 1.0, 300.0, None) for _ in range(50))
    assert early <= 1.0 < late


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    parsed = parse_retry_after(format_datetime(when, usegmt=True))
    assert parsed is not None and 25 <= parsed <= 31
