"""The waitlist (SPEC "Waitlist"): patients waiting for a freed slot, and their answers to the
slot offered to them. Offers themselves are made off the requests, by the matcher
(`services/waitlist/matcher.py`); a new entry, or one waiting again, queues it a job.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, InvalidState, NotFound, SlotUnavailable
from app.models import Appointment, Hold, Patient, WaitlistEntry
from app.models.enums import UPCOMING_STATUSES, AppointmentSource
from app.models.waitlist import OfferOutcome, WaitlistStatus
from app.schemas.appointment import AppointmentCreate
from app.schemas.waitlist import CRITERIA, WaitlistEntryCreate, WaitlistEntryRead, window_json
from app.services import booking_service, idempotency_service, visit_type_service
from app.services.booking import holds as holds_sql
from app.services.context import Caller, Clinic
from app.services.doctor_service import get_doctor
from app.services.idempotency_service import Answer
from app.services.outbox import jobs
from app.services.patient_service import create_patient, get_patient, normalise_mobile
from app.services.persistence import get_or_404
from app.services.waitlist import entries, offers

# How far ahead an entry may wait (SPEC: `end_date` at most 90 days after today).
MAX_DAYS_AHEAD = 90


async def create(
    session: AsyncSession, data: WaitlistEntryCreate, caller: Caller, clinic: Clinic
) -> WaitlistEntryRead:
    """Add a waiting entry; the matcher offers it a free slot at once if one fits."""
    _check_dates(data, clinic.today)
    patient_id = await _patient(session, data, clinic)
    doctor_id, visit_type_id = data.doctor_id, data.visit_type_id
    if data.appointment_id is not None:
        for field in CRITERIA:
            if field in data.model_fields_set and getattr(data, field) is not None:
                raise InvalidInput(field, "is taken from the appointment; leave it out")
        appointment = await _movable(session, data.appointment_id, patient_id, clinic)
        doctor_id, visit_type_id = appointment.doctor_id, appointment.visit_type_id
    else:
        offered: list[uuid.UUID] | None = None
        if doctor_id is not None:
            offered = list((await get_doctor(session, doctor_id)).visit_type_ids)
        if visit_type_id is not None:
            await visit_type_service.active_duration(session, visit_type_id)
            if offered is not None:
                visit_type_service.require_offered(offered, visit_type_id)
    entry = WaitlistEntry(
        patient_id=patient_id,
        doctor_id=doctor_id,
        specialization=None if data.appointment_id else data.specialization,
        language=None if data.appointment_id else data.language,
        consultation_type=None if data.appointment_id else data.consultation_type,
        visit_type_id=visit_type_id,
        start_date=data.start_date,
        end_date=data.end_date,
        weekdays=data.weekdays,
        times=window_json(data.times),
        appointment_id=data.appointment_id,
        notes=data.notes,
        actor=caller.actor,
        correlation_id=data.call_id or caller.correlation_id,
    )
    session.add(entry)
    await session.flush()
    await jobs.enqueue(session, jobs.WAITLIST, [entry.id])
    return await entries.read(session, entry.id, clinic)


def _check_dates(data: WaitlistEntryCreate, today: dt.date) -> None:
    if data.start_date < today:
        raise InvalidInput("start_date", "must not be before today")
    if data.end_date < data.start_date:
        raise InvalidInput("end_date", "must not be before start_date")
    if data.end_date > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidInput("end_date", f"must be at most {MAX_DAYS_AHEAD} days after today")


async def _patient(session: AsyncSession, data: WaitlistEntryCreate, clinic: Clinic) -> uuid.UUID:
    """The patient by id, or by mobile (an existing patient is reused, not overwritten)."""
    if data.patient_id is not None:
        return (await get_patient(session, data.patient_id)).id
    assert data.patient is not None
    mobile = normalise_mobile(
        data.patient.mobile_number, clinic.default_region, field="patient.mobile_number"
    )
    found = await session.scalar(select(Patient.id).where(Patient.mobile_number == mobile))
    if found is not None:
        return found
    return (await create_patient(session, data.patient, clinic.default_region)).id


async def _movable(
    session: AsyncSession, appointment_id: uuid.UUID, patient_id: uuid.UUID, clinic: Clinic
) -> Appointment:
    """The patient's own appointment, still to come, that they want earlier."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient_id:
        raise InvalidInput("appointment_id", "is not an appointment of this patient")
    starts_at = dt.datetime.combine(appointment.date, appointment.start_time, tzinfo=clinic.tz)
    if appointment.status not in UPCOMING_STATUSES or starts_at <= clinic.now:
        raise InvalidInput("appointment_id", "must be an active appointment still to come")
    return appointment


async def get(session: AsyncSession, entry_id: uuid.UUID, clinic: Clinic) -> WaitlistEntryRead:
    return await entries.read(session, entry_id, clinic)


@dataclass(frozen=True, slots=True)
class EntryFilters:
    status: WaitlistStatus | None = None
    patient_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None
    limit: int = 100
    offset: int = 0


async def list_entries(
    session: AsyncSession, filters: EntryFilters, clinic: Clinic
) -> list[WaitlistEntryRead]:
    """Oldest first."""
    query = select(WaitlistEntry, Hold).outerjoin(Hold, Hold.id == WaitlistEntry.hold_id)
    if filters.status is not None:
        query = query.where(WaitlistEntry.status == filters.status)
    if filters.patient_id is not None:
        query = query.where(WaitlistEntry.patient_id == filters.patient_id)
    if filters.doctor_id is not None:
        query = query.where(WaitlistEntry.doctor_id == filters.doctor_id)
    query = query.order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    rows = await session.execute(query.limit(filters.limit).offset(filters.offset))
    return [entries.shape(entry, hold, clinic) for entry, hold in rows]


