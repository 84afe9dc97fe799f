"""The Google Calendar mirror: each doctor's calendar shows their active appointments.

Google is written to, never read for booking decisions. A change to an appointment queues a
`calendar` outbox job in the change's own transaction (`appointments_changed`); the dispatcher
later hands the job to `CalendarMirror`, which reads the appointment as it is then, makes
Google match it (`google_calendar.client`), and records the outcome on the appointment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import EventDetails, Settings
from app.database import Sessions, unit_of_work
from app.models import Appointment
from app.models.enums import ACTIVE_STATUSES, AppointmentStatus, CalendarSyncStatus
from app.schemas.common import format_clock
from app.services.context import Clinic
from app.services.outbox import jobs
from app.services.outbox.jobs import ClaimedJob

if TYPE_CHECKING:  # the Google client libraries load only where the mirror runs
    from app.services.google_calendar.client import GoogleCalendarClient


async def appointments_changed(
    session: AsyncSession, appointments: Iterable[Appointment], clinic: Clinic
) -> None:
    """Owe Google these appointments' new state: marked pending and queued, in the same
    transaction as the change. (The booking statement does the same inline, and
    `remirror_upcoming` in bulk.)"""
    if not clinic.calendar_enabled:
        return
    changed = list(appointments)
    for appointment in changed:
        appointment.calendar_sync_status = CalendarSyncStatus.PENDING
    await session.flush()
    await jobs.enqueue(session, jobs.CALENDAR, [a.id for a in changed])


_MIRRORED_STATUSES = (*ACTIVE_STATUSES, AppointmentStatus.NO_SHOW)


async def remirror_upcoming(
    session: AsyncSession, today: dt.date, *, doctor_id: UUID | None = None
) -> int:
    """Queue every appointment with an event from `today` on (of one doctor, or all): after
    a doctor's e-mail (their calendar) changed, a calendar was wiped, or
    `GOOGLE_CALENDAR_EVENT_DETAILS` changed. Existing events are rewritten, not only missing
    ones recreated."""
    query = (
        update(Appointment)
        # A no-show keeps its event (shown free), so it is rewritten and moved as well.
        .where(Appointment.date >= today, Appointment.status.in_(_MIRRORED_STATUSES))
        .values(calendar_sync_status=CalendarSyncStatus.PENDING)
        .returning(Appointment.id)
    )
    if doctor_id is not None:
        query = query.where(Appointment.doctor_id == doctor_id)
    ids = list((await session.execute(query)).scalars())
    await jobs.enqueue(session, jobs.CALENDAR, ids)
    return len(ids)


# The patient's columns come back NULL when the setting keeps them out of Google, so the
# mirror never holds what it may not send.
_LOAD = text(
    """
    SELECT a.id, a.date, a.start_time, a.end_time, a.status, a.source,
           a.google_calendar_event_id, a.google_calendar_id,
           d.email AS doctor_email, d.name AS doctor_name,
           CASE WHEN :with_patient THEN p.id END AS patient_id,
           CASE WHEN :with_patient THEN p.name END AS patient_name,
           CASE WHEN :with_mobile THEN p.mobile_number END AS mobile_number,
           v.name AS visit_type_name
      FROM appointments a
      JOIN doctors d ON d.id = a.doctor_id
      JOIN patients p ON p.id = a.patient_id
      LEFT JOIN visit_types v ON v.id = a.visit_type_id
     WHERE a.id = :id
    """
)


# What the front desk recorded, in front of the title, so the doctor sees it in the day view.
# A cancelled appointment has no event at all.
_STATUS_MARKERS = {
    AppointmentStatus.CHECKED_IN: "Checked in",
    AppointmentStatus.COMPLETED: "Completed",
    AppointmentStatus.NO_SHOW: "No-show",
}


def event_body(row: Row[Any], timezone: str, details: EventDetails) -> dict[str, Any]:
    """What the doctor sees in their calendar for one appointment; `details` is how much of
    the patient it shows (`GOOGLE_CALENDAR_EVENT_DETAILS`)."""

    def when(day: dt.date, t: dt.time) -> dict[str, str]:
        return {
            "dateTime": f"{day.isoformat()}T{t.isoformat(timespec='seconds')}",
            "timeZone": timezone,
        }

    marker = _STATUS_MARKERS.get(row.status)
    prefix = f"{marker} - " if marker else ""
    time_and_source = (
        f"Time: {format_clock(row.start_time)}-{format_clock(row.end_time)} ({timezone})\n"
        f"Booked via: {row.source}\nAppointment id: {row.id}"
    )
    if details == "none":
        summary = f"{prefix}Appointment"
        description = (
            f"{time_and_source}\n"
            "The patient is in the clinic's booking system, under this appointment id."
        )
        # Google merges a patch into the stored event and deletes only keys sent as null: an
        # event written under another setting would otherwise keep its patient id.
        private: dict[str, str | None] = {"appointment_id": str(row.id), "patient_id": None}
    else:
        # The visit type tells the doctor what the time is for; without one, a plain
        # appointment.
        kind = row.visit_type_name or "Appointment"
        summary = f"{prefix}{kind}: {row.patient_name}"
        mobile = f"Mobile: {row.mobile_number}\n" if details == "full" else ""
        description = f"Visit: {kind}\nPatient: {row.patient_name}\n{mobile}{time_and_source}"
        private = {"appointment_id": str(row.id), "patient_id": str(row.patient_id)}
    return {
        "summary": summary,
        "description": description,
        "start": when(row.date, row.start_time),
        "end": when(row.date, row.end_time),
        "status": "confirmed",
        # A no-show's time is free again; the event stays as the record of the missed visit.
        "transparency": "transparent" if row.status == AppointmentStatus.NO_SHOW else "opaque",
        "extendedProperties": {"private": private},
    }


class CalendarMirror:
    """Delivers `calendar` outbox jobs and records the result on the appointment."""

    target = jobs.CALENDAR

    def __init__(
        self,
        settings: Settings,
        sessionmaker: Sessions,
        client: GoogleCalendarClient | None = None,
    ) -> None:
        from app.services.google_calendar.client import GoogleCalendarClient

        self._settings = settings
        self._sessionmaker = sessionmaker
        self._client = client or GoogleCalendarClient(settings)
        self._executor = ThreadPoolExecutor(
            max_workers=settings.dispatcher_concurrency, thread_name_prefix="gcal"
        )

    async def deliver(self, job: ClaimedJob) -> dict[str, Any]:
        from app.services.google_calendar.client import EventSpec, event_id_for

        details = self._settings.google_calendar_event_details
        async with unit_of_work(self._sessionmaker) as session:
            row = (
                await session.execute(
                    _LOAD,
                    {
                        "id": job.aggregate_id,
                        "with_patient": details != "none",
                        "with_mobile": details == "full",
                    },
                )
            ).one_or_none()
        if row is None:
            return {"skipped": "appointment not found"}
        spec = EventSpec(
            event_id=event_id_for(row.id),
            calendar_id=row.doctor_email,
            previous_calendar_id=row.google_calendar_id,
            known=row.google_calendar_event_id is not None,
            active=row.status != AppointmentStatus.CANCELLED,
            body=event_body(row, self._settings.clinic_timezone, details),
        )
        loop = asyncio.get_running_loop()
        event_id = await loop.run_in_executor(self._executor, self._client.apply, spec)
        return {"event_id": event_id, "calendar_id": spec.calendar_id if event_id else None}

    async def lock(self, session: AsyncSession, job: ClaimedJob) -> None:
        # A reschedule or cancellation locks the appointment, then queues its job; settling
        # takes them in the same order.
        await session.execute(
            text("SELECT 1 FROM appointments WHERE id = :id FOR NO KEY UPDATE"),
            {"id": job.aggregate_id},
        )

    async def record(
        self,
        session: AsyncSession,
        job: ClaimedJob,
        status: str,
        error: str | None,
        result: dict[str, Any] | None,
    ) -> None:
        """Write the sync state on the appointment, inside the job's settle transaction."""
        if await jobs.has_pending(session, self.target, job.aggregate_id):
            status = "pending"  # a newer change is already queued
        params: dict[str, Any] = {"id": job.aggregate_id, "status": status, "error": error}
        assignments = "calendar_sync_status = :status, calendar_sync_error = :error"
        if result is not None and "event_id" in result:
            assignments += ", google_calendar_event_id = :event_id, google_calendar_id = :cal"
            params.update(event_id=result["event_id"], cal=result.get("calendar_id"))
        await session.execute(
            text(f"UPDATE appointments SET {assignments} WHERE id = :id"),
            params,
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
