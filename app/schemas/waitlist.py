"""The waitlist's bodies (SPEC "Waitlist"): an entry asked for, and an entry as it is now."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from app.models.enums import WEEKDAYS
from app.models.waitlist import WaitlistStatus
from app.schemas.common import CalendarDate, ClockTime, InputModel, format_clock
from app.schemas.patient import PatientCreate
from app.schemas.schedule import Window, Windows

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
CallId = Annotated[str, StringConstraints(max_length=200)]
# The criteria an entry with `appointment_id` takes from that appointment instead.
CRITERIA = ("doctor_id", "specialization", "language", "consultation_type", "visit_type_id")


class WaitlistEntryCreate(InputModel):
    """A patient waiting for a freed slot: a doctor or criteria (none: any doctor), dates,
    weekdays and times; or an earlier slot for `appointment_id`, their own upcoming visit."""

    patient_id: uuid.UUID | None = None
    patient: PatientCreate | None = None
    doctor_id: uuid.UUID | None = None
    specialization: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    language: ShortText | None = None
    consultation_type: ShortText | None = None
    visit_type_id: uuid.UUID | None = None
    start_date: CalendarDate
    end_date: CalendarDate
    weekdays: Annotated[list[str], Field(min_length=1, max_length=7)] | None = Field(
        default=None, description="Lowercase weekday names; absent: any day."
    )
    times: Annotated[Windows, Field(min_length=1)] | None = Field(
        default=None, description="Windows the visit must lie within; absent: any time."
    )
    appointment_id: uuid.UUID | None = Field(
        default=None,
        description="The patient's upcoming appointment they want earlier: only slots "
        "starting before it match, with its doctor and visit type.",
    )
    notes: Annotated[str, Field(max_length=2000)] | None = None
    call_id: CallId | None = None

    @field_validator("weekdays")
    @classmethod
    def _weekday_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for day in value:
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use lowercase names like 'monday'")
        return sorted(set(value), key=WEEKDAYS.index)

    @model_validator(mode="after")
    def _one_patient(self) -> WaitlistEntryCreate:
        if (self.patient_id is None) == (self.patient is None):
            raise ValueError("give either patient_id or patient, not both and not neither")
        return self


class WaitlistOfferRead(BaseModel):
    hold_id: uuid.UUID
    doctor_id: uuid.UUID
    date: dt.date
    start_time: ClockTime
    end_time: ClockTime
    expires_at: dt.datetime = Field(description="In the clinic's offset.")


class WaitlistEntryRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    doctor_id: uuid.UUID | None
    specialization: str | None
    language: str | None
    consultation_type: str | None
    visit_type_id: uuid.UUID | None
    start_date: dt.date
    end_date: dt.date
    weekdays: list[str] | None
    times: list[Window] | None
    appointment_id: uuid.UUID | None
    notes: str | None
    status: WaitlistStatus
    offer: WaitlistOfferRead | None = Field(description="The slot held for it while `offered`.")
    booked_appointment_id: uuid.UUID | None
    created_at: dt.datetime


def window_json(windows: list[Window] | None) -> list[dict[str, Any]] | None:
    """Windows as stored (`waitlist_entries.times`)."""
    if windows is None:
        return None
    return [{"start": format_clock(w.start), "end": format_clock(w.end)} for w in windows]


def stored_windows(stored: list[dict[str, Any]] | None) -> list[tuple[dt.time, dt.time]] | None:
    if stored is None:
        return None
    return [(dt.time.fromisoformat(w["start"]), dt.time.fromisoformat(w["end"])) for w in stored]
