"""The statements that write a booking: claim a doctor's day, and book if it is unchanged.

A booking reads its day with the availability read (`scheduling.queries.load_doctor_calendar`),
which returns the day's leaves and bookings with two versions (migration 0004): the doctor's
schedule version and the day's version. The engine decides on what was read; then
`book_if_current` claims the day by bumping its version, on the condition that both versions
are still the ones read, and writes everything at once: the patient (when new), the
appointment, its audit row and, when the calendar is mirrored, its outbox job and the
dispatchers' wake-up.

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
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.database import Sql, execute, fetchrow
from app.models.enums import (
    AppointmentAction,
    AppointmentSource,
    AppointmentStatus,
    CalendarSyncStatus,
    active_status_sql,
)
from app.schemas.appointment import AppointmentRead
from app.services.booking.audit import event_values, insert_events, snapshot_of
from app.services.context import Caller
from app.services.outbox import jobs
from app.services.scheduling.engine import SlotTime
from app.services.scheduling.queries import DoctorCalendar

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


# The claim both writes (a booking, a hold) make: `day` has a row only if the doctor's schedule
# and the day are still at the versions read, and it moves the day's version.
CLAIM = """
    doctor AS (
        SELECT id FROM doctors WHERE id = :doctor_id AND schedule_version = :schedule_version
    ), day AS (
        INSERT INTO doctor_days AS v (doctor_id, date, version)
        SELECT id, :day, 1 FROM doctor
        ON CONFLICT (doctor_id, date) DO UPDATE SET version = v.version + 1
        WHERE v.version = :day_version
        RETURNING doctor_id
    )"""


def claim_values(read: DoctorCalendar, day: dt.date) -> dict[str, object]:
    """`CLAIM`'s parameters: the versions `read` saw of the doctor's schedule and of `day`."""
    return {
        "doctor_id": read.doctor_id,
        "schedule_version": read.schedule_version,
        "day": day,
        "day_version": read.day_versions.get(day, 0),
    }


_BOOK = Sql(
    f"""
    WITH {CLAIM}, hold AS (
        -- No hold, or one not yet booked or released (an expired one books if still free).
        SELECT 1 AS ok WHERE :hold_id::uuid IS NULL
        UNION ALL
        SELECT 1 FROM holds WHERE id = :hold_id::uuid AND status = 'active'
    ), new_patient AS (
        INSERT INTO patients (id, name, mobile_number, email, gender, date_of_birth)
        SELECT :new_patient_id::uuid, :name::varchar, :mobile::varchar, :email::varchar,
               :gender::varchar, :date_of_birth::date
          FROM day WHERE :mobile IS NOT NULL
        ON CONFLICT (mobile_number) DO NOTHING
        RETURNING id
    ), patient AS (
        SELECT id FROM new_patient
        UNION ALL
        SELECT id FROM patients WHERE id = :patient_id OR mobile_number = :mobile
        LIMIT 1
    ), booked AS (
        INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time,
                                  status, source, visit_type_id, calendar_sync_status)
        SELECT :appointment_id, day.doctor_id, patient.id, :day, :start_time, :end_time,
               :status, :source, :visit_type_id::uuid, :calendar_sync_status
          FROM day, patient, hold
        ON CONFLICT (doctor_id, date, start_time) WHERE {active_status_sql()}
        DO NOTHING
        RETURNING *
    ), converted AS (
        UPDATE holds SET status = 'booked', appointment_id = booked.id, updated_at = now()
          FROM booked WHERE holds.id = :hold_id::uuid
        RETURNING holds.id
    ), audited AS (
        {insert_events("booked")}
        RETURNING 1
    ), {jobs.queue_jobs(jobs.CALENDAR, "SELECT id FROM booked WHERE :mirror::boolean")}
    SELECT (SELECT count(*) FROM day) AS current, (SELECT id FROM patient) AS found_patient,
           (SELECT count(*) FROM hold) AS hold_ok, (SELECT count(*) FROM converted) AS converted,
           (SELECT count(*) FROM audited) AS audited, (SELECT count(*) FROM woken) AS woken,
           booked.*
      FROM (SELECT 1) AS one LEFT JOIN booked ON true
    """,
    # Complete by itself: everything the booking writes is in this one statement.
    standalone=True,
)


class Refusal(enum.Enum):
    """Why `book_if_current` wrote nothing."""

    STALE = "the day or the schedule changed since it was read; read again"
    PATIENT_RACE = "a first booking for the same new mobile committed meanwhile; read again"
    PATIENT_MISSING = "no patient has that id"
    HOLD_GONE = "the hold was booked or released meanwhile"
    SLOT_TAKEN = "the engine does not offer the slot, or an active appointment starts there"


async def book_if_current(
    session: AsyncSession,
    *,
    read: DoctorCalendar,
    day: dt.date,
    slot: SlotTime,
    patient_id: uuid.UUID | None,
    new_patient: NewPatient | None,
    source: AppointmentSource,
    caller: Caller,
    mirror_to_calendar: bool,
    visit_type_id: uuid.UUID | None = None,
    hold_id: uuid.UUID | None = None,
) -> AppointmentRead | Refusal:
    """Book `slot` on `day` if the doctor's schedule and day are still as `read` saw them
    (and, through `hold_id`, mark the hold booked)."""
    status = AppointmentStatus.BOOKED
    row = await fetchrow(
        session,
        _BOOK,
        appointment_id=uuid.uuid4(),
        **claim_values(read, day),
        start_time=slot.start,
        end_time=slot.end,
        status=status,
        source=source,
        visit_type_id=visit_type_id,
        calendar_sync_status=(
            CalendarSyncStatus.PENDING if mirror_to_calendar else CalendarSyncStatus.DISABLED
        ),
        patient_id=patient_id,
        new_patient_id=uuid.uuid4(),
        name=new_patient.name if new_patient else None,
        mobile=new_patient.mobile if new_patient else None,
        email=new_patient.email if new_patient else None,
        gender=new_patient.gender if new_patient else None,
        date_of_birth=new_patient.date_of_birth if new_patient else None,
        mirror=mirror_to_calendar,
        hold_id=hold_id,
        **event_values(
            AppointmentAction.CREATED, caller, None, snapshot_of(day, slot.start, slot.end, status)
        ),
    )
    if row is None:  # the statement always answers one row
        raise RuntimeError("the booking statement answered no row")
    if row["id"] is not None:
        return AppointmentRead.model_validate(dict(row.items()))
    if not row["current"]:
        return Refusal.STALE
    if row["found_patient"] is None:
        return Refusal.PATIENT_RACE if new_patient is not None else Refusal.PATIENT_MISSING
    if not row["hold_ok"]:
        return Refusal.HOLD_GONE
    return Refusal.SLOT_TAKEN
