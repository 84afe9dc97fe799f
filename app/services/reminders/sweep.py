"""Reminders coming due: the dispatcher's sweep turns each into `appointment.reminder_due`
messages, through the outbox like every other message.

Exactly once per (appointment, offset, start time): one statement takes the due `scheduled`
reminders (`FOR UPDATE SKIP LOCKED`, so sweeps in several processes take different ones),
marks them `sent` and queues their messages, all in one transaction. A reminder is queued
only by the transaction that moved it out of `scheduled`; a sweep that dies before its commit
leaves it `scheduled` for the next one. The receiver then gets it at least once under one
`webhook-id`, as every message (the webhook mirror's retries).

Never stale: a reminder is planned again in the transaction of every change to its
appointment (`plan.follow`), and the sweep checks once more as it sends: an appointment that
is no longer upcoming, has moved, or is confirmed under `only_unconfirmed` voids the reminder
instead; one that has started skips it (never sent late). An appointment whose row a change
holds is left for the next sweep (`SKIP LOCKED`), which sees the change committed. A reminder
planned under an older policy waits for the replan (`replan`), which plans it anew.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import Sessions, unit_of_work
from app.models.enums import UPCOMING_STATUSES, ConfirmationStatus, ReminderStatus
from app.services.context import Clinic
from app.services.reminders.plan import starts_at_sql
from app.services.webhooks.appointments import reminders_due_sql

# Reminders a sweep's statement takes at most; it goes on while there are more.
BATCH = 200
_UPCOMING = ", ".join(f"'{s}'" for s in UPCOMING_STATUSES)

_SWEEP = text(
    f"""
    WITH due AS (
        SELECT r.appointment_id, r.offset_minutes, r.starts_at,
               CASE WHEN a.status NOT IN ({_UPCOMING})
                         OR r.starts_at <> {starts_at_sql("a", "CAST(:tz AS text)")}
                         OR (a.confirmation_status = '{ConfirmationStatus.CONFIRMED}'
                             AND p.only_unconfirmed)
                    THEN '{ReminderStatus.VOID}'
                    WHEN r.starts_at <= :now THEN '{ReminderStatus.SKIPPED}'
                    ELSE '{ReminderStatus.SENT}' END AS outcome
          FROM reminders r
          JOIN appointments a ON a.id = r.appointment_id
         CROSS JOIN reminder_policy p
         WHERE r.status = '{ReminderStatus.SCHEDULED}' AND r.due_at <= :now
           -- Planned under an older policy: held back for the replan, unless it is too late.
           AND (r.policy_version = p.version OR r.starts_at <= :now)
         ORDER BY r.due_at
         LIMIT :limit
           FOR UPDATE OF r SKIP LOCKED
           FOR SHARE OF a SKIP LOCKED
    ), settled AS (
        UPDATE reminders r
           SET status = d.outcome,
               sent_at = CASE WHEN d.outcome = '{ReminderStatus.SENT}' THEN now() END,
               updated_at = now()
          FROM due d
         WHERE r.appointment_id = d.appointment_id AND r.offset_minutes = d.offset_minutes
           AND r.starts_at = d.starts_at
        RETURNING r.appointment_id, r.offset_minutes, r.due_at, r.status
    ), sent AS (
        SELECT * FROM settled WHERE status = '{ReminderStatus.SENT}'
    ), {reminders_due_sql("sent", "CAST(:tz AS text)")}
    SELECT (SELECT count(*) FROM settled) AS settled, (SELECT count(*) FROM sent) AS sent,
           (SELECT count(*) FROM webhook_woken) AS woken
    """
)


async def emit_due(session: AsyncSession, clinic: Clinic, limit: int = BATCH) -> int:
    """Settle up to `limit` reminders due at `clinic.now`, queueing the messages of those
    sent, in the caller's transaction; how many were settled."""
    row = (
        await session.execute(_SWEEP, {"now": clinic.now, "tz": clinic.tz.key, "limit": limit})
    ).one()
    return int(row.settled)


class ReminderSweep:
    """The dispatcher's chore: every few seconds, every reminder due by then."""

    def __init__(
        self, sessionmaker: Sessions, clinic: Callable[[], Clinic], every_seconds: float
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clinic = clinic
        self.every_seconds = every_seconds

    async def run(self) -> None:
        while True:
            async with unit_of_work(self._sessionmaker) as session:
                settled = await emit_due(session, self._clinic())
            if settled < BATCH:
                return
