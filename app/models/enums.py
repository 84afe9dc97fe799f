"""The service's fixed vocabularies, with the request's spelling of their values: the
enumerations stored in the database, the weekdays of a schedule, and why a day or a slot offers
nothing. Everything else (models, schemas, the engine, the statements) takes them from here."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal, get_args

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Why a day offers nothing, and why a slot is refused: the spec's fixed lists, in the order in
# which they are checked (the first that applies is the one reported). A slot's list runs as a
# day's up to the leaves, then the checks of the slot itself (`scheduling.refusal`).
_DayClosed = Literal[
    "past", "doctor_inactive", "beyond_horizon", "holiday", "non_working_day", "leave"
]
DayReason = Literal[_DayClosed, "daily_limit"]
SlotReason = Literal[_DayClosed, "outside_hours", "too_soon", "daily_limit", "held", "taken"]
SLOT_REASONS: tuple[SlotReason, ...] = get_args(SlotReason)


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
    CONFIRMED = "confirmed"
    # A check-in or no-show taken back (`front_desk_service.undo`).
    UNDO = "undo"


class ConfirmationStatus(enum.StrEnum):
    UNCONFIRMED = "unconfirmed"
    CONFIRMED = "confirmed"


class ReminderStatus(enum.StrEnum):
    """`scheduled` until it comes due (`sent`), or until the appointment changes so that it
    no longer applies (`void`); `skipped` when its instant had already passed as it was
    planned (a reminder is never sent late)."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    SKIPPED = "skipped"
    VOID = "void"


class HoldStatus(enum.StrEnum):
    """A hold's stored status. An `active` hold whose `expires_at` has passed reads `expired`
    (`EXPIRED`, never stored): expiry needs no job to run."""

    ACTIVE = "active"
    BOOKED = "booked"
    RELEASED = "released"
    EXPIRED = "expired"


# When a hold counts (it keeps its slot from everyone else, as an appointment does): while it
# is `active` and its expiry is still ahead. The statements that read holds select with the
# SQL form, and the engine and a hold's reading apply the Python form at their own "now".


def hold_counts_sql(now: str = "now()") -> str:
    """The holds that count at `now`, as a SQL predicate on the `holds` table."""
    return f"status = '{HoldStatus.ACTIVE}' AND expires_at > {now}"


def hold_unexpired(expires_at: dt.datetime, now: dt.datetime) -> bool:
    """Whether an `active` hold still counts at `now`: it stops at its expiry instant."""
    return expires_at > now


class SeriesFrequency(enum.StrEnum):
    """How a recurring series repeats: every `interval` days or weeks."""

    DAILY = "daily"
    WEEKLY = "weekly"
