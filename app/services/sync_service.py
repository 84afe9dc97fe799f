"""The mirrors as a whole: which run here, what they owe, and putting failed work back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.database import Sessions
from app.models import Appointment
from app.models.enums import CalendarSyncStatus
from app.services.context import Clinic
from app.services.outbox import jobs
from app.services.outbox.dispatcher import Chore, Dispatcher, Mirror
from app.services.reminders.replan import ReminderReplan
from app.services.reminders.sweep import ReminderSweep
from app.services.waitlist.matcher import WaitlistMatcher
from app.services.webhooks.mirror import WebhookMirror


def build_mirrors(
    settings: Settings, sessionmaker: Sessions, clinic_of: Callable[[], Clinic]
) -> list[Mirror]:
    """The mirrors this deployment's settings turn on (and the waitlist's matcher, which reads
    the clinic's clock through `clinic_of`)."""
    mirrors: list[Mirror] = []
    if settings.calendar_enabled:
        from app.services.google_calendar_service import CalendarMirror

        mirrors.append(CalendarMirror(settings, sessionmaker))
    if settings.rag_enabled:
        from app.services.rag_sync_service import RagMirror

        mirrors.append(RagMirror(settings, sessionmaker))
    # Always on: with no endpoints there are no webhook jobs.
    mirrors.append(WebhookMirror(settings, sessionmaker))
    # Always on: with nobody waiting the triggers queue no waitlist jobs (not a mirror, but
    # its jobs are the outbox's).
    mirrors.append(WaitlistMatcher(settings, sessionmaker, clinic_of))
    return mirrors


def build_chores(settings: Settings, sessionmaker: Sessions) -> list[Chore]:
    """What every dispatcher does besides delivering: reminders coming due, a policy's replan."""
    from app import adapters

    def clinic() -> Clinic:
        return adapters.clinic_of(settings)

    every = settings.reminder_sweep_seconds
    return [
        ReminderSweep(sessionmaker, clinic, every),
        ReminderReplan(sessionmaker, clinic, every),
    ]


def build_dispatcher(
    settings: Settings,
    sessionmaker: Sessions,
    database_url: str,
    clinic_of: Callable[[], Clinic],
) -> Dispatcher:
    return Dispatcher(
        settings,
        sessionmaker,
        database_url,
        build_mirrors(settings, sessionmaker, clinic_of),
        chores=build_chores(settings, sessionmaker),
    )


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
            **await jobs.stats(session, jobs.CALENDAR),
        },
        "rag": {"enabled": settings.rag_enabled, **await jobs.stats(session, jobs.RAG)},
    }


async def retry_failed(session: AsyncSession, target: str | None) -> int:
    requeued = await jobs.requeue_failed(session, target)
    calendar_ids = [j.aggregate_id for j in requeued if j.target == jobs.CALENDAR]
    if calendar_ids:
        await session.execute(
            update(Appointment)
            .where(Appointment.id.in_(calendar_ids))
            .values(calendar_sync_status=CalendarSyncStatus.PENDING)
        )
    return len(requeued)
