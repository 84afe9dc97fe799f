"""Deciding a series' occurrences and writing them together, all or none.

As a single booking (`booking.decide`): one read of the doctor's days from the first
occurrence to the last, the engine's decision on each occurrence, and one conditional write
(`booking.sql.write_series`), which writes every occurrence or none of them: a series' rows are
current only together. If any day changed in between, the writer claims every occurrence's
day and decides again on a fresh read. An occurrence the engine does not offer is a conflict,
with what a single booking of it would answer (`decide.refused_because`, `alternatives_of`);
then nothing is written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.models.enums import SlotReason
from app.schemas.appointment import AppointmentRead
from app.services import availability_service
from app.services.booking import sql as booking_sql
from app.services.booking.decide import (
    alternatives_of,
    alternatives_range,
    refused_because,
    refused_sentence,
)
from app.services.booking.sql import Refusal
from app.services.context import Clinic
from app.services.scheduling.engine import Moment, SlotTime, day_availability, find_slot
from app.services.scheduling.queries import DoctorCalendar, load_doctor_calendar, load_facts

# Writes the occurrences' slots (one per day, in order) decided on a read: every appointment,
# or why none was written.
Write = Callable[
    [DoctorCalendar, Sequence[tuple[dt.date, SlotTime]]],
    Awaitable[list[AppointmentRead] | Refusal],
]

_READ_AGAIN = (Refusal.STALE, Refusal.PATIENT_RACE)
_DECIDE_AGAIN_AT_MOST = 10


@dataclass(frozen=True, slots=True)
class Refused:
    """The occurrences the engine does not offer, on the read it decided on."""

    read: DoctorCalendar
    visit_minutes: int | None
    days: list[dt.date]


async def _attempt(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    days: Sequence[dt.date],
    start_time: dt.time,
    visit_type_id: uuid.UUID | None,
    clinic: Clinic,
    write: Write,
) -> list[AppointmentRead] | Refusal | Refused:
    read = await load_doctor_calendar(session, doctor_id, days[0], days[-1])
    visit_minutes = await availability_service.visit_length(session, read, visit_type_id)
    moment = Moment.of(clinic.now, clinic.tz, read.schedule.rules.min_notice_minutes)
    slots: list[tuple[dt.date, SlotTime]] = []
    refused: list[dt.date] = []
    for day in days:
        offered = day_availability(
            read.schedule, day, read.day(day), moment, clinic.tz, visit_minutes
        )
        slot = find_slot(offered, start_time)
        if slot is None:
            refused.append(day)
        else:
            slots.append((day, slot))
    if refused:
        return Refused(read, visit_minutes, refused)
    return await write(read, slots)


async def decide_and_write_series(
    session: AsyncSession,
    doctor_id: uuid.UUID,
    days: Sequence[dt.date],
    start_time: dt.time,
    visit_type_id: uuid.UUID | None,
    clinic: Clinic,
    write: Write,
) -> list[AppointmentRead] | Refusal | Refused:
    """Let the engine decide every occurrence (`days`, in order, at `start_time`) on one
    read, and `write` them if it offers them all."""
    decided = await _attempt(session, doctor_id, days, start_time, visit_type_id, clinic, write)
    if decided not in _READ_AGAIN:
        return decided
    metrics.BOOKINGS_DECIDED_AGAIN.inc()
    await booking_sql.claim_days(session, doctor_id, set(days))
    for _ in range(_DECIDE_AGAIN_AT_MOST):
        decided = await _attempt(session, doctor_id, days, start_time, visit_type_id, clinic, write)
        if decided not in _READ_AGAIN:
            return decided
    # Each retry needs a change committed meanwhile; this many means a bug.
    raise RuntimeError("claimed days kept changing under a series' writer")


def written_together(
    written: Sequence[AppointmentRead | Refusal],
) -> list[AppointmentRead] | Refusal:
    """A series' write, row by row (`booking.sql.outcome`), as one outcome: every appointment,
    or why none was written."""
    booked = [w for w in written if isinstance(w, AppointmentRead)]
    if len(booked) == len(written):
        return booked
    if booked:
        # The statement writes a series' rows together; only the partial unique index could
        # refuse some of them, and the claimed days make that unreachable. The unit of work
        # rolls the rest back.
        raise RuntimeError("a series was written in part")
    refusals = [w for w in written if isinstance(w, Refusal)]
    for refusal in (Refusal.STALE, Refusal.PATIENT_RACE, Refusal.PATIENT_MISSING):
        if refusal in refusals:
            return refusal
    # Every day current and the patient found, yet nothing written: the index refused it all,
    # which a fresh read on claimed days decides properly.
    return Refusal.STALE


@dataclass(frozen=True, slots=True)
class Conflict:
    date: dt.date
    start_time: dt.time
    reason: SlotReason
    alternatives: list[dict[str, str]]

    def body(self) -> dict[str, object]:
        return {
            "date": self.date.isoformat(),
            "start_time": f"{self.start_time:%H:%M}",
            "reason": self.reason,
            "alternatives": self.alternatives,
        }


async def conflicts(
    session: AsyncSession, refused: Refused, start_time: dt.time, clinic: Clinic
) -> list[Conflict]:
    """For each refused occurrence, what a single booking of it would answer: why (on the
    read it was refused on) and the nearest free slots, all from one further read."""
    read = refused.read
    first, last = alternatives_range(refused.days[0], refused.days[-1], clinic)
    facts = (await load_facts(session, [read.doctor_id], first, last))[read.doctor_id]
    return [
        Conflict(
            day,
            start_time,
            refused_because(read, day, start_time, clinic, refused.visit_minutes),
            alternatives_of(read, facts, day, start_time, clinic, refused.visit_minutes),
        )
        for day in refused.days
    ]


def conflict_sentence(found: Sequence[Conflict], occurrences: int) -> str:
    """The 409's sentence: how many occurrences cannot be booked, and why the first cannot."""
    first = found[0]
    why = refused_sentence(first.reason)
    return (
        f"{len(found)} of the series' {occurrences} visits cannot be booked, so none was: "
        f"the first is on {first.date.isoformat()} at {first.start_time:%H:%M}. {why}"
    )
