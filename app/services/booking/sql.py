"""The statements that write a booking: claim a doctor's day, and book if it is unchanged.

A booking reads its day with the availability read (`scheduling.queries.load_doctor_calendar`),
which returns the day's leaves and bookings with two versions (migration 0004): the doctor's
schedule version and the day's version. The engine decides on what was read; then
`book_if_current` claims the day by bumping its version, on the condition that both versions
are still the ones read, and writes everything at once: the patient (when new), the
appointment, its audit row and, when the calendar is mirrored, its outbox job and the
dispatchers' wake-up. The statement takes its bookings as rows (`write_bookings`), each
claimed, checked and written on its own, so bookings that arrive together are written by one
statement and one commit (`booking.batch`).

Why that is enough: every change to a doctor's day bumps that day's version through a
trigger. A change committed after the read shows up as a new version. One still in flight
holds the day's row lock, so the claim waits for it, and PostgreSQL then re-checks the
condition against the committed row: the claim fails and the caller reads again. Bookings for
one doctor on different days touch different rows and never wait for each other. The partial
unique index on active slots stays as the last line of defence.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import commits_at_once
from app.models.enums import (
    AppointmentAction,
    AppointmentSource,
    AppointmentStatus,
    CalendarSyncStatus,
    ConfirmationStatus,
    HoldStatus,
    active_status_sql,
)
from app.schemas.appointment import AppointmentRead
from app.services.booking import batch
from app.services.booking.audit import event_values, insert_events, snapshot_of
from app.services.booking.batch import Row
from app.services.context import Caller, Clinic
from app.services.outbox import jobs
from app.services.reminders import plan as reminders
from app.services.scheduling.engine import SlotTime
from app.services.scheduling.queries import DoctorCalendar
from app.services.webhooks import appointments
from app.sql import Sql, execute, fetch, values_list, values_of

_CLAIM_DAYS = Sql(
    """
    INSERT INTO doctor_days AS v (doctor_id, date, version)
    SELECT :doctor_id, day, 1 FROM unnest(:days::date[]) AS day ORDER BY day
    ON CONFLICT (doctor_id, date) DO UPDATE SET version = v.version + 1
    """
)


async def claim_days(session: AsyncSession, doctor_id: uuid.UUID, days: set[dt.date]) -> None:
    """Take these days of the doctor for this transaction, before reading them.

    A booking claims its day as it writes; a change that reads the day first (a reschedule,
    a booking deciding again) claims it up front, so a booking in flight either finished
    before the read or waits for this transaction and then finds its claim stale. Days are
    claimed in date order, so two claimers never wait on each other in a cycle.
    """
    await execute(session, _CLAIM_DAYS, doctor_id=doctor_id, days=sorted(days))


@dataclass(frozen=True, slots=True)
class NewPatient:
    """A caller not yet known by id: found by the normalised mobile, or created."""

    name: str
    mobile: str
    email: str | None
    gender: str | None
    date_of_birth: dt.date | None


# The claim both writes (a booking, a hold) make, for each row of `wanted` (doctor_id,
# schedule_version, day, day_version): `claimed` has the row's doctor and day only if the
# doctor's schedule and the day are still at the versions read, and it moves the day's version.
# A day no one has claimed yet is read as version 0 and claimed as version 1. Days are claimed
# in (doctor, day) order, so two statements claiming several never wait on each other in a
# cycle; a statement claims a day at most once.
CLAIM = """
    claimed AS (
        INSERT INTO doctor_days AS v (doctor_id, date, version)
        SELECT w.doctor_id, w.day, w.day_version + 1
          FROM wanted w
         WHERE w.schedule_version = (SELECT schedule_version FROM doctors WHERE id = w.doctor_id)
         ORDER BY w.doctor_id, w.day
        ON CONFLICT (doctor_id, date) DO UPDATE SET version = v.version + 1
        WHERE v.version = excluded.version - 1
        RETURNING doctor_id, date
    )"""


def claim_values(read: DoctorCalendar, day: dt.date) -> dict[str, object]:
    """What `CLAIM` needs of one write: the versions `read` saw of the doctor's schedule and of
    `day`."""
    return {
        "doctor_id": read.doctor_id,
        "schedule_version": read.schedule_version,
        "day": day,
        "day_version": read.day_versions.get(day, 0),
    }


# One row per booking (`booking_row`), so bookings arriving together are written by one
# statement (`booking.batch`); statuses go in as text and are cast where they are stored.
_BOOKING_COLUMNS = {
    "appointment_id": "uuid",
    "doctor_id": "uuid",
    "schedule_version": "int",
    "day": "date",
    "day_version": "int",
    "start_time": "time",
    "end_time": "time",
    "status": "text",
    "source": "text",
    "visit_type_id": "uuid",
    "calendar_sync_status": "text",
    "patient_id": "uuid",
    "new_patient_id": "uuid",
    "name": "varchar",
    "mobile": "varchar",
    "email": "varchar",
    "gender": "varchar",
    "date_of_birth": "date",
    "mirror": "boolean",
    "hold_id": "uuid",
    "action": "text",
    "before": "text",
    "after": "text",
    "actor": "text",
    "correlation_id": "text",
    "series_id": "uuid",
    "confirmed": "boolean",
    "tz": "text",
    "planned_at": "timestamptz",
}


@cache
def _book(size: int) -> Sql:
    text = _BOOK.replace("{values}", values_list(_BOOKING_COLUMNS, size))
    return Sql(text.replace("{series}", ""), standalone=True)


# A series is written by the booking statement too, with the series' row beside its
# appointments. Never at once: it runs in its unit of work's transaction, so that what the
# partial unique index might still refuse (a row not booked beside rows booked) rolls back.
_SERIES = """
    series AS (
        INSERT INTO appointment_series (id, doctor_id, patient_id, start_date, start_time,
                                        visit_type_id, frequency, repeat_interval, count, until)
        SELECT w.series_id, w.doctor_id, p.id, w.day, w.start_time, w.visit_type_id,
               :frequency::text, :repeat_interval::int, :count::int, :until::date
          FROM wanted w JOIN patient p ON p.n = w.n
         WHERE w.n = 0 AND EXISTS (SELECT 1 FROM booked)
        RETURNING id
    ),"""


@cache
def _book_series(size: int) -> Sql:
    text = _BOOK.replace("{values}", values_list(_BOOKING_COLUMNS, size))
    return Sql(text.replace("{series}", _SERIES))


# The booked appointments as the reminders' plan reads them, with the clinic's zone and clock.
_BOOKED_TO_PLAN = """(SELECT b.id, b.date, b.start_time, b.status, b.confirmation_status,
                             w.tz, w.planned_at
                        FROM booked b JOIN wanted w ON w.appointment_id = b.id)"""

_BOOK = f"""
    WITH wanted ({", ".join(_BOOKING_COLUMNS)}, n) AS (
        VALUES {{values}}
    ), {CLAIM}, current AS (
        -- A series' rows are current only together: one stale day reads the whole series
        -- again, so a series is written all or none.
        SELECT w.* FROM wanted w JOIN claimed c ON c.doctor_id = w.doctor_id AND c.date = w.day
         WHERE w.series_id IS NULL
            OR NOT EXISTS (SELECT 1 FROM wanted o
                            WHERE o.series_id = w.series_id
                              AND NOT EXISTS (SELECT 1 FROM claimed k
                                               WHERE k.doctor_id = o.doctor_id
                                                 AND k.date = o.day))
    ), hold AS (
        -- No hold, or one not yet booked or released (an expired one books if still free).
        SELECT w.n FROM wanted w
         WHERE w.hold_id IS NULL
            OR EXISTS (SELECT 1 FROM holds h
                        WHERE h.id = w.hold_id AND h.status = '{HoldStatus.ACTIVE}')
    ), new_patient AS (
        INSERT INTO patients (id, name, mobile_number, email, gender, date_of_birth)
        SELECT new_patient_id, name, mobile, email, gender, date_of_birth
          FROM current WHERE mobile IS NOT NULL
         ORDER BY mobile
        ON CONFLICT (mobile_number) DO NOTHING
        RETURNING id, mobile_number
    ), patient AS (
        SELECT w.n, coalesce(
                   (SELECT id FROM new_patient WHERE mobile_number = w.mobile),
                   (SELECT id FROM patients
                     WHERE id = w.patient_id OR mobile_number = w.mobile LIMIT 1)) AS id
          FROM wanted w
    ), booked AS (
        INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time,
                                  status, source, visit_type_id, calendar_sync_status,
                                  series_id, confirmation_status, confirmed_at)
        SELECT c.appointment_id, c.doctor_id, p.id, c.day, c.start_time, c.end_time,
               c.status::appointment_status, c.source::appointment_source, c.visit_type_id,
               c.calendar_sync_status::calendar_sync_status, c.series_id,
               CASE WHEN c.confirmed THEN '{ConfirmationStatus.CONFIRMED}'
                    ELSE '{ConfirmationStatus.UNCONFIRMED}' END,
               CASE WHEN c.confirmed THEN c.planned_at END
          FROM current c JOIN patient p ON p.n = c.n AND p.id IS NOT NULL
          JOIN hold h ON h.n = c.n
        ON CONFLICT (doctor_id, date, start_time) WHERE {active_status_sql()}
        DO NOTHING
        RETURNING *
    ), booked_as_wanted AS (
        SELECT b.id, b.source, w.hold_id, w.mirror, w.action, w.before, w.after, w.actor,
               w.correlation_id
          FROM booked b JOIN wanted w ON w.appointment_id = b.id
    ), converted AS (
        UPDATE holds SET status = '{HoldStatus.BOOKED}', appointment_id = b.id, updated_at = now()
          FROM booked_as_wanted b WHERE holds.id = b.hold_id
        RETURNING holds.id
    ),{{series}} audited AS (
        {insert_events("booked_as_wanted")}
        RETURNING 1
    ), {jobs.queue_jobs(jobs.CALENDAR, "SELECT id FROM booked_as_wanted WHERE mirror")},
    {reminders.plan_sql(_BOOKED_TO_PLAN, new=True)},
    {appointments.booked_sql("booked")}
    SELECT w.n, c.n IS NOT NULL AS current, p.id AS found_patient, h.n IS NOT NULL AS hold_ok,
           (SELECT count(*) FROM converted) AS converted, (SELECT count(*) FROM audited) AS audited,
           (SELECT count(*) FROM woken) AS woken,
           (SELECT count(*) FROM webhook_woken) AS webhook_woken, b.*
      FROM wanted w
      LEFT JOIN current c ON c.n = w.n
      LEFT JOIN patient p ON p.n = w.n
      LEFT JOIN hold h ON h.n = w.n
      LEFT JOIN booked b ON b.id = w.appointment_id
     WHERE w.appointment_id IS NOT NULL
     ORDER BY w.n
    """


class Refusal(enum.Enum):
    """Why `book_if_current` wrote nothing."""

    STALE = "the day or the schedule changed since it was read; read again"
    PATIENT_RACE = "a first booking for the same new mobile committed meanwhile; read again"
    PATIENT_MISSING = "no patient has that id"
    HOLD_GONE = "the hold was booked or released meanwhile"
    SLOT_TAKEN = "the engine does not offer the slot, or an active appointment starts there"


async def write_bookings(session: AsyncSession, rows: Sequence[Row]) -> list[asyncpg.Record]:
    """Write each row (`booking_row`) if its day is still at the version read: one statement,
    one answer per row, in order (`outcome` reads it)."""
    size, values = values_of(_BOOKING_COLUMNS, rows)
    return await fetch(session, _book(size), **values)


# A series has up to 52 occurrences, written by one statement: its VALUES lists come in
# sizes of their own, past the batches' 16 (`app.sql.VALUES_SIZES`).
SERIES_SIZES = (2, 4, 8, 16, 32, 64)


@dataclass(frozen=True, slots=True)
class SeriesRecurrence:
    """What the series' row stores beside its first occurrence's doctor, day and time."""

    frequency: str
    repeat_interval: int
    count: int | None
    until: dt.date | None


async def write_series(
    session: AsyncSession, rows: Sequence[Row], recurrence: SeriesRecurrence
) -> list[asyncpg.Record]:
    """Write a series' rows (`booking_row`, each with the same `series_id` and patient) and
    the series' row, all or none: in the unit of work's transaction, each row's answer in
    order as `write_bookings` gives it."""
    size, values = values_of(_BOOKING_COLUMNS, rows, SERIES_SIZES)
    return await fetch(
        session,
        _book_series(size),
        frequency=recurrence.frequency,
        repeat_interval=recurrence.repeat_interval,
        count=recurrence.count,
        until=recurrence.until,
        **values,
    )


def booking_row(
    *,
    read: DoctorCalendar,
    day: dt.date,
    slot: SlotTime,
    patient_id: uuid.UUID | None,
    new_patient: NewPatient | None,
    source: AppointmentSource,
    caller: Caller,
    mirror_to_calendar: bool,
    clinic: Clinic,
    confirmed: bool = False,
    visit_type_id: uuid.UUID | None = None,
    hold_id: uuid.UUID | None = None,
    series_id: uuid.UUID | None = None,
) -> Row:
    """The row `write_bookings` writes for booking `slot` on `day`, decided on `read`
    (`confirmed`: the caller agreed to that time; `clinic`: its zone and clock plan the
    reminders)."""
    status = AppointmentStatus.BOOKED
    return {
        "appointment_id": uuid.uuid4(),
        **claim_values(read, day),
        "start_time": slot.start,
        "end_time": slot.end,
        "status": status,
        "source": source,
        "visit_type_id": visit_type_id,
        "calendar_sync_status": (
            CalendarSyncStatus.PENDING if mirror_to_calendar else CalendarSyncStatus.DISABLED
        ),
        "patient_id": patient_id,
        "new_patient_id": uuid.uuid4(),
        "name": new_patient.name if new_patient else None,
        "mobile": new_patient.mobile if new_patient else None,
        "email": new_patient.email if new_patient else None,
        "gender": new_patient.gender if new_patient else None,
        "date_of_birth": new_patient.date_of_birth if new_patient else None,
        "mirror": mirror_to_calendar,
        "hold_id": hold_id,
        "series_id": series_id,
        **event_values(
            AppointmentAction.CREATED,
            caller,
            None,
            snapshot_of(read.doctor_id, day, slot.start, slot.end, status),
        ),
        "confirmed": confirmed,
        "tz": clinic.tz.key,
        "planned_at": clinic.now,
    }


def outcome(written: asyncpg.Record, row: Row) -> AppointmentRead | Refusal:
    """What `write_bookings` did with `row`: the appointment, or why it wrote nothing."""
    if written["id"] is not None:
        return AppointmentRead.model_validate(dict(written.items()))
    if not written["current"]:
        return Refusal.STALE
    if written["found_patient"] is None:
        return Refusal.PATIENT_RACE if row["mobile"] is not None else Refusal.PATIENT_MISSING
    if not written["hold_ok"]:
        return Refusal.HOLD_GONE
    return Refusal.SLOT_TAKEN


async def book_if_current(session: AsyncSession, row: Row) -> AppointmentRead | Refusal:
    """Book as `row` (`booking_row`) says if the doctor's schedule and the day are still as its
    read saw them (and, through its hold, mark the hold booked).

    When the statement would commit by itself, the booking is written with those arriving
    meanwhile (`booking.batch`); inside a transaction (a booking deciding again, or one with an
    idempotency key) it is written alone, in it."""

    async def write(rows: Sequence[Row]) -> list[asyncpg.Record]:
        return await write_bookings(session, rows)

    if commits_at_once(session):
        key = (row["doctor_id"], row["day"])
        written = await batch.batcher("write").run(row, key, write)
    else:
        (written,) = await write([row])
    return outcome(written, row)
