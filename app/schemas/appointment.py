from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, model_validator

from app.models.enums import (
    AppointmentAction,
    AppointmentSource,
    AppointmentStatus,
    CalendarSyncStatus,
    ConfirmationStatus,
    DayReason,
    SlotReason,
)
from app.schemas.common import CalendarDate, ClockTime, ErrorBody, InputModel, required_unless
from app.schemas.patient import PatientCreate

UnavailableReason = DayReason
RefusalReason = SlotReason


_CONFIRMED = "The patient just agreed to this time: the appointment is `confirmed` at once."


class AppointmentCreate(InputModel):
    """A booking of a slot (`doctor_id`, `date`, `start_time`), or of the slot a hold keeps
    (`hold_id`; the slot's fields may then be left out, and must match the hold if sent)."""

    doctor_id: uuid.UUID | None = None
    date: CalendarDate | None = None
    start_time: ClockTime | None = None
    source: AppointmentSource
    patient_id: uuid.UUID | None = None
    patient: PatientCreate | None = None
    visit_type_id: uuid.UUID | None = None
    hold_id: uuid.UUID | None = Field(
        default=None, description="Book the slot this hold keeps (POST /holds/)."
    )
    confirmed: bool = Field(default=False, description=_CONFIRMED)

    @model_validator(mode="wrap")
    @classmethod
    def _slot_or_hold(
        cls, data: Any, handler: ModelWrapValidatorHandler[AppointmentCreate]
    ) -> AppointmentCreate:
        return required_unless(
            cls.__name__, data, handler, ("doctor_id", "date", "start_time"), "hold_id"
        )

    @model_validator(mode="after")
    def _one_patient(self) -> AppointmentCreate:
        one_patient(self.patient_id, self.patient)
        return self


def one_patient(patient_id: uuid.UUID | None, patient: PatientCreate | None) -> None:
    """A booking names its patient by id, or gives a new caller's details: exactly one."""
    if (patient_id is None) == (patient is None):
        raise ValueError("give either patient_id or patient, not both and not neither")


class RescheduleRequest(InputModel):
    date: CalendarDate
    start_time: ClockTime
    doctor_id: uuid.UUID | None = Field(
        default=None,
        description="Move the visit to this doctor (on their grid, keeping its length); "
        "default: its own doctor.",
    )
    confirmed: bool = Field(
        default=False, description=f"{_CONFIRMED} Without it the moved one is `unconfirmed`."
    )


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
    series_id: uuid.UUID | None = None
    # Defaults for messages queued before confirmations existed (their stored rows lack them).
    confirmation_status: ConfirmationStatus = ConfirmationStatus.UNCONFIRMED
    confirmed_at: dt.datetime | None = None
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
