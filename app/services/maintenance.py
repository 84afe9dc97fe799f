"""Housekeeping every API process does now and then, whatever mirrors are configured."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services import idempotency_service, outbox

logger = logging.getLogger("app.maintenance")
EVERY_SECONDS = 300.0


async def run_forever(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Drop idempotency keys past 48 h (they are promised for 24 h) and delivered outbox jobs
    past 7 days. Idempotent, so any number of processes may do it."""
    while True:
        try:
            async with sessionmaker.begin() as session:
                await idempotency_service.purge_expired(session)
                await outbox.purge_finished(session)
        except Exception:
            logger.warning("housekeeping failed; will try again", exc_info=True)
        await asyncio.sleep(EVERY_SECONDS)
