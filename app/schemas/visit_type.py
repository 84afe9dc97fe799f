from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.common import InputModel, PartialUpdate

VisitName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Duration = Annotated[int, Field(ge=5, le=480)]
Description = Annotated[str, Field(max_length=2000)]


class VisitTypeCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {"name": "New patient consultation", "duration_minutes": 45},
        }
    )

    name: VisitName
    duration_minutes: Duration
    description: Description | None = None
    is_active: bool = True


class VisitTypeUpdate(PartialUpdate):
    """Partial update: only the fields present change."""

    nullable = frozenset({"description"})

    name: VisitName | None = None
    duration_minutes: Duration | None = None
    description: Description | None = None
    is_active: bool | None = None


class VisitTypeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    duration_minutes: int
    description: str | None
    is_active: bool
    created_at: dt.datetime
