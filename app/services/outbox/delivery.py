"""How a mirror delivery can fail: worth retrying, or not."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime


class RetryableDeliveryError(Exception):
    """A failure that may pass (network, timeout, 429, 5xx, rate limit)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(Exception):
    """A failure that retrying will not fix (a 4xx other than rate limits)."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
