"""What services need to know about the request: the clinic, its clock, and who is asking."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Clinic:
    tz: ZoneInfo
    now: dt.datetime
    default_region: str | None
    calendar_enabled: bool
    rag_enabled: bool = False

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.tz).date()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked for a change: the API key's name and the phone call's correlation id."""

    actor: str
    correlation_id: str | None = None
