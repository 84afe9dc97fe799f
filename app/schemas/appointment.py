from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from app.models.enums import (
    AppointmentAction,
    AppointmentSource,
    AppointmentStatus,
    CalendarSyncStatus,
)
from app.schemas.common import CalendarDate, ClockTime, ErrorBody, InputModel
from app.schemas.patient import PatientCreate
from app.services.scheduling.engine import DayReason, SlotReason

UnavailableReason = DayReason
RefusalReason = SlotReason


class AppointmentCreate(InputModel):
    doctor_id: uuid.UUID
    date: CalendarDate
    start_time: ClockTime
    source: AppointmentSource
    patient_id: uuid.UUID | None = None
    patient: PatientCreate | None = None
    visit_type_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _one_patient(self) -> AppointmentCreate:
        if (self.patient_id is None) == (self.patient is None):
            raise ValueError("give either patient_id or patient, not both and not neither")
        return self


class RescheduleRequest(InputModel):
    date: CalendarDate
    start_time: ClockTime


class AppointmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    doctor_id: uuid.UUID
    patient_id: uuid.UUID
    date: dt.date
    start_time: ClockTime
    end_time: ClockTime
    status: AppointmentStatus
    source: AppointmentSource
    visit_type_id: uuid.UUID | None
    google_calendar_event_id: str | None
    calendar_sync_status: CalendarSyncStatus
    calendar_sync_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class Slot(BaseModel):
    start_time: ClockTime
    end_time: ClockTime


class DayAvailability(BaseModel):
    date: dt.date
    unavailable_reason: UnavailableReason | None
    slots: list[Slot]


class AvailabilityRead(BaseModel):
    doctor_id: uuid.UUID
    timezone: str
    slot_duration_minutes: int
    days: list[DayAvailability]


class DatedSlot(BaseModel):
    date: dt.date
    start_time: ClockTime
    end_time: ClockTime


class DoctorSlot(DatedSlot):
    doctor_id: uuid.UUID
    doctor_name: str


class SlotUnavailableBody(ErrorBody):
    reason: RefusalReason
    alternatives: list[DatedSlot]


class AppointmentEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    appointment_id: uuid.UUID
    occurred_at: dt.datetime
    action: AppointmentAction
    before: dict[str, Any] | None
    after: dict[str, Any]
    actor: str
    source: AppointmentSource
    correlation_id: str | None
