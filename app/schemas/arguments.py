"""Values given as text outside a body (a query parameter, a tool's argument), read by the
rules a body's fields follow: a malformed one is a 400 naming it. The REST routes and the MCP
tools read them here, so both refuse the same text with the same body."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import TypeAdapter, ValidationError

from app.errors import InvalidInput
from app.schemas.common import ClockTime, check_text, parse_calendar_date

_CLOCK: TypeAdapter[dt.time] = TypeAdapter(ClockTime)


def given_id(value: str | None, name: str) -> uuid.UUID | None:
    """An id given as text, or a 400 naming it."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(name, "must be a UUID") from None


def required_id(value: str, name: str) -> uuid.UUID:
    """`given_id` for an argument that cannot be left out."""
    found = given_id(value, name)
    assert found is not None
    return found


def given_date(value: str | None, name: str) -> dt.date | None:
    """A date given as text, YYYY-MM-DD, or a 400 naming it."""
    if value is None:
        return None
    try:
        return parse_calendar_date(value)
    except ValueError as exc:
        raise InvalidInput(name, str(exc)) from None


def given_time(value: str | None, name: str) -> dt.time | None:
    """A time of day given as text, HH:MM (or HH:MM:SS), or a 400 naming it."""
    if value is None:
        return None
    try:
        return _CLOCK.validate_python(value)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise InvalidInput(name, message) from None


def one_line(**texts: str | None) -> None:
    """Text no schema reads (filters, a mobile number, keys), checked by the rule for any text
    outside a body: no control character, so nothing is silently matched, stripped or stored
    with one. A 400 names the first that breaks it."""
    for field, value in texts.items():
        try:
            check_text(value)
        except ValueError as exc:
            raise InvalidInput(field, str(exc)) from None
