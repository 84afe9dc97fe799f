"""What both adapters, the REST routes and the MCP tools, do the same way, written once below
them: the clinic as of a call; the unit of work an appointment change runs in, whose changes
count in `appointment_changes_total` once it has committed; and the changes themselves as
either adapter asks them, each noting what it counts. So a booking, a move or a cancel moves
the same metrics whichever way it came."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.config import Settings
from app.database import Sessions, unit_of_work
from app.models.appointment import Appointment
from app.schemas.appointment import AppointmentCreate
from app.schemas.series import SeriesCreate, SeriesRead
from app.services import (
    booking_service,
    confirmation_service,
    front_desk_service,
    idempotency_service,
    series_service,
)
from app.services.context import Caller, Clinic
from app.services.idempotency_service import Answer


def clinic_now(settings: Settings) -> dt.datetime:
    """The one place the service reads the clock for "now" (tests move it here)."""
    return dt.datetime.now(settings.timezone)


def clinic_of(settings: Settings) -> Clinic:
    """The clinic as of this call: its zone, its clock read once, its mirrors."""
    return Clinic(
        tz=settings.timezone,
        now=clinic_now(settings),
        default_region=settings.default_phone_region,
        calendar_enabled=settings.calendar_enabled,
        rag_enabled=settings.rag_enabled,
    )


@dataclass(frozen=True, slots=True)
class Change:
    """What a change needs: its unit of work (committed when `open_change`'s block ends), the
    clinic as of now, and who asks."""

    session: AsyncSession
    clinic: Clinic
    caller: Caller
    # `appointment_changes_total` actions, counted once the unit of work has committed.
    counted: list[str] = field(default_factory=list)


@asynccontextmanager
async def open_change(
    sessions: Sessions, settings: Settings, caller: Caller
) -> AsyncIterator[Change]:
    """A unit of work for `caller`, committed when the block ends (before the answer is sent);
    then the appointment changes made in it are counted."""
    async with unit_of_work(sessions) as session:
        change = Change(session, clinic_of(settings), caller)
        yield change
    for action in change.counted:
        metrics.APPOINTMENT_CHANGES.labels(action).inc()


async def book(change: Change, data: AppointmentCreate, idempotency_key: str | None) -> Answer:
    """`booking_service.book`, once per idempotency key: a retry with the key replays the first
    answer, and only a booking made now is counted."""
    session, caller = change.session, change.caller
    answer = await idempotency_service.once(
        session,
        caller.actor,
        idempotency_key,
        "book_appointment",
        data,
        lambda: booking_service.book(session, data, caller, change.clinic),
    )
    if not answer.replayed:
        change.counted.append("booked")
    return answer


async def book_series(change: Change, data: SeriesCreate, idempotency_key: str | None) -> Answer:
    """`series_service.book`, once per idempotency key, as `book`: each occurrence made now
    is counted as a booking."""
    session, caller = change.session, change.caller
    answer = await idempotency_service.once(
        session,
        caller.actor,
        idempotency_key,
        "book_series",
        data,
        lambda: series_service.book(session, data, caller, change.clinic),
    )
    if isinstance(answer.made, SeriesRead):
        change.counted.extend("booked" for _ in answer.made.appointments)
    return answer


async def cancel_series(
    change: Change, series_id: uuid.UUID, from_date: dt.date | None
) -> list[uuid.UUID]:
    """`series_service.cancel_from`, each occurrence it cancels counted as a cancel."""
    cancelled = await series_service.cancel_from(
        change.session, series_id, from_date, change.caller, change.clinic
    )
    change.counted.extend("cancelled" for _ in cancelled)
    return cancelled


async def reschedule(
    change: Change,
    appointment_id: uuid.UUID,
    date: dt.date,
    start_time: dt.time,
    doctor_id: uuid.UUID | None = None,
    *,
    confirmed: bool = False,
) -> Appointment:
    moved = await booking_service.reschedule(
        change.session,
        appointment_id,
        date,
        start_time,
        change.caller,
        change.clinic,
        doctor_id,
        confirmed=confirmed,
    )
    change.counted.append("rescheduled")
    return moved


async def cancel(change: Change, appointment_id: uuid.UUID) -> Appointment:
    cancelled = await booking_service.cancel(
        change.session, appointment_id, change.caller, change.clinic
    )
    change.counted.append("cancelled")
    return cancelled


async def confirm(change: Change, appointment_id: uuid.UUID) -> Appointment:
    """The patient agreed to the appointment's time."""
    confirmed = await confirmation_service.confirm(
        change.session, appointment_id, change.caller, change.clinic
    )
    change.counted.append("confirmed")
    return confirmed


async def take_step(
    change: Change, appointment_id: uuid.UUID, step: front_desk_service.Step
) -> Appointment:
    """A front desk step (check-in, complete, no-show), counted by its action."""
    appointment = await front_desk_service.take_step(
        change.session, appointment_id, step, change.caller, change.clinic
    )
    change.counted.append(str(step.action))
    return appointment


async def undo(change: Change, appointment_id: uuid.UUID) -> Appointment:
    """A check-in or no-show taken back (`front_desk_service.undo`), counted as `undo`."""
    appointment = await front_desk_service.undo(
        change.session, appointment_id, change.caller, change.clinic
    )
    change.counted.append("undo")
    return appointment
