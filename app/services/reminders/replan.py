"""A policy change reaching the appointments already booked: every future upcoming
appointment's reminders planned anew (`plan.plan_sql`), in small batches, by the dispatcher.

Why this never blocks requests, at a million appointments: each batch is one doctor's next
`BATCH` upcoming appointments from today, found on the (doctor, date, start) index, in its
own short transaction. It locks those appointments `FOR KEY SHARE` (a move, cancel, confirm
or desk step of one of them waits for the batch; one that came first is planned as it
committed) and their reminder rows; nothing else. Bookings and reads never wait for it.

Which version: the policy's `version` moves on each change; the replan claims the newest one
not yet planned with a lease (one dispatcher at a time, taken over if it dies), renews the
lease with every batch, stops if the policy changes again (the next replan starts over), and
records `planned_version` when done. Reminders planned under an older version are held back
by the sweep meanwhile, so none is sent on a policy that no longer holds.

One race is closed before the first batch: a booking that read the old policy could commit
after its doctor's batch. So the replan first waits until every transaction that began
before it has ended (`pg_stat_activity`): any booking that read the old policy has then
committed, and a batch plans its appointment anew.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import Sessions, unit_of_work
from app.models.enums import UPCOMING_STATUSES
from app.services.context import Clinic
from app.services.reminders.plan import plan_sql, starts_at_sql

logger = logging.getLogger("app.reminders")

BATCH = 500
LEASE_SECONDS = 60
# How long the replan waits for transactions older than itself (a session left idle in a
# transaction would otherwise hold it forever); past this it goes on and says so.
OLDER_TRANSACTIONS_WAIT_SECONDS = 30.0
_UPCOMING = ", ".join(f"'{s}'" for s in UPCOMING_STATUSES)

_CLAIM = text(
    f"""
    UPDATE reminder_policy
       SET replan_lease_until = now() + make_interval(secs => {LEASE_SECONDS})
     WHERE planned_version < version
       AND (replan_lease_until IS NULL OR replan_lease_until < now())
    RETURNING version, clock_timestamp() AS since
    """
)
_RENEW = text(
    f"""
    UPDATE reminder_policy
       SET replan_lease_until = now() + make_interval(secs => {LEASE_SECONDS})
     WHERE version = :version
    RETURNING 1
    """
)
_DONE = text(
    """
    UPDATE reminder_policy SET planned_version = version, replan_lease_until = NULL
     WHERE version = :version
    """
)
_OLDER = text(
    """
    SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start < :since
    """
)
_DOCTORS = text("SELECT id FROM doctors ORDER BY id")
_BATCH = text(
    f"""
    WITH batch AS (
        SELECT id, date, start_time, status, confirmation_status, CAST(:tz AS text) AS tz,
               CAST(:now AS timestamptz) AS planned_at
          FROM appointments
         WHERE doctor_id = :doctor_id AND date >= :today
           AND (date, start_time) > (:after_date, :after_time)
           AND status IN ({_UPCOMING})
         ORDER BY date, start_time
         LIMIT {BATCH}
           FOR KEY SHARE
    ), {plan_sql(f"(SELECT * FROM batch b WHERE {starts_at_sql('b', 'b.tz')} > b.planned_at)")}
    SELECT (SELECT count(*) FROM batch) AS taken, last.date, last.start_time
      FROM (SELECT 1) AS one
      LEFT JOIN (SELECT date, start_time FROM batch
                  ORDER BY date DESC, start_time DESC LIMIT 1) AS last ON true
    """
)


async def _claim(sessionmaker: Sessions) -> tuple[int, dt.datetime] | None:
    async with unit_of_work(sessionmaker) as session:
        row = (await session.execute(_CLAIM)).one_or_none()
    return None if row is None else (row.version, row.since)


async def _after_older_transactions(sessionmaker: Sessions, since: dt.datetime) -> None:
    deadline = time.monotonic() + OLDER_TRANSACTIONS_WAIT_SECONDS
    while True:
        async with unit_of_work(sessionmaker) as session:
            older = await session.scalar(_OLDER, {"since": since})
        if not older:
            return
        if time.monotonic() > deadline:
            logger.warning("reminder replan goes on past transactions older than itself")
            return
        await asyncio.sleep(0.1)


async def _doctor(
    session: AsyncSession, doctor_id: uuid.UUID, after: tuple[dt.date, dt.time], clinic: Clinic
) -> tuple[int, tuple[dt.date, dt.time]]:
    """Plan the doctor's next batch of upcoming appointments after `after`; how many it took
    and the last one's (date, start)."""
    row = (
        await session.execute(
            _BATCH,
            {
                "doctor_id": doctor_id,
                "today": clinic.today,
                "after_date": after[0],
                "after_time": after[1],
                "tz": clinic.tz.key,
                "now": clinic.now,
            },
        )
    ).one()
    return row.taken, (row.date, row.start_time) if row.taken else after


async def replan(sessionmaker: Sessions, clinic: Callable[[], Clinic]) -> bool:
    """Plan every future upcoming appointment under the newest policy version, if one is
    owed and no other dispatcher holds it; whether it finished one."""
    claimed = await _claim(sessionmaker)
    if claimed is None:
        return False
    version, since = claimed
    await _after_older_transactions(sessionmaker, since)
    async with unit_of_work(sessionmaker) as session:
        doctors = list((await session.scalars(_DOCTORS)).all())
    started = time.monotonic()
    for doctor_id in doctors:
        at = clinic()
        after = (at.today - dt.timedelta(days=1), dt.time(0))
        while True:
            async with unit_of_work(sessionmaker) as session:
                if (await session.execute(_RENEW, {"version": version})).first() is None:
                    return False  # changed again: the next replan plans the newer version
                taken, after = await _doctor(session, doctor_id, after, at)
            if taken < BATCH:
                break
    async with unit_of_work(sessionmaker) as session:
        await session.execute(_DONE, {"version": version})
    logger.info(
        "reminders replanned",
        extra={
            "policy_version": version,
            "doctors": len(doctors),
            "seconds": round(time.monotonic() - started, 2),
        },
    )
    return True


class ReminderReplan:
    """The dispatcher's chore: a policy change's replan, once one is owed."""

    def __init__(
        self, sessionmaker: Sessions, clinic: Callable[[], Clinic], every_seconds: float
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clinic = clinic
        self.every_seconds = every_seconds

    async def run(self) -> None:
        await replan(self._sessionmaker, self._clinic)
