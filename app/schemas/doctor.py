from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.config import JsonDict, JsonValue
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.models.enums import WEEKDAYS
from app.schemas.common import InputModel, PartialUpdate, required_unless
from app.schemas.schedule import WeeklyHours, WorkingHours, summarise, week_of

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _normalise_weekdays(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    days: list[str] = []
    for item in value:
        if not isinstance(item, str) or item.strip().lower() not in WEEKDAYS:
            raise ValueError(f"working_days has an unknown day {item!r}; use names like 'monday'")
        day = item.strip().lower()
        if day not in days:
            days.append(day)
    return sorted(days, key=WEEKDAYS.index)


WorkingDays = Annotated[list[str], Field(min_length=1, max_length=7)]
SlotMinutes = Annotated[int, Field(ge=5, le=480)]
Languages = Annotated[list[ShortText], Field(max_length=30)]
NoticeMinutes = Annotated[int, Field(ge=0, le=43200)]
HorizonDays = Annotated[int, Field(ge=1, le=730)]
BufferMinutes = Annotated[int, Field(ge=0, le=240)]
DailyLimit = Annotated[int, Field(ge=1, le=500)]
VisitTypeIds = Annotated[list[uuid.UUID], Field(max_length=100)]


class _DoctorInput(InputModel):
    @model_validator(mode="before")
    @classmethod
    def _weekdays(cls, data: Any) -> Any:
        if isinstance(data, dict) and "working_days" in data:
            data = {**data, "working_days": _normalise_weekdays(data["working_days"])}
        return data

    @model_validator(mode="after")
    def _agree_with_week(self) -> Any:
        # Both forms sent: they must say the same thing (a GET's body can be sent back as is).
        week: WeeklyHours | None = getattr(self, "weekly_hours", None)
        if week is None:
            return self
        days, hours = summarise(week)
        sent_days: list[str] | None = getattr(self, "working_days", None)
        sent_hours: WorkingHours | None = getattr(self, "working_hours", None)
        errors: list[InitErrorDetails] = []
        if sent_days is not None and sent_days != days:
            message = f"must be {days}, the days weekly_hours has windows on"
            errors.append(_disagrees("working_days", message, sent_days))
        if sent_hours is not None and sent_hours != hours:
            message = f"must be {hours.start:%H:%M}-{hours.end:%H:%M}, the span of weekly_hours"
            errors.append(_disagrees("working_hours", message, sent_hours))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


_LUNCH_BREAK: list[JsonValue] = [
    {"start": "09:00", "end": "13:00"},
    {"start": "14:00", "end": "17:00"},
]
EXAMPLE_DOCTOR: JsonDict = {
    "name": "Dr Asha Rao",
    "email": "asha.rao@clinic.example",
    "specialization": "Cardiology",
    "experience_years": 12,
    "languages": ["English", "Hindi"],
    "consultation_type": "in_person",
    "general_working_days_text": "Weekdays but Wednesday, and Saturday mornings",
    "weekly_hours": {
        "monday": _LUNCH_BREAK,
        "tuesday": _LUNCH_BREAK,
        "thursday": _LUNCH_BREAK,
        "friday": _LUNCH_BREAK,
        "saturday": [{"start": "09:00", "end": "12:00"}],
    },
    "slot_duration_minutes": 30,
    "min_notice_minutes": 120,
    "booking_horizon_days": 90,
    "buffer_minutes": 5,
    "max_appointments_per_day": 16,
}


class DoctorCreate(_DoctorInput):
    """A doctor. The week is `weekly_hours`, or the request's `working_days` and
    `working_hours` (one window on each of those days)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_DOCTOR]})

    clinic_id: uuid.UUID | None = None
    name: Name
    email: EmailStr
    specialization: Name
    experience_years: Annotated[int, Field(ge=0, le=100)] = 0
    languages: Languages = Field(default_factory=list)
    consultation_type: ShortText = "in_person"
    general_working_days_text: Annotated[str, Field(max_length=1000)] | None = None
    weekly_hours: WeeklyHours | None = None
    working_days: WorkingDays | None = None
    working_hours: WorkingHours | None = None
    slot_duration_minutes: SlotMinutes
    is_active: bool = True
    visit_type_ids: VisitTypeIds = Field(default_factory=list)
    min_notice_minutes: NoticeMinutes = 0
    booking_horizon_days: HorizonDays | None = None
    buffer_minutes: BufferMinutes = 0
    max_appointments_per_day: DailyLimit | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _has_a_week(cls, data: Any, handler: ModelWrapValidatorHandler[DoctorCreate]) -> Any:
        # Without `weekly_hours`, the request's two fields are required, as they were before.
        doctor = required_unless(
            cls.__name__, data, handler, ("working_days", "working_hours"), "weekly_hours"
        )
        if doctor.weekly_hours is None:
            assert doctor.working_days is not None and doctor.working_hours is not None
            doctor.weekly_hours = week_of(doctor.working_days, doctor.working_hours)
        return doctor

    def week(self) -> WeeklyHours:
        assert self.weekly_hours is not None  # set by _has_a_week
        return self.weekly_hours


def _disagrees(field: str, message: str, sent: Any) -> InitErrorDetails:
    return {"type": PydanticCustomError("disagrees", message), "loc": (field,), "input": sent}


class DoctorUpdate(_DoctorInput, PartialUpdate):
    """Partial update: only the fields present are changed; null is refused where required."""

    nullable = frozenset(
        {"general_working_days_text", "booking_horizon_days", "max_appointments_per_day"}
    )

    clinic_id: uuid.UUID | None = None
    name: Name | None = None
    email: EmailStr | None = None
    specialization: Name | None = None
    experience_years: Annotated[int, Field(ge=0, le=100)] | None = None
    languages: Languages | None = None
    consultation_type: ShortText | None = None
    general_working_days_text: Annotated[str, Field(max_length=1000)] | None = None
    weekly_hours: WeeklyHours | None = None
    working_days: WorkingDays | None = None
    working_hours: WorkingHours | None = None
    slot_duration_minutes: SlotMinutes | None = None
    is_active: bool | None = None
    visit_type_ids: VisitTypeIds | None = None
    min_notice_minutes: NoticeMinutes | None = None
    booking_horizon_days: HorizonDays | None = None
    buffer_minutes: BufferMinutes | None = None
    max_appointments_per_day: DailyLimit | None = None


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
    weekly_hours: WeeklyHours
    working_days: list[str]
    working_hours: WorkingHours
    slot_duration_minutes: int
    is_active: bool
    visit_type_ids: list[uuid.UUID]
    min_notice_minutes: int
    booking_horizon_days: int | None
    buffer_minutes: int
    max_appointments_per_day: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
