"""An entry as the API answers it (`WaitlistEntryRead`): its row and, while `offered`, the
hold that keeps its slot; and the `waitlist.*` messages, which carry it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import Hold, WaitlistEntry
from app.models.enums import HoldStatus, hold_unexpired
from app.models.waitlist import WaitlistStatus
from app.schemas.hold import HoldRead
from app.schemas.schedule import Window
from app.schemas.waitlist import WaitlistEntryRead, WaitlistOfferRead
from app.services.context import Clinic
from app.services.webhooks.events import WebhookEvent, queue_message


def shape(entry: WaitlistEntry, hold: Hold | None, clinic: Clinic) -> WaitlistEntryRead:
    offer = None
    if entry.status == WaitlistStatus.OFFERED and hold is not None:
        offer = WaitlistOfferRead(
            hold_id=hold.id,
            doctor_id=hold.doctor_id,
            date=hold.date,
            start_time=hold.start_time,
            end_time=hold.end_time,
            expires_at=hold.expires_at.astimezone(clinic.tz),
        )
    return WaitlistEntryRead(
        id=entry.id,
        patient_id=entry.patient_id,
        doctor_id=entry.doctor_id,
        specialization=entry.specialization,
        language=entry.language,
        consultation_type=entry.consultation_type,
        visit_type_id=entry.visit_type_id,
        start_date=entry.start_date,
        end_date=entry.end_date,
        weekdays=entry.weekdays,
        times=None if entry.times is None else [Window.model_validate(w) for w in entry.times],
        appointment_id=entry.appointment_id,
        notes=entry.notes,
        status=WaitlistStatus(entry.status),
        offer=offer,
        booked_appointment_id=entry.booked_appointment_id,
        created_at=entry.created_at,
    )


def hold_read(hold: Hold, clinic: Clinic) -> HoldRead:
    """The hold as `GET /holds/{id}` answers it."""
    status = HoldStatus(hold.status)
    if status is HoldStatus.ACTIVE and not hold_unexpired(hold.expires_at, clinic.now):
        status = HoldStatus.EXPIRED
    return HoldRead(
        id=hold.id,
        doctor_id=hold.doctor_id,
        date=hold.date,
        start_time=hold.start_time,
        end_time=hold.end_time,
        visit_type_id=hold.visit_type_id,
        status=status,
        expires_at=hold.expires_at.astimezone(clinic.tz),
        appointment_id=hold.appointment_id,
    )


async def read(session: AsyncSession, entry_id: uuid.UUID, clinic: Clinic) -> WaitlistEntryRead:
    """The entry as it is now (read again: a statement may have changed it meanwhile)."""
    query = (
        select(WaitlistEntry, Hold)
        .outerjoin(Hold, Hold.id == WaitlistEntry.hold_id)
        .where(WaitlistEntry.id == entry_id)
        .execution_options(populate_existing=True)
    )
    found = (await session.execute(query)).one_or_none()
    if found is None:
        raise NotFound.of("Waitlist entry", entry_id)
    return shape(found[0], found[1], clinic)


_PEOPLE = text(
    "SELECT p.id AS patient_id, p.name AS patient_name, p.mobile_number,"
    " d.id AS doctor_id, d.name AS doctor_name"
    " FROM patients p, doctors d WHERE p.id = :patient_id AND d.id = :doctor_id"
)


async def send(
    session: AsyncSession,
    event: WebhookEvent,
    entry_id: uuid.UUID,
    hold_id: uuid.UUID,
    clinic: Clinic,
) -> None:
    """Queue `waitlist.offered` or `waitlist.offer_expired`, in the caller's transaction:
    `{waitlist_entry, hold, patient, doctor}` as they read now (the patient's delivery is
    written to their access log by the webhook mirror)."""
    entry = await read(session, entry_id, clinic)
    hold = await session.get(Hold, hold_id, populate_existing=True)
    assert hold is not None
    people = (
        await session.execute(
            _PEOPLE, {"patient_id": entry.patient_id, "doctor_id": hold.doctor_id}
        )
    ).one()
    data: dict[str, Any] = {
        "waitlist_entry": entry.model_dump(mode="json"),
        "hold": hold_read(hold, clinic).model_dump(mode="json"),
        "patient": {
            "id": str(people.patient_id),
            "name": people.patient_name,
            "mobile_number": people.mobile_number,
        },
        "doctor": {"id": str(people.doctor_id), "name": people.doctor_name},
    }
    await queue_message(session, event, data, patient_id=entry.patient_id)
