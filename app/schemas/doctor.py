from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from app.schemas.common import ClockTime, InputModel

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _normalise_weekdays(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    days: list[str] = []
    for item in value:
        if not isinstance(item, str) or item.strip().lower() not in WEEKDAYS:
            raise ValueError(f"unknown weekday {item!r}; use lowercase names like 'monday'")
        day = item.strip().lower()
        if day not in days:
            days.append(day)
    return sorted(days, key=WEEKDAYS.index)


class WorkingHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError("working_hours.start must be before working_hours.end")
        return self


WorkingDays = Annotated[list[str], Field(min_length=1, max_length=7)]
SlotMinutes = Annotated[int, Field(ge=5, le=480)]
Languages = Annotated[list[ShortText], Field(max_length=30)]


class _DoctorRules(InputModel):
    @model_validator(mode="before")
    @classmethod
    def _weekdays(cls, data: Any) -> Any:
        if isinstance(data, dict) and "working_days" in data:
            data = {**data, "working_days": _normalise_weekdays(data["working_days"])}
        return data


class DoctorCreate(_DoctorRules):
    clinic_id: uuid.UUID | None = None
    name: Name
    email: EmailStr
    specialization: Name
    experience_years: Annotated[int, Field(ge=0, le=100)] = 0
    languages: Languages = Field(default_factory=list)
    consultation_type: ShortText = "in_person"
    general_working_days_text: Annotated[str, Field(max_length=1000)] | None = None
    working_days: WorkingDays
    working_hours: WorkingHours
    slot_duration_minutes: SlotMinutes
    is_active: bool = True


class DoctorUpdate(_DoctorRules):
    """Partial update: only the fields present are changed; null is refused where required."""

    clinic_id: uuid.UUID | None = None
    name: Name | None = None
    email: EmailStr | None = None
    specialization: Name | None = None
    experience_years: Annotated[int, Field(ge=0, le=100)] | None = None
    languages: Languages | None = None
    consultation_type: ShortText | None = None
    general_working_days_text: Annotated[str, Field(max_length=1000)] | None = None
    working_days: WorkingDays | None = None
    working_hours: WorkingHours | None = None
    slot_duration_minutes: SlotMinutes | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> DoctorUpdate:
        for field in self.model_fields_set - {"general_working_days_text"}:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class DoctorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    clinic_id: uuid.UUID
    name: str
    email: str
    specialization: str
    experience_years: int
    languages: list[str]
    consultation_type: str
    general_working_days_text: str | None
    working_days: list[str]
    working_hours: WorkingHours
    slot_duration_minutes: int
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime
