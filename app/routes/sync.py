"""What the mirrors owe, and putting their failed work back in the queue."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from app.database import ReadSessionDep, SessionDep
from app.routes.deps import SettingsDep, error_responses
from app.security import Role, allow
from app.services import sync_service

router = APIRouter(prefix="/sync", tags=["sync"])


@router.get("/status", dependencies=[allow(Role.ADMIN, Role.READONLY)], responses=error_responses())
async def get_sync_status(session: ReadSessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Per mirror: job counts by state, the oldest waiting job's age, recent errors."""
    return await sync_service.status(session, settings)


@router.post("/retry", dependencies=[allow(Role.ADMIN)], responses=error_responses())
async def retry_failed_syncs(
    session: SessionDep,
    target: Annotated[Literal["calendar", "rag"] | None, Query()] = None,
) -> dict[str, int]:
    """Requeue failed deliveries (of one mirror, or all) with a fresh set of attempts."""
    return {"requeued": await sync_service.retry_failed(session, target)}