async def _locked(session: AsyncSession, entry_id: uuid.UUID) -> WaitlistEntry:
    return await get_or_404(
        session, WaitlistEntry, entry_id, "Waitlist entry", lock=True, reload=True
    )


def _offered(entry: WaitlistEntry, verb: str) -> uuid.UUID:
    if entry.status != WaitlistStatus.OFFERED or entry.hold_id is None:
        raise InvalidState(f"The entry is {entry.status}; only an offered entry can be {verb}.")
    return entry.hold_id


async def cancel(session: AsyncSession, entry_id: uuid.UUID, clinic: Clinic) -> WaitlistEntryRead:
    """Stop waiting (again: unchanged); an offer's hold is let go. A booked entry: 409."""
    entry = await _locked(session, entry_id)
    if entry.status == WaitlistStatus.BOOKED:
        raise InvalidState("A booked entry cannot be cancelled; cancel the appointment instead.")
    if entry.status != WaitlistStatus.CANCELLED:
        if entry.hold_id is not None:
            await holds_sql.release_hold(session, entry.hold_id)
        await offers.end(session, entry, OfferOutcome.WITHDRAWN, WaitlistStatus.CANCELLED)
    return await entries.read(session, entry_id, clinic)


async def decline(session: AsyncSession, entry_id: uuid.UUID, clinic: Clinic) -> WaitlistEntryRead:
    """The patient does not want the slot: its hold is let go (the next entry may get it), and
    the entry waits again, never to be offered that slot again."""
    entry = await _locked(session, entry_id)
    hold_id = _offered(entry, "declined")
    await holds_sql.release_hold(session, hold_id)
    await offers.end(session, entry, OfferOutcome.DECLINED, WaitlistStatus.WAITING)
    await jobs.enqueue(session, jobs.WAITLIST, [entry.id])
    return await entries.read(session, entry_id, clinic)


class _AcceptRequest(BaseModel):
    """What an accept's idempotency key is checked against."""

    entry_id: uuid.UUID


class _SlotGone(Exception):
    def __init__(self, refusal: SlotUnavailable) -> None:
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accept's outcome: the answer, or the 409 to raise once the entry's return to
    waiting has committed (the caller's unit of work must end before it is raised)."""

    answer: Answer | None = None
    refusal: SlotUnavailable | None = None
    # The appointment change made now (`appointment_changes_total`), none when replayed.
    counted: str | None = None

    def settled(self) -> Answer:
        if self.refusal is not None:
            raise self.refusal
        assert self.answer is not None
        return self.answer


async def accept(
    session: AsyncSession,
    entry_id: uuid.UUID,
    source: AppointmentSource,
    caller: Caller,
    clinic: Clinic,
    idempotency_key: str | None,
) -> Accepted:
    """Book the offered slot (or move the entry's appointment to it): the entry is `booked`.
    A slot taken meanwhile (the hold had expired) is a 409 with the entry waiting again:
    the accept is undone to a SAVEPOINT and the entry handed back in the same transaction,
    which the caller commits before raising `Accepted.settled`'s refusal."""
    request = _AcceptRequest(entry_id=entry_id)
    try:
        async with session.begin_nested():
            # The SAVEPOINT now, before the key's claim on the driver (`offers.offer`).
            await session.connection()
            answer = await idempotency_service.once(
                session,
                caller.actor,
                idempotency_key,
                "accept_waitlist_offer",
                request,
                lambda: _book(session, entry_id, source, caller, clinic),
                status=200,
            )
    except _SlotGone as gone:
        entry = await _locked(session, entry_id)
        hold_id = _offered(entry, "accepted")
        await holds_sql.release_hold(session, hold_id)
        await offers.end(session, entry, OfferOutcome.GONE, WaitlistStatus.WAITING)
        await jobs.enqueue(session, jobs.WAITLIST, [entry.id])
        return Accepted(refusal=gone.refusal)
    if answer.replayed:
        return Accepted(answer=answer)
    moved = WaitlistEntryRead.model_validate(answer.body()).appointment_id is not None
    return Accepted(answer=answer, counted="rescheduled" if moved else "booked")


async def _book(
    session: AsyncSession,
    entry_id: uuid.UUID,
    source: AppointmentSource,
    caller: Caller,
    clinic: Clinic,
) -> WaitlistEntryRead:
    entry = await _locked(session, entry_id)
    hold_id = _offered(entry, "accepted")
    hold = await holds_sql.read_hold(session, hold_id)
    if hold is None:
        raise NotFound.of("Hold", hold_id)
    try:
        if entry.appointment_id is None:
            data = AppointmentCreate(source=source, patient_id=entry.patient_id, hold_id=hold_id)
            booked_id = (await booking_service.book(session, data, caller, clinic)).id
        else:
            # The hold keeps the slot for this move: let it go within the move's transaction.
            await holds_sql.release_hold(session, hold_id)
            moved = await booking_service.reschedule(
                session, entry.appointment_id, hold.date, hold.start_time, caller, clinic
            )
            await holds_sql.mark_booked(session, hold_id, moved.id)
            booked_id = moved.id
    except SlotUnavailable as refusal:
        raise _SlotGone(refusal) from None
    entry.booked_appointment_id = booked_id
    await offers.end(session, entry, OfferOutcome.ACCEPTED, WaitlistStatus.BOOKED)
    return await entries.read(session, entry_id, clinic)
