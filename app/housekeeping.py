"""Housekeeping every API process does now and then, whatever mirrors are configured."""

from __future__ import annotations

import asyncio
import logging

from app.database import Sessions, unit_of_work
from app.services import idempotency_service, webhook_service
from app.services.booking import holds
from app.services.outbox import jobs

logger = logging.getLogger("app.housekeeping")
EVERY_SECONDS = 300.0


async def run_forever(sessionmaker: Sessions) -> None:
    """Drop idempotency keys past 48 h (they are promised for 24 h), holds a day after they
    stopped counting, delivered outbox jobs past 7 days and the webhook delivery log past 30
    days. Idempotent, so any number of processes may do it."""
    while True:
        try:
            async with unit_of_work(sessionmaker) as session:
                await idempotency_service.purge_expired(session)
                await holds.purge_old(session)
                await jobs.purge_finished(session)
                await webhook_service.purge_old_deliveries(session)
        except Exception:
            logger.warning("housekeeping failed; will try again", exc_info=True)
        await asyncio.sleep(EVERY_SECONDS)
