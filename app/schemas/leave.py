from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas.appointment import AppointmentRead
from app.schemas.common import CalendarDate, ClockTime, InputModel


class LeaveCreate(InputModel):
    date: CalendarDate
    reason: Annotated[str, Field(max_length=500)] | None = None
    start_time: ClockTime | None = None
    end_time: ClockTime | None = None

    @model_validator(mode="after")
    def _window(self) -> LeaveCreate:
        if (self.start_time is None) != (self.end_time is None):
            raise ValueError("give both start_time and end_time, or neither for a whole day")
        if (
            self.start_time is not None
            and self.end_time is not None
            and (self.start_time >= self.end_time)
        ):
            raise ValueError("start_time must be before end_time")
        return self


class LeaveRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    doctor_id: uuid.UUID
    date: dt.date
    reason: str | None
    start_time: ClockTime | None
    end_time: ClockTime | None
    created_at: dt.datetime


class LeaveCreated(LeaveRead):
    affected_appointments: list[AppointmentRead]
