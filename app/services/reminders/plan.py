"""The one rule for what an appointment's reminders are, as SQL any statement can embed: the
booking statement (for the appointments it inserts), a change to one appointment
(`follow`), and the replan after a policy change (`replan`, a batch at a time).

For each appointment in `BOOKED`/`RESCHEDULED` and each offset of the policy, the reminder is
keyed by (appointment, offset, start instant) and due at the start minus the offset, in whole
minutes; an instant inside the quiet hours (clinic wall-clock time, `[start, end)`, crossing
midnight when the start is the later time) moves to the minute before that night's quiet
hours begin. Its status: `void` when the appointment is confirmed under `only_unconfirmed`,
else `skipped` when the instant has already passed as it is planned, else `scheduled`.

Planning writes only what that rule changes: a `scheduled` reminder takes its new instant and
status (one that has come due at the instant it keeps stays `scheduled` for the sweep, which
a replan may have held back); `sent`, `skipped` and `void` ones stay (a `void` one comes back
when the appointment moves back to its start time: `revive`); a `scheduled` one the rule no
longer names (an old start time, a removed offset, an appointment no longer upcoming)
becomes `void`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.enums import (
    UPCOMING_STATUSES,
    ConfirmationStatus,
    ReminderStatus,
)
from app.services.context import Clinic

_UPCOMING = ", ".join(f"'{s}'" for s in UPCOMING_STATUSES)
SCHEDULED, VOID, SKIPPED = (
    f"'{ReminderStatus.SCHEDULED}'",
    f"'{ReminderStatus.VOID}'",
    f"'{ReminderStatus.SKIPPED}'",
)


def starts_at_sql(appointment: str, tz: str) -> str:
    """The instant an appointment (a row alias) starts, its wall-clock start read in `tz`."""
    return f"(({appointment}.date + {appointment}.start_time) AT TIME ZONE {tz})"


# Joined after `a` (the appointments, with their `tz` and `planned_at`), `p` (the policy) and
# `o` (one offset): the due instant, `due.due_at`. Each step is its own LATERAL so the
# expression of the step before is written once.
_DUE = f"""
    CROSS JOIN LATERAL (SELECT {starts_at_sql("a", "a.tz")} AS starts_at) s
    CROSS JOIN LATERAL (
        SELECT s.starts_at - make_interval(mins => o.offset_minutes) AS at) raw
    CROSS JOIN LATERAL (SELECT raw.at AT TIME ZONE a.tz AS wall) w
    CROSS JOIN LATERAL (
        SELECT CASE WHEN p.quiet_start < p.quiet_end
                    THEN CAST(w.wall AS time) >= p.quiet_start
                         AND CAST(w.wall AS time) < p.quiet_end
                    ELSE CAST(w.wall AS time) >= p.quiet_start
                         OR CAST(w.wall AS time) < p.quiet_end
               END AS inside) q
    CROSS JOIN LATERAL (
        -- The night's quiet hours began today at their start, or yesterday if the instant
        -- is in the part after midnight.
        SELECT date_trunc('minute', CASE WHEN coalesce(q.inside, false)
            THEN ((CAST(w.wall AS date)
                   - CASE WHEN CAST(w.wall AS time) >= p.quiet_start THEN 0 ELSE 1 END
                   + p.quiet_start) AT TIME ZONE a.tz) - interval '1 minute'
            ELSE raw.at END) AS due_at) due"""


def plan_sql(
    appointments: str, revive: str = "false", *, new: bool = False, prefix: str = "reminder_"
) -> str:
    """CTEs that bring the reminders of `appointments` in line with the rule (the module's
    docstring): `{prefix}planned` upserts the reminders the rule names, `{prefix}voided` voids
    the `scheduled` ones it no longer names. The statement need not read either.

    `appointments`: a CTE's name or a parenthesised SELECT with the columns `id`, `date`,
    `start_time`, `status` and `confirmation_status` of the appointments, `tz` (text: the
    clinic's zone) and `planned_at` (timestamptz: now). `revive`: an SQL boolean; true when
    the appointment moved, so a `void` reminder of a start time it comes back to is planned
    again (it was never sent). `new`: the appointments were inserted by this statement, so
    they have no reminders yet and `{prefix}voided` is left out.
    """
    planned = f"""
    {prefix}wanted AS (
        SELECT a.id AS appointment_id, o.offset_minutes, s.starts_at, due.due_at,
               CASE WHEN a.confirmation_status = '{ConfirmationStatus.CONFIRMED}'
                         AND p.only_unconfirmed THEN {VOID}
                    WHEN due.due_at <= a.planned_at THEN {SKIPPED}
                    ELSE {SCHEDULED} END AS status,
               p.version
          FROM {appointments} AS a
         CROSS JOIN reminder_policy p
         CROSS JOIN unnest(p.offsets_minutes) AS o(offset_minutes)
         {_DUE}
         WHERE a.status IN ({_UPCOMING})
    ), {prefix}planned AS (
        INSERT INTO reminders AS r (appointment_id, offset_minutes, starts_at, due_at, status,
                                    policy_version)
        SELECT appointment_id, offset_minutes, starts_at, due_at, status, version
          FROM {prefix}wanted
         ORDER BY appointment_id, offset_minutes
        ON CONFLICT (appointment_id, offset_minutes, starts_at) DO UPDATE
           SET due_at = excluded.due_at,
               -- Come due but not swept yet, at the instant it had: still to be sent.
               status = CASE WHEN r.status = {SCHEDULED} AND excluded.status = {SKIPPED}
                                  AND r.due_at = excluded.due_at THEN {SCHEDULED}
                             ELSE excluded.status END,
               policy_version = excluded.policy_version, updated_at = now()
         WHERE (r.status = {SCHEDULED} OR (r.status = {VOID} AND {revive}))
           AND (r.due_at, r.status, r.policy_version)
               IS DISTINCT FROM (excluded.due_at, excluded.status, excluded.policy_version)
        RETURNING 1
    )"""
    if new:
        return planned
    return f"""{planned}, {prefix}voided AS (
        UPDATE reminders r SET status = {VOID}, updated_at = now()
          FROM {appointments} AS a
         WHERE r.appointment_id = a.id AND r.status = {SCHEDULED}
           AND NOT EXISTS (
               SELECT 1 FROM {prefix}wanted w
                WHERE w.appointment_id = r.appointment_id
                  AND w.offset_minutes = r.offset_minutes AND w.starts_at = r.starts_at)
        RETURNING 1
    )"""


_FOLLOW = text(
    f"""
    WITH changed AS (
        SELECT id, date, start_time, status, confirmation_status, CAST(:tz AS text) AS tz,
               CAST(:now AS timestamptz) AS planned_at
          FROM appointments WHERE id = ANY(CAST(:ids AS uuid[]))
    ), {plan_sql("changed", "CAST(:revive AS boolean)")}
    SELECT (SELECT count(*) FROM reminder_planned), (SELECT count(*) FROM reminder_voided)
    """
)


async def follow(
    session: AsyncSession,
    appointment_ids: Sequence[uuid.UUID],
    clinic: Clinic,
    *,
    revive: bool = False,
) -> None:
    """Make these appointments' reminders what the rule says for them as they are now (after
    a change flushed in the caller's transaction)."""
    await session.execute(
        _FOLLOW,
        {
            "ids": list(appointment_ids),
            "tz": clinic.tz.key,
            "now": clinic.now,
            "revive": revive,
        },
    )
