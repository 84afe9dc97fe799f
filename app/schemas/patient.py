from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from app.schemas.common import CalendarDate, InputModel, PartialUpdate

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Mobile = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=40)]
Gender = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Entry = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _check_birth_date(value: dt.date | None) -> None:
    if value is not None and value > dt.date.today():
        raise ValueError("date_of_birth cannot be in the future")


class PatientCreate(InputModel):
    name: Name
    mobile_number: Mobile
    email: EmailStr | None = None
    gender: Gender | None = None
    date_of_birth: CalendarDate | None = None

    @model_validator(mode="after")
    def _birth_date(self) -> PatientCreate:
        _check_birth_date(self.date_of_birth)
        return self


class PatientUpdate(PartialUpdate):
    nullable = frozenset({"email", "gender", "date_of_birth"})

    name: Name | None = None
    mobile_number: Mobile | None = None
    email: EmailStr | None = None
    gender: Gender | None = None
    date_of_birth: CalendarDate | None = None

    @model_validator(mode="after")
    def _rules(self) -> PatientUpdate:
        _check_birth_date(self.date_of_birth)
        return self


class PatientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    mobile_number: str
    email: str | None
    gender: str | None
    date_of_birth: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime


class HistoryCreate(InputModel):
    symptoms: Annotated[str, Field(max_length=10000)] | None = None
    medical_conditions: Annotated[list[Entry], Field(max_length=100)] = Field(default_factory=list)
    allergies: Annotated[list[Entry], Field(max_length=100)] = Field(default_factory=list)
    notes: Annotated[str, Field(max_length=10000)] | None = None


class HistoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    symptoms: str | None
    medical_conditions: list[str]
    allergies: list[str]
    notes: str | None
    created_at: dt.datetime


class PatientAccessRead(BaseModel):
    """One answer that showed this patient's record or history."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: uuid.UUID
    accessed_at: dt.datetime
    actor: str = Field(description="The name of the API key that read it.")
    what: Literal["record", "history"]
    via: str = Field(description="The operation that answered.")
    correlation_id: str | None
    request_id: str | None
