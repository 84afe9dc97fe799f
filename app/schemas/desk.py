"""The front desk's view of one day (GET /desk/day)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from app.schemas.appointment import AppointmentRead, Slot, UnavailableReason
from app.schemas.common import ClockTime


class DeskAppointment(AppointmentRead):
    patient_name: str
    patient_mobile_number: str = Field(description="E.164, for the desk to call the patient.")


class DeskColumn(BaseModel):
    doctor_id: uuid.UUID
    doctor_name: str
    visit_type_ids: list[uuid.UUID] = Field(description="The visit types the doctor offers.")
    unavailable_reason: UnavailableReason | None = Field(
        description="Why the doctor has no free slots this day, as availability says."
    )
    appointments: list[DeskAppointment] = Field(
        description="The day's appointments of every status, in time order."
    )
    free_slots: list[Slot] = Field(description="What availability offers (and booking accepts).")


class DeskDay(BaseModel):
    date: dt.date
    today: dt.date = Field(description="The clinic's today, in CLINIC_TIMEZONE.")
    now: ClockTime = Field(description="The clinic's time now.")
    timezone: str
    doctors: list[DeskColumn] = Field(description="One per active doctor, by name.")
