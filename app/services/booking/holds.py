"""The statements that keep, read and let go of holds (a slot kept for a caller).

A hold is made like a booking (`booking.sql`): the engine decides on one read, and the hold is
written only if the doctor's schedule and the day are still at the versions read, claiming
the day. Its own trigger (migration 0006) moves the day's version whenever it is made, booked
or released, so a booking or hold decided on a read from before cannot commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.enums import HoldStatus, hold_unexpired
from app.services.booking.sql import CLAIM, claim_values
from app.services.context import Caller
from app.services.scheduling.engine import SlotTime
from app.services.scheduling.queries import DoctorCalendar
from app.sql import Sql, execute, fetchrow

_COLUMNS = (
    "id, doctor_id, date, start_time, end_time, visit_type_id, status, expires_at, appointment_id"
)


@dataclass(frozen=True, slots=True)
class HoldRow:
    id: uuid.UUID
    doctor_id: uuid.UUID
    date: dt.date
    start_time: dt.time
    end_time: dt.time
    visit_type_id: uuid.UUID | None
    stored_status: HoldStatus
    expires_at: dt.datetime
    appointment_id: uuid.UUID | None

    def status(self, now: dt.datetime) -> HoldStatus:
        """As the hold reads at `now`: an active one that no longer counts is `expired`."""
        if self.stored_status is HoldStatus.ACTIVE and not hold_unexpired(self.expires_at, now):
            return HoldStatus.EXPIRED
        return self.stored_status


def _row(record: asyncpg.Record) -> HoldRow:
    return HoldRow(
        record["id"],
        record["doctor_id"],
        record["date"],
        record["start_time"],
        record["end_time"],
        record["visit_type_id"],
        HoldStatus(record["status"]),
        record["expires_at"],
        record["appointment_id"],
    )


_HOLD = Sql(
    f"""
    WITH wanted AS (
        SELECT :doctor_id::uuid AS doctor_id, :schedule_version::int AS schedule_version,
               :day::date AS day, :day_version::int AS day_version
    ), {CLAIM}, held AS (
        INSERT INTO holds (id, doctor_id, date, start_time, end_time, visit_type_id,
                           expires_at, actor, correlation_id)
        SELECT :hold_id, doctor_id, date, :start_time, :end_time, :visit_type_id::uuid,
               :expires_at, :actor, :correlation_id
          FROM claimed
        RETURNING {_COLUMNS}
    )
    SELECT (SELECT count(*) FROM claimed) AS current, held.*
      FROM (SELECT 1) AS one LEFT JOIN held ON true
    """,
    standalone=True,
)


async def hold_if_current(
    session: AsyncSession,
    *,
    read: DoctorCalendar,
    day: dt.date,
    slot: SlotTime,
    visit_type_id: uuid.UUID | None,
    expires_at: dt.datetime,
    caller: Caller,
) -> HoldRow | None:
    """Hold `slot` on `day` if the doctor's schedule and day are still as `read` saw them;
    None if either changed (read again)."""
    row = await fetchrow(
        session,
        _HOLD,
        hold_id=uuid.uuid4(),
        **claim_values(read, day),
        start_time=slot.start,
        end_time=slot.end,
        visit_type_id=visit_type_id,
        expires_at=expires_at,
        actor=caller.actor,
        correlation_id=caller.correlation_id,
    )
    if row is None or row["id"] is None:
        return None
    return _row(row)


_READ = Sql(f"SELECT {_COLUMNS} FROM holds WHERE id = :id", standalone=True)


async def read_hold(session: AsyncSession, hold_id: uuid.UUID) -> HoldRow | None:
    row = await fetchrow(session, _READ, id=hold_id)
    return None if row is None else _row(row)


# Active (expired or not) becomes released; a hold already released stays as it is.
_RELEASE = Sql(
    f"""
    WITH released AS (
        UPDATE holds SET status = '{HoldStatus.RELEASED}', updated_at = now()
         WHERE id = :id AND status = '{HoldStatus.ACTIVE}'
        RETURNING {_COLUMNS}
    )
    SELECT * FROM released
    UNION ALL
    SELECT {_COLUMNS} FROM holds WHERE id = :id AND NOT EXISTS (SELECT 1 FROM released)
    """,
    standalone=True,
)


async def release_hold(session: AsyncSession, hold_id: uuid.UUID) -> HoldRow | None:
    """Release the hold if it is active; the hold as it then is, or None if unknown."""
    row = await fetchrow(session, _RELEASE, id=hold_id)
    return None if row is None else _row(row)


# A released hold's slot taken by the move it was kept for (a waitlist offer accepted by
# rescheduling the entry's appointment): it reads booked, with that appointment.
_MARK_BOOKED = Sql(
    f"""
    UPDATE holds SET status = '{HoldStatus.BOOKED}', appointment_id = :appointment_id,
                     updated_at = now()
     WHERE id = :id
    """
)


async def mark_booked(session: AsyncSession, hold_id: uuid.UUID, appointment_id: uuid.UUID) -> None:
    await execute(session, _MARK_BOOKED, id=hold_id, appointment_id=appointment_id)


_PURGE = Sql("DELETE FROM holds WHERE expires_at < now() - make_interval(hours => :hours)")


async def purge_old(session: AsyncSession, keep_hours: int = 24) -> None:
    """Forget holds that stopped counting more than `keep_hours` ago, booked ones included
    (the appointment keeps the booking)."""
    await execute(session, _PURGE, hours=keep_hours)
