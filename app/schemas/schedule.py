"""Working windows, the week they make up, date overrides and clinic holidays.

The week (`weekly_hours`) is what decides; the request's `working_days`/`working_hours` are
its summary, derived here and nowhere else (`summarise`), and still accepted on input
(`week_of`) as one window on each of those days.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.models.enums import WEEKDAYS
from app.schemas.appointment import AppointmentRead
from app.schemas.common import ClockTime, InputModel


class Window(BaseModel):
    """A stretch of working time within one day: start before end, never across midnight."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"example": {"start": "09:00", "end": "13:00"}}
    )

    start: ClockTime
    end: ClockTime

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: dt.time, info: Any) -> dt.time:
        start = info.data.get("start")
        if start is not None and start >= end:
            raise ValueError("end must be after start (a window cannot cross midnight)")
        return end


# The request's `working_hours` is one window.
WorkingHours = Window

MAX_WINDOWS_PER_DAY = 12


def _sorted_apart(windows: list[Window]) -> list[Window]:
    ordered = sorted(windows, key=lambda w: w.start)
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise ValueError(
                f"windows {before.start:%H:%M}-{before.end:%H:%M} and "
                f"{after.start:%H:%M}-{after.end:%H:%M} overlap"
            )
    return ordered


# Sorted by start, and never overlapping: one rule for the week's days and for overrides.
Windows = Annotated[
    list[Window], Field(max_length=MAX_WINDOWS_PER_DAY), AfterValidator(_sorted_apart)
]


class WeeklyHours(BaseModel):
    """Each weekday's windows, sorted by start; a day left out has none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "monday": [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "17:00"}],
                "tuesday": [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "17:00"}],
                "wednesday": [],
                "thursday": [
                    {"start": "09:00", "end": "13:00"},
                    {"start": "14:00", "end": "17:00"},
                ],
                "friday": [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "17:00"}],
                "saturday": [{"start": "09:00", "end": "12:00"}],
                "sunday": [],
            }
        },
    )

    monday: Windows = Field(default_factory=list)
    tuesday: Windows = Field(default_factory=list)
    wednesday: Windows = Field(default_factory=list)
    thursday: Windows = Field(default_factory=list)
    friday: Windows = Field(default_factory=list)
    saturday: Windows = Field(default_factory=list)
    sunday: Windows = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_window(self) -> WeeklyHours:
        if not any(self.day(d) for d in WEEKDAYS):
            raise ValueError("needs at least one window (make the doctor inactive instead)")
        return self

    def day(self, weekday: str) -> list[Window]:
        windows: list[Window] = getattr(self, weekday)
        return windows


def summarise(week: WeeklyHours) -> tuple[list[str], WorkingHours]:
    """The request's `working_days` (Monday first) and `working_hours` (earliest start to
    latest end) of a week. A week with no window at all has no summary: ValueError."""
    days = [d for d in WEEKDAYS if week.day(d)]
    if not days:
        raise ValueError("weekly_hours needs at least one window")
    windows = [w for d in days for w in week.day(d)]
    return days, WorkingHours(start=min(w.start for w in windows), end=max(w.end for w in windows))


def week_of(working_days: list[str], working_hours: WorkingHours) -> WeeklyHours:
    """The request's way: the same one window on each working day."""
    window = Window(start=working_hours.start, end=working_hours.end)
    return WeeklyHours.model_validate({d: [window] for d in working_days})


class OverrideWrite(InputModel):
    windows: Windows
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class OverrideRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    doctor_id: uuid.UUID
    date: dt.date
    windows: list[Window]
    reason: str | None


class OverrideWritten(OverrideRead):
    affected_appointments: list[AppointmentRead]


class HolidayWrite(InputModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class HolidayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    date: dt.date
    name: str


class HolidayWritten(HolidayRead):
    affected_appointments: list[AppointmentRead]
