"""What services need to know about the clinic and the moment of the request."""

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
