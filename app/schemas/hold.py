from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from app.models.enums import HoldStatus
from app.schemas.common import CalendarDate, ClockTime, InputModel

TTL_DEFAULT_SECONDS, TTL_MIN_SECONDS, TTL_MAX_SECONDS = 300, 30, 900
TtlSeconds = Annotated[
    int,
    Field(
        ge=TTL_MIN_SECONDS,
        le=TTL_MAX_SECONDS,
        description="How long the slot is kept, in seconds.",
    ),
]


class HoldCreate(InputModel):
    """Keep a slot for a caller while their details are taken; book it with `hold_id`."""

    doctor_id: uuid.UUID
    date: CalendarDate
    start_time: ClockTime
    visit_type_id: uuid.UUID | None = None
    ttl_seconds: TtlSeconds = TTL_DEFAULT_SECONDS


class HoldRead(BaseModel):
    id: uuid.UUID
    doctor_id: uuid.UUID
    date: dt.date
    start_time: ClockTime
    end_time: ClockTime
    visit_type_id: uuid.UUID | None
    status: HoldStatus = Field(
        description="`active` until it expires (`expired`), is booked or released."
    )
    expires_at: dt.datetime = Field(description="In the clinic's offset.")
    appointment_id: uuid.UUID | None = Field(description="The appointment it became, if booked.")
