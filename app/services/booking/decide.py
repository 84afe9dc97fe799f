"""Deciding a slot and writing it, for everything that takes one (a booking, a hold).

Optimistic first: one read, the engine's decision, one conditional write (`booking.sql`). If
the day changed in between, the writer claims the day (no other booking, hold, leave or move
of that day can then commit until this transaction ends) and decides again on a fresh read.
It can only be stale again if the doctor's schedule was edited or a first booking for the
same new mobile committed meanwhile; each is visible to the next read, so it decides.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.database import commits_at_once
from app.errors import NotFound, SlotUnavailable
from app.models.enums import SlotReason
from app.schemas.common import format_clock
from app.services import availability_service
from app.services.booking import batch
from app.services.booking import sql as booking_sql
from app.services.booking.sql import Refusal
from app.services.context import Clinic
from app.services.scheduling.engine import (
    ALTERNATIVE_HORIZON_DAYS,
    Moment,
    SlotTime,
    availability,
    day_availability,
    find_slot,
    nearest_alternatives,
)
from app.services.scheduling.queries import (
    CalendarWanted,
    DoctorCalendar,
    load_doctor_calendar,
    load_doctor_calendars,
    load_facts,
)
from app.services.scheduling.refusal import REASON_SENTENCES, refusal
from app.services.scheduling.rows import Facts

Written = TypeVar("Written")

# Refusals that mean "read again": something committed between the read and the write.
_READ_AGAIN = (Refusal.STALE, Refusal.PATIENT_RACE)
_DECIDE_AGAIN_AT_MOST = 10


@dataclass(frozen=True, slots=True)
class Wanted:
    """The slot asked for: a doctor, a date, a start and the visit's type."""

    doctor_id: uuid.UUID
    date: dt.date
    start_time: dt.time
    visit_type_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Decided(Generic[Written]):
    read: DoctorCalendar  # the read the last decision was made on
    visit_minutes: int | None
    outcome: Written | Refusal


async def _attempt(
    session: AsyncSession,
    wanted: Wanted,
    clinic: Clinic,
    write: Callable[[DoctorCalendar, SlotTime], Awaitable[Written | Refusal]],
    exclude_hold: uuid.UUID | None,
) -> Decided[Written]:
    read = await _read_day(session, wanted, exclude_hold)
    visit_minutes = await availability_service.visit_length(session, read, wanted.visit_type_id)
    offered = day_availability(
        read.schedule,
        wanted.date,
        read.day(wanted.date),
        Moment.of(clinic.now, clinic.tz, read.schedule.rules.min_notice_minutes),
        clinic.tz,
        visit_minutes,
    )
    slot = find_slot(offered, wanted.start_time)
    if slot is None:
        return Decided(read, visit_minutes, Refusal.SLOT_TAKEN)
    return Decided(read, visit_minutes, await write(read, slot))


async def _read_day(
    session: AsyncSession, wanted: Wanted, exclude_hold: uuid.UUID | None
) -> DoctorCalendar:
    """The doctor's day as the engine needs it. Outside a transaction it is read with the
    reads that come meanwhile (`booking.batch`); inside one (deciding again on a claimed day)
    it must be read in the transaction, alone."""
    if not commits_at_once(session):
        return await load_doctor_calendar(
            session, wanted.doctor_id, wanted.date, wanted.date, exclude_hold=exclude_hold
        )

    async def read(ranges: Sequence[CalendarWanted]) -> list[DoctorCalendar | None]:
        return await load_doctor_calendars(session, ranges)

    day = CalendarWanted(wanted.doctor_id, wanted.date, wanted.date, exclude_hold)
    # Every read is its own row: a key of its own never makes it wait for a later batch.
    found: DoctorCalendar | None = await batch.batcher("read").run(day, object(), read)
    if found is None:
        raise NotFound(f"Doctor {wanted.doctor_id} was not found.")
    return found


