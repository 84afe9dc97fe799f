"""Open probes: `/health` says the process is alive, `/ready` that it can serve."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.config import Settings

router = APIRouter(tags=["health"])
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _mirrors(settings: Settings) -> dict[str, str]:
    return {
        "calendar_sync": "enabled" if settings.calendar_enabled else "disabled",
        "rag_sync": "enabled" if settings.rag_enabled else "disabled",
    }


@router.get("/ready", responses={503: {"description": "Not ready"}})
async def ready(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    body: dict[str, str | None] = {**_mirrors(settings)}
    try:
        async with request.app.state.engine.connect() as conn:
            revision = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
    except Exception as exc:  # any failure to reach the database means "not ready"
        body.update(status="unavailable", database="unreachable", error=type(exc).__name__)
        return JSONResponse(body, status_code=503)
    expected = head_revision()
    body.update(database="ok", migration=revision, expected_migration=expected)
    if revision != expected:
        body["status"] = "migrations_pending"
        return JSONResponse(body, status_code=503)
    body["status"] = "ready"
    return JSONResponse(body)
