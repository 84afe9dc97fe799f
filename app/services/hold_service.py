"""Holds: a slot kept for a caller for a few minutes while the agent takes their details.

While active, a hold counts as an appointment for everyone else (the engine reads holds with
a doctor's appointments); booking with its id turns it into the appointment in the booking's
one statement. Expiry is a comparison with `expires_at`, so nothing has to run for it.
Holds never reach Google Calendar or RAG.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, InvalidState, NotFound
from app.models.enums import HoldStatus
from app.schemas.appointment import AppointmentCreate
from app.schemas.hold import HoldCreate, HoldRead
from app.services.booking import holds as holds_sql
from app.services.booking.decide import Wanted, decide_and_write, slot_unavailable
from app.services.booking.holds import HoldRow
from app.services.booking.sql import Refusal
from app.services.context import Caller, Clinic
from app.services.scheduling.engine import SlotTime
from app.services.scheduling.queries import DoctorCalendar


def _read(hold: HoldRow, clinic: Clinic) -> HoldRead:
    return HoldRead(
        id=hold.id,
        doctor_id=hold.doctor_id,
        date=hold.date,
        start_time=hold.start_time,
        end_time=hold.end_time,
        visit_type_id=hold.visit_type_id,
        status=hold.status(clinic.now),
        expires_at=hold.expires_at.astimezone(clinic.tz),
        appointment_id=hold.appointment_id,
    )


async def create(
    session: AsyncSession, data: HoldCreate, caller: Caller, clinic: Clinic
) -> HoldRead:
    """Hold the slot, or raise `SlotUnavailable` as a booking of it would."""
    wanted = Wanted(data.doctor_id, data.date, data.start_time, data.visit_type_id)
    expires_at = clinic.now + dt.timedelta(seconds=data.ttl_seconds)
    return await keep(session, wanted, expires_at, caller, clinic)


async def keep(
    session: AsyncSession,
    wanted: Wanted,
    expires_at: dt.datetime,
    caller: Caller,
    clinic: Clinic,
) -> HoldRead:
    """Hold `wanted` until `expires_at` (a caller's hold, or a waitlist offer), or raise
    `SlotUnavailable` as a booking of it would."""

    async def write(read: DoctorCalendar, slot: SlotTime) -> HoldRow | Refusal:
        held = await holds_sql.hold_if_current(
            session,
            read=read,
            day=wanted.date,
            slot=slot,
            visit_type_id=wanted.visit_type_id,
            expires_at=expires_at,
            caller=caller,
        )
        return Refusal.STALE if held is None else held

    decided = await decide_and_write(session, wanted, clinic, write)
    if not isinstance(decided.outcome, HoldRow):
        raise await slot_unavailable(
            session, decided.read, wanted.date, wanted.start_time, clinic, decided.visit_minutes
        )
    return _read(decided.outcome, clinic)


async def get(session: AsyncSession, hold_id: uuid.UUID, clinic: Clinic) -> HoldRead:
    return _read(await _known(session, hold_id), clinic)


async def release(session: AsyncSession, hold_id: uuid.UUID, clinic: Clinic) -> HoldRead:
    """Let the slot go: an active or expired hold becomes released (again: unchanged); a
    booked one is a 409."""
    hold = await holds_sql.release_hold(session, hold_id)
    if hold is None:
        raise NotFound.of("Hold", hold_id)
    if hold.stored_status is HoldStatus.BOOKED:
        raise InvalidState("A booked hold cannot be released; cancel the appointment instead.")
    return _read(hold, clinic)


async def _known(session: AsyncSession, hold_id: uuid.UUID) -> HoldRow:
    hold = await holds_sql.read_hold(session, hold_id)
    if hold is None:
        raise NotFound.of("Hold", hold_id)
    return hold


async def wanted_by(session: AsyncSession, data: AppointmentCreate, clinic: Clinic) -> Wanted:
    """The slot a booking asks for: the one it names, or the one its hold keeps (whose fields,
    when the booking sends them too, must match)."""
    if data.hold_id is None:
        # Required without a hold (`AppointmentCreate` refuses the body otherwise).
        assert data.doctor_id is not None and data.date is not None
        assert data.start_time is not None
        return Wanted(data.doctor_id, data.date, data.start_time, data.visit_type_id)
    hold = await _known(session, data.hold_id)
    status = hold.status(clinic.now)
    if status in (HoldStatus.BOOKED, HoldStatus.RELEASED):
        raise InvalidState(f"The hold has been {status}; hold the slot again.")
    held = {
        "doctor_id": hold.doctor_id,
        "date": hold.date,
        "start_time": hold.start_time,
        "visit_type_id": hold.visit_type_id,
    }
    for field, value in held.items():
        if field in data.model_fields_set and getattr(data, field) != value:
            raise InvalidInput(field, f"must match the hold ({value}) or be left out")
    return Wanted(hold.doctor_id, hold.date, hold.start_time, hold.visit_type_id)