async def decide_and_write(
    session: AsyncSession,
    wanted: Wanted,
    clinic: Clinic,
    write: Callable[[DoctorCalendar, SlotTime], Awaitable[Written | Refusal]],
    *,
    exclude_hold: uuid.UUID | None = None,
) -> Decided[Written]:
    """Let the engine decide `wanted` on a read of its day, and `write` it if the engine
    offers it; `write` answers a `Refusal` when it wrote nothing. `exclude_hold`: a hold the
    read leaves out (the caller's own)."""
    decided = await _attempt(session, wanted, clinic, write, exclude_hold)
    if decided.outcome not in _READ_AGAIN:
        return decided
    metrics.BOOKINGS_DECIDED_AGAIN.inc()
    # Not the doctor's row lock: a stale claim may already hold the day's row, and
    # reschedules take the doctor's lock before the day's, so that order could deadlock.
    await booking_sql.claim_days(session, wanted.doctor_id, {wanted.date})
    for _ in range(_DECIDE_AGAIN_AT_MOST):
        decided = await _attempt(session, wanted, clinic, write, exclude_hold)
        if decided.outcome not in _READ_AGAIN:
            return decided
    # Each retry needs a change committed meanwhile; this many means a bug.
    raise RuntimeError("a claimed day kept changing under its writer")


async def slot_unavailable(
    session: AsyncSession,
    calendar: DoctorCalendar,
    day: dt.date,
    start_time: dt.time,
    clinic: Clinic,
    visit_minutes: int | None,
    *,
    exclude: uuid.UUID | None = None,
    exclude_hold: uuid.UUID | None = None,
    reason: SlotReason | None = None,
) -> SlotUnavailable:
    """The 409 for a slot the engine would not offer: why (`reason`, or decided on
    `calendar`, the read the refusal was made on) and the nearest free slots of the same
    length."""
    if reason is None:
        reason = refused_because(calendar, day, start_time, clinic, visit_minutes)
    first, last = alternatives_range(day, day, clinic)
    facts = await load_facts(
        session,
        [calendar.doctor_id],
        first,
        last,
        exclude_appointment=exclude,
        exclude_hold=exclude_hold,
    )
    alternatives = alternatives_of(
        calendar, facts[calendar.doctor_id], day, start_time, clinic, visit_minutes
    )
    return SlotUnavailable(
        refused_sentence(reason), extra={"reason": reason, "alternatives": alternatives}
    )


def refused_because(
    calendar: DoctorCalendar,
    day: dt.date,
    start_time: dt.time,
    clinic: Clinic,
    visit_minutes: int | None,
) -> SlotReason:
    """Why the engine does not offer the slot, decided on `calendar` (the read the refusal
    was made on)."""
    reason = refusal(
        calendar.schedule, day, start_time, calendar.day(day), clinic.now, clinic.tz, visit_minutes
    )
    # No reason from the read: an appointment or hold committed after it took the slot.
    return reason or "taken"


def refused_sentence(reason: SlotReason) -> str:
    return f"That slot is not available for booking ({REASON_SENTENCES[reason]})."


def alternatives_range(
    first_day: dt.date, last_day: dt.date, clinic: Clinic
) -> tuple[dt.date, dt.date]:
    """The days whose free slots the alternatives to refusals from `first_day` to `last_day`
    are chosen from."""
    first = max(first_day, clinic.today)
    return first, max(last_day, first) + dt.timedelta(days=ALTERNATIVE_HORIZON_DAYS)


def alternatives_of(
    calendar: DoctorCalendar,
    facts: Facts,
    day: dt.date,
    start_time: dt.time,
    clinic: Clinic,
    visit_minutes: int | None,
) -> list[dict[str, str]]:
    """The nearest free slots of the same length to a refused one, from `facts` (read over
    `alternatives_range`)."""
    first, last = alternatives_range(day, day, clinic)
    days = availability(calendar.schedule, first, last, facts, clinic.now, clinic.tz, visit_minutes)
    return [
        {
            "date": alt_day.isoformat(),
            "start_time": format_clock(slot.start),
            "end_time": format_clock(slot.end),
        }
        for alt_day, slot in nearest_alternatives(days, day, start_time)
    ]
