"""What the mirrors owe and what failed, and putting failed work back in the queue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import Appointment, Doctor
from app.models.enums import ACTIVE_STATUSES, CalendarSyncStatus
from app.services import outbox


async def status(session: AsyncSession, settings: Settings) -> dict[str, Any]:
    counts = {s.value: 0 for s in CalendarSyncStatus}
    rows = await session.execute(
        select(Appointment.calendar_sync_status, func.count()).group_by(
            Appointment.calendar_sync_status
        )
    )
    for state, count in rows:
        counts[str(state)] = count
    return {
        "calendar": {
            "enabled": settings.calendar_enabled,
            "appointments": counts,
            **await outbox.stats(session, outbox.CALENDAR),
        },
        "rag": {"enabled": settings.rag_enabled, **await outbox.stats(session, outbox.RAG)},
    }


async def retry_failed(session: AsyncSession, target: str | None) -> int:
    jobs = await outbox.requeue_failed(session, target)
    calendar_ids = [j.aggregate_id for j in jobs if j.target == outbox.CALENDAR]
    if calendar_ids:
        await session.execute(
            update(Appointment)
            .where(Appointment.id.in_(calendar_ids))
            .values(calendar_sync_status=CalendarSyncStatus.PENDING)
        )
    return len(jobs)


async def resync_calendar(session: AsyncSession, today: dt.date) -> int:
    """Queue every active appointment from today on, e.g. after a calendar was wiped."""
    ids = list(
        (
            await session.execute(
                update(Appointment)
                .where(Appointment.date >= today, Appointment.status.in_(ACTIVE_STATUSES))
                .values(calendar_sync_status=CalendarSyncStatus.PENDING)
                .returning(Appointment.id)
            )
        ).scalars()
    )
    await outbox.enqueue(session, outbox.CALENDAR, ids)
    return len(ids)


async def resync_rag(session: AsyncSession) -> int:
    """Queue every doctor for the RAG service, e.g. after its index was rebuilt."""
    ids = list((await session.execute(select(Doctor.id))).scalars())
    await outbox.enqueue(session, outbox.RAG, ids)
    return len(ids)
