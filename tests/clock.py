"""The clinic's clock, moved by a test: the service reads "now" through `adapters.clinic_now`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from app import adapters


class Clock:
    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def later(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)

    def set(self, day: dt.date, at: str, tz: dt.tzinfo = dt.UTC) -> None:
        """Make the clinic's now `day` at `at` (HH:MM) in `tz`."""
        wanted = dt.datetime.combine(day, dt.time.fromisoformat(at), tzinfo=tz)
        self.offset = wanted - dt.datetime.now(dt.UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    moved = Clock()
    real = adapters.clinic_now
    monkeypatch.setattr(adapters, "clinic_now", lambda settings: real(settings) + moved.offset)
    yield moved
