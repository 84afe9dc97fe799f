"""Recurring series: a course of visits booked in one call, all or none; read; cancelled from a
date on.

Each occurrence is an ordinary appointment carrying `series_id`, written by the booking
statement (`booking.series`), so it is audited, mirrored to Google and announced to webhooks
as any booking is, one by one. Afterwards an occurrence is moved or cancelled alone through
`booking_service`, and keeps its `series_id`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from itertools import islice
from typing import Literal

from dateutil.rrule import DAILY, WEEKLY, rrule
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput, NotFound, SlotUnavailable
from app.models import Appointment, AppointmentSeries
from app.models.enums import UPCOMING_STATUSES, SeriesFrequency
from app.schemas.appointment import AppointmentRead
from app.schemas.series import MOST_OCCURRENCES, Recurrence, SeriesCreate, SeriesRead
from app.services import booking_service
from app.services.booking import sql as booking_sql
from app.services.booking.series import (
    Refused,
    conflict_sentence,
    conflicts,
    decide_and_write_series,
    written_together,
)
from app.services.booking.sql import Refusal, SeriesRecurrence
from app.services.context import Caller, Clinic
from app.services.doctor_service import get_doctor
from app.services.persistence import get_or_404
from app.services.scheduling.engine import SlotTime
from app.services.scheduling.queries import DoctorCalendar

_FREQUENCIES: dict[SeriesFrequency, Literal[2, 3]] = {
    SeriesFrequency.DAILY: DAILY,
    SeriesFrequency.WEEKLY: WEEKLY,
}


def occurrence_dates(start_date: dt.date, recurrence: Recurrence) -> list[dt.date]:
    """The series' dates: `start_date`, then every `interval` days or weeks, `count` times or
    up to `until` (included). Dates only: each visit is at the same wall-clock time in the
    clinic's zone, whatever its offset that day. More than 52, or an `until` giving fewer
    than 2: a 400 naming `recurrence.until`."""
    rule = rrule(
        _FREQUENCIES[recurrence.frequency],
        dtstart=dt.datetime.combine(start_date, dt.time()),
        interval=recurrence.interval,
        count=recurrence.count,
        until=None
        if recurrence.until is None
        else dt.datetime.combine(recurrence.until, dt.time()),
    )
    dates = [moment.date() for moment in islice(rule, MOST_OCCURRENCES + 1)]
    if len(dates) > MOST_OCCURRENCES:
        raise InvalidInput(
            "recurrence.until", f"gives more than {MOST_OCCURRENCES} visits; choose an earlier date"
        )
    if len(dates) < 2:
        raise InvalidInput("recurrence.until", "gives fewer than 2 visits; choose a later date")
    return dates


async def book(
    session: AsyncSession, data: SeriesCreate, caller: Caller, clinic: Clinic
) -> SeriesRead:
    """Book every occurrence in one transaction, or none: if any cannot be booked, raise
    `SlotUnavailable` with each one's reason and alternatives in `conflicts` (the earliest's
    at the top level)."""
    days = occurrence_dates(data.start_date, data.recurrence)
    patient = booking_service.new_patient(data.patient, clinic)
    series_id, new_patient_id = uuid.uuid4(), uuid.uuid4()
    recurrence = SeriesRecurrence(
        str(data.recurrence.frequency),
        data.recurrence.interval,
        data.recurrence.count,
        data.recurrence.until,
    )

    async def write(
        read: DoctorCalendar, slots: Sequence[tuple[dt.date, SlotTime]]
    ) -> list[AppointmentRead] | Refusal:
        rows = [
            {
                **booking_sql.booking_row(
                    read=read,
                    day=day,
                    slot=slot,
                    patient_id=data.patient_id,
                    new_patient=patient,
                    source=data.source,
                    visit_type_id=data.visit_type_id,
                    caller=caller,
                    mirror_to_calendar=clinic.calendar_enabled,
                    clinic=clinic,
                    confirmed=data.confirmed,
                    series_id=series_id,
                ),
                # One new patient for every occurrence (created once, or found by mobile).
                "new_patient_id": new_patient_id,
            }
            for day, slot in slots
        ]
        written = await booking_sql.write_series(session, rows, recurrence)
        return written_together(
            [booking_sql.outcome(one, row) for one, row in zip(written, rows, strict=True)]
        )

    decided = await decide_and_write_series(
        session, data.doctor_id, days, data.start_time, data.visit_type_id, clinic, write
    )
    if isinstance(decided, Refused):
        found = await conflicts(session, decided, data.start_time, clinic)
        first = found[0]
        raise SlotUnavailable(
            conflict_sentence(found, len(days)),
            extra={
                "reason": first.reason,
                "alternatives": first.alternatives,
                "conflicts": [c.body() for c in found],
            },
        )
    if decided is Refusal.PATIENT_MISSING:
        raise NotFound.of("Patient", data.patient_id)
    assert isinstance(decided, list)
    return SeriesRead(series_id=series_id, recurrence=data.recurrence, appointments=decided)


def _recurrence(series: AppointmentSeries) -> Recurrence:
    return Recurrence(
        frequency=SeriesFrequency(series.frequency),
        interval=series.repeat_interval,
        count=series.count,
        until=series.until,
    )


async def get_series(session: AsyncSession, series_id: uuid.UUID) -> SeriesRead:
    """The series with every occurrence, cancelled ones included, by current date and time."""
    series = await get_or_404(session, AppointmentSeries, series_id, "Series")
    occurrences = await session.scalars(
        select(Appointment)
        .where(Appointment.series_id == series_id)
        .order_by(Appointment.date, Appointment.start_time)
    )
    return SeriesRead(
        series_id=series.id,
        recurrence=_recurrence(series),
        appointments=[AppointmentRead.model_validate(a) for a in occurrences],
    )


async def cancel_from(
    session: AsyncSession,
    series_id: uuid.UUID,
    from_date: dt.date | None,
    caller: Caller,
    clinic: Clinic,
) -> list[uuid.UUID]:
    """Cancel the series' booked or rescheduled occurrences dated on or after `from_date`
    (default today) that have not started, each as a single cancel (its audit row, Google
    event and webhook message); the rest stay. The ids cancelled now, by date and time."""
    series = await get_or_404(session, AppointmentSeries, series_id, "Series")
    # The doctor's lock first, as every change of an appointment takes it: no occurrence
    # changes between the list below and its cancel.
    await get_doctor(session, series.doctor_id, lock=True)
    first = from_date or clinic.today
    upcoming = await session.execute(
        select(Appointment.id, Appointment.date, Appointment.start_time)
        .where(
            Appointment.series_id == series_id,
            Appointment.status.in_(UPCOMING_STATUSES),
            Appointment.date >= first,
        )
        .order_by(Appointment.date, Appointment.start_time)
    )
    cancelled: list[uuid.UUID] = []
    for appointment_id, day, start in upcoming.all():
        if dt.datetime.combine(day, start, tzinfo=clinic.tz) <= clinic.now:
            continue
        await booking_service.cancel(session, appointment_id, caller, clinic)
        cancelled.append(appointment_id)
    return cancelled
