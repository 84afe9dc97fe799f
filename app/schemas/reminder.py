"""The reminder policy and an appointment's reminders."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator

from app.models.enums import ReminderStatus
from app.schemas.common import ClockTime, InputModel

FIRST_OFFSET, LAST_OFFSET, MOST_OFFSETS = 5, 20160, 4
Offset = Annotated[int, Field(ge=FIRST_OFFSET, le=LAST_OFFSET)]


class QuietHours(InputModel):
    """Clinic wall-clock time, `[start, end)`; crosses midnight when `start` is the later."""

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class ReminderPolicyWrite(InputModel):
    """A field left out keeps its current value; `quiet_hours: null` means none."""

    offsets_minutes: list[Offset] | None = Field(
        default=None,
        max_length=MOST_OFFSETS,
        description=f"Minutes before the start; up to {MOST_OFFSETS} distinct, each "
        f"{FIRST_OFFSET}-{LAST_OFFSET}; [] sends no reminders.",
    )
    quiet_hours: QuietHours | None = None
    only_unconfirmed: bool | None = Field(
        default=None, description="Remind only appointments not yet confirmed."
    )

    @field_validator("offsets_minutes")
    @classmethod
    def _distinct(cls, offsets: list[int] | None) -> list[int] | None:
        if offsets is None:
            raise ValueError("must be a list (use [] for no reminders)")
        if len(set(offsets)) != len(offsets):
            raise ValueError("offsets must be distinct")
        return offsets

    @field_validator("only_unconfirmed")
    @classmethod
    def _given(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("must be true or false")
        return value


class QuietHoursRead(BaseModel):
    start: ClockTime
    end: ClockTime


class ReminderPolicyRead(BaseModel):
    offsets_minutes: list[int]
    quiet_hours: QuietHoursRead | None
    only_unconfirmed: bool


class ReminderDue(BaseModel):
    """What `appointment.reminder_due` says of its reminder."""

    offset_minutes: int
    due_at: dt.datetime = Field(description="In the clinic's offset; whole minutes.")


class ReminderRead(ReminderDue):
    status: ReminderStatus
