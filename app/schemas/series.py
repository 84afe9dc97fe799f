"""Recurring series: a course of visits booked in one call, and what is answered about it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from app.models.enums import AppointmentSource, SeriesFrequency
from app.schemas.appointment import (
    AppointmentRead,
    DatedSlot,
    RefusalReason,
    SlotUnavailableBody,
    one_patient,
)
from app.schemas.common import CalendarDate, ClockTime, InputModel
from app.schemas.patient import PatientCreate

MOST_OCCURRENCES = 52


class Recurrence(InputModel):
    """Every `interval` days or weeks from the start date, `count` times or until a date
    (included). Answered as stored: `interval` filled in, and `count` or `until`, whichever
    was given."""

    frequency: SeriesFrequency
    interval: int = Field(default=1, ge=1, le=4)
    count: int | None = Field(default=None, ge=2, le=MOST_OCCURRENCES)
    until: CalendarDate | None = None

    @model_validator(mode="after")
    def _count_or_until(self) -> Recurrence:
        if (self.count is None) == (self.until is None):
            raise ValueError("give either count or until, not both and not neither")
        return self

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        answered: dict[str, Any] = handler(self)
        return {k: v for k, v in answered.items() if v is not None}


class SeriesCreate(InputModel):
    doctor_id: uuid.UUID
    start_date: CalendarDate
    start_time: ClockTime
    source: AppointmentSource
    patient_id: uuid.UUID | None = None
    patient: PatientCreate | None = None
    visit_type_id: uuid.UUID | None = None
    confirmed: bool = Field(
        default=False,
        description="The caller agreed to these times: every occurrence is `confirmed`.",
    )
    recurrence: Recurrence

    @model_validator(mode="after")
    def _one_patient(self) -> SeriesCreate:
        one_patient(self.patient_id, self.patient)
        return self


class SeriesRead(BaseModel):
    series_id: uuid.UUID
    recurrence: Recurrence
    appointments: list[AppointmentRead]


class SeriesCancelled(BaseModel):
    series_id: uuid.UUID
    cancelled: list[uuid.UUID]


class SeriesConflict(BaseModel):
    """One occurrence that cannot be booked: what a single booking of it would answer."""

    date: dt.date
    start_time: ClockTime
    reason: RefusalReason
    alternatives: list[DatedSlot]


class SeriesUnavailableBody(SlotUnavailableBody):
    conflicts: list[SeriesConflict]
