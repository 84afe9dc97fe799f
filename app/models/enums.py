"""Enumerations stored in the database, with the request's spelling of their values."""

from __future__ import annotations

import enum


class AppointmentStatus(enum.StrEnum):
    BOOKED = "BOOKED"
    CANCELLED = "CANCELLED"
    RESCHEDULED = "RESCHEDULED"
    CHECKED_IN = "CHECKED_IN"
    COMPLETED = "COMPLETED"
    NO_SHOW = "NO_SHOW"


# The statuses that hold a doctor's slot; everything that asks "is this slot taken" uses these.
# A visit under way or done still occupies its time (and its buffer); a no-show does not.
ACTIVE_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.RESCHEDULED,
    AppointmentStatus.CHECKED_IN,
    AppointmentStatus.COMPLETED,
)
# The statuses a booking leaves an appointment in: the only ones it may still be moved,
# cancelled, checked in or marked a no-show from.
UPCOMING_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.RESCHEDULED)


def active_status_sql(column: str = "status") -> str:
    """`ACTIVE_STATUSES` as a SQL predicate, for hand-written statements and the partial index
    (whose predicate a statement must repeat literally for PostgreSQL to infer it)."""
    return f"{column} IN ({', '.join(repr(str(s)) for s in ACTIVE_STATUSES)})"


class AppointmentSource(enum.StrEnum):
    AI_CALLING_AGENT = "AI_CALLING_AGENT"
    ADMIN = "ADMIN"


class CalendarSyncStatus(enum.StrEnum):
    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"
    DISABLED = "disabled"


class AppointmentAction(enum.StrEnum):
    CREATED = "created"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


class HoldStatus(enum.StrEnum):
    """A hold's stored status. An `active` hold whose `expires_at` has passed reads `expired`
    (`EXPIRED`, never stored): expiry needs no job to run."""

    ACTIVE = "active"
    BOOKED = "booked"
    RELEASED = "released"
    EXPIRED = "expired"
