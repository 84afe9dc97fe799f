"""Door of the reminders: the clinic's policy, and an appointment's plan as it stands.

What a reminder is and when it is due lives in `reminders.plan` (one SQL rule, planned in the
transaction of each change); coming due is the dispatcher's sweep (`reminders.sweep`); a policy
change reaches existing appointments through the replan (`reminders.replan`).
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ReminderPolicy
from app.models.enums import ReminderStatus
from app.schemas.reminder import (
    QuietHoursRead,
    ReminderPolicyRead,
    ReminderPolicyWrite,
    ReminderRead,
)
from app.services.appointment_service import get_appointment
from app.services.context import Clinic
from app.services.persistence import NO_CONFLICTS, update_row
from app.services.reminders.plan import starts_at_sql


async def _policy(session: AsyncSession, *, lock: bool = False) -> ReminderPolicy:
    # The migration writes the one row; a deployment never runs without it.
    query = select(ReminderPolicy).where(ReminderPolicy.id.is_(True))
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one()


def _read(policy: ReminderPolicy) -> ReminderPolicyRead:
    quiet = None
    if policy.quiet_start is not None and policy.quiet_end is not None:
        quiet = QuietHoursRead(start=policy.quiet_start, end=policy.quiet_end)
    return ReminderPolicyRead(
        offsets_minutes=list(policy.offsets_minutes),
        quiet_hours=quiet,
        only_unconfirmed=policy.only_unconfirmed,
    )


async def get_policy(session: AsyncSession) -> ReminderPolicyRead:
    return _read(await _policy(session))


async def set_policy(session: AsyncSession, data: ReminderPolicyWrite) -> ReminderPolicyRead:
    """Change the policy (the fields sent). A change moves its version: new plans use it at
    once, and the dispatcher replans every future appointment's `scheduled` reminders in
    batches (`reminders.replan`); until then the sweep holds back reminders planned with an
    older version, so none goes out on a policy that no longer holds."""
    policy = await _policy(session, lock=True)
    changes: dict[str, object] = {}
    sent = data.model_fields_set
    if "offsets_minutes" in sent:
        changes["offsets_minutes"] = data.offsets_minutes
    if "quiet_hours" in sent:
        quiet = data.quiet_hours
        changes["quiet_start"] = quiet.start if quiet else None
        changes["quiet_end"] = quiet.end if quiet else None
    if "only_unconfirmed" in sent:
        changes["only_unconfirmed"] = data.only_unconfirmed
    if await update_row(session, policy, changes, NO_CONFLICTS):
        # A replan under way for the older version stops at its next batch.
        await session.execute(
            update(ReminderPolicy)
            .where(ReminderPolicy.id.is_(True))
            .values(
                version=ReminderPolicy.version + 1,
                replan_lease_until=None,
                updated_at=func.now(),
            )
        )
    return _read(policy)


# The plan for the appointment's current start time and the policy's current offsets.
_PLAN = text(
    f"""
    SELECT r.offset_minutes, r.due_at, r.status
      FROM reminders r
      JOIN appointments a ON a.id = r.appointment_id
     CROSS JOIN reminder_policy p
     WHERE r.appointment_id = :appointment_id
       AND r.starts_at = {starts_at_sql("a", "CAST(:tz AS text)")}
       AND r.offset_minutes = ANY(p.offsets_minutes)
     ORDER BY r.due_at, r.offset_minutes
    """
)


async def list_reminders(
    session: AsyncSession, appointment_id: uuid.UUID, clinic: Clinic
) -> list[ReminderRead]:
    """The appointment's reminders as planned now, by due instant (in the clinic's offset)."""
    await get_appointment(session, appointment_id)
    rows = await session.execute(_PLAN, {"appointment_id": appointment_id, "tz": clinic.tz.key})
    return [
        ReminderRead(
            offset_minutes=row.offset_minutes,
            due_at=row.due_at.astimezone(clinic.tz),
            status=ReminderStatus(row.status),
        )
        for row in rows
    ]
