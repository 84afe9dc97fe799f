"""Which mirrors this deployment runs, from its settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.services.dispatcher import Dispatcher, Mirror


def build_mirrors(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> list[Mirror]:
    mirrors: list[Mirror] = []
    if settings.calendar_enabled:
        from app.services.google_calendar_service import CalendarMirror

        mirrors.append(CalendarMirror(settings, sessionmaker))
    if settings.rag_enabled:
        from app.services.rag_sync_service import RagMirror

        mirrors.append(RagMirror(settings, sessionmaker))
    return mirrors


def build_dispatcher(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> Dispatcher:
    return Dispatcher(settings, sessionmaker, database_url, build_mirrors(settings, sessionmaker))
