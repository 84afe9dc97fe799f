"""Shared field types and the error bodies of the spec."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Self, TypeVar

from fastapi import Response
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, to_json

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_clock(value: Any) -> Any:
    if isinstance(value, dt.time):
        return value
    # Spaces around are forgiven, nothing else (a tab or line break is a control character),
    # and the whole text must match: `$` alone would let a trailing line break through.
    if not isinstance(value, str) or not (match := _CLOCK.fullmatch(value.strip(" "))):
        raise ValueError("must be a time as HH:MM")
    hour, minute, second = match.groups()
    return dt.time(int(hour), int(minute), int(second or 0))


def format_clock(value: dt.time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


@lru_cache(maxsize=2048)
def clock_text(value: dt.time) -> str:
    """`format_clock`, memoised for the few thousand distinct times a clinic ever shows."""
    return format_clock(value)


def json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON response from plain data, skipping a second validation pass."""
    return Response(to_json(content), status_code=status_code, media_type="application/json")


# Wide enough for any birth date or booking, and far from the calendar's ends, so date
# arithmetic (ranges, the next day, alternatives a fortnight on) can never overflow.
EARLIEST_DATE, LATEST_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def parse_calendar_date(value: str) -> dt.date:
    """A strict `YYYY-MM-DD` date (no compact or week forms) from 1900 to 2999."""
    text = value.strip(" ")  # as `_parse_clock`: no other whitespace, nothing after the date
    if not _DATE.fullmatch(text):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("must be a real date as YYYY-MM-DD") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE} and {LATEST_DATE}")
    return day


def _parse_date(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date as YYYY-MM-DD")
    return parse_calendar_date(value)


ClockTime = Annotated[
    dt.time,
    BeforeValidator(_parse_clock),
    PlainSerializer(format_clock, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2})?$", "example": "09:00"}),
]
CalendarDate = Annotated[dt.date, BeforeValidator(_parse_date)]
Limit = Annotated[int, Field(ge=1, le=500)]


# Text a person wrote at length (a symptom, a note, why a doctor is away) may keep its tabs and
# line breaks; every other text is one line. No text may carry any other control character:
# they hide content from the people who read it later, and PostgreSQL cannot store NUL.
FREE_TEXT_FIELDS = frozenset(
    {"symptoms", "notes", "reason", "description", "general_working_days_text"}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_FREE_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _has_control(value: Any, pattern: re.Pattern[str]) -> bool:
    if isinstance(value, str):
        return pattern.search(value) is not None
    if isinstance(value, list | tuple):
        return any(_has_control(item, pattern) for item in value)
    # A dict is a nested body (an InputModel, which checks its own fields) or a weekly grid
    # of windows, whose keys are field names and whose times `ClockTime` parses strictly.
    return False


def check_text(value: Any, field: str | None = None) -> Any:
    """Refuse control characters in `value`: tab and newline are allowed only in the value of
    a free-text field (`field`; None for text that is no body's field). The one rule for
    bodies, paths, query strings, kept headers and the agent's tool arguments."""
    if field in FREE_TEXT_FIELDS:
        if _has_control(value, _CONTROL_IN_FREE_TEXT):
            raise ValueError("must not contain control characters other than tab and newline")
    elif _has_control(value, _CONTROL):
        raise ValueError("must not contain control characters (tabs and line breaks included)")
    return value


class InputModel(BaseModel):
    """Base of request bodies: a field the operation does not know is refused (a misspelt
    field is never silently dropped), and so is text with control characters."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        # Before the field's own parsing: a stripped name must not hide a trailing newline.
        return check_text(value, info.field_name)


class PartialUpdate(InputModel):
    """A partial update: a field left out stays as it is; null is refused for a field that
    cannot be empty (any not in `nullable`)."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for field in self.model_fields_set - self.nullable:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    code: str


class ValidationErrorBody(ErrorBody):
    errors: list[FieldError]


class ServerErrorBody(ErrorBody):
    request_id: str | None = None


Model = TypeVar("Model", bound=BaseModel)


def required_unless(
    name: str, data: Any, handler: Callable[[Any], Model], fields: Sequence[str], given: str
) -> Model:
    """Validate `data` (in a wrap validator) with `fields` required unless `given` is sent:
    each one missing is reported as a missing field, together with any other field's error."""
    missing: list[str] = []
    if isinstance(data, dict) and data.get(given) is None:
        missing = [field for field in fields if data.get(field) is None]
    try:
        model = handler(data)
    except ValidationError as exc:
        if not missing:
            raise
        errors = [*map(_again, exc.errors()), *(_required(f, given, data) for f in missing)]
        raise ValidationError.from_exception_data(name, errors) from None
    if missing:
        raise ValidationError.from_exception_data(
            name, [_required(field, given, data) for field in missing]
        )
    return model


def _again(error: ErrorDetails) -> InitErrorDetails:
    """An error already reported, in the form that raises it again."""
    # With its context, from which `app/error_messages.py` words it (`{"le": 500}`).
    kind = PydanticCustomError(error["type"], error["msg"], error.get("ctx"))
    return {"type": kind, "loc": error["loc"], "input": error["input"]}


def _required(field: str, given: str, data: Any) -> InitErrorDetails:
    message = f"is required unless {given} is given"
    return {"type": PydanticCustomError("missing", message), "loc": (field,), "input": data}
