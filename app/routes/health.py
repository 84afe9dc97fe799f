"""Open probes: `/health` says the process is alive, `/ready` that it can serve."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app import metrics
from app.config import Settings
from app.database import checkouts_waiting
from app.services.outbox import jobs

router = APIRouter(tags=["health"])
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


@router.get("/health")
async def check_health() -> dict[str, str]:
    return {"status": "ok"}


def _mirrors(settings: Settings) -> dict[str, str]:
    return {
        "calendar_sync": "enabled" if settings.calendar_enabled else "disabled",
        "rag_sync": "enabled" if settings.rag_enabled else "disabled",
    }


# From the partial index on undelivered messages: never reads the delivered ones.
_WEBHOOK_COUNTS = text(
    "SELECT count(*) FILTER (WHERE status = 'pending') AS pending,"
    " count(*) FILTER (WHERE status = 'failed') AS failed"
    " FROM webhook_deliveries WHERE status <> 'delivered'"
)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format; outbox and pool gauges are read at scrape time."""
    metrics.sample_pool(request.app.state.engine.pool, checkouts_waiting())
    try:
        async with request.app.state.read_sessionmaker() as session:
            depth = await jobs.depth(session)
    except Exception:  # the database being down must not hide the other metrics
        depth = None
    if depth is not None:
        oldest: dict[str, float] = {target: 0.0 for target in jobs.TARGETS}
        for target in jobs.TARGETS:
            for state in ("pending", "in_progress", "done", "failed"):
                metrics.OUTBOX_DEPTH.labels(target, state).set(0)
        for target, state, count, age in depth:
            metrics.OUTBOX_DEPTH.labels(target, state).set(count)
            oldest[target] = max(oldest.get(target, 0.0), age)
        for target, age in oldest.items():
            metrics.OUTBOX_OLDEST.labels(target).set(age)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@router.get("/ready", responses={503: {"description": "Not ready"}})
async def check_readiness(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    body: dict[str, Any] = {**_mirrors(settings)}
    replica = request.app.state.replica
    # Reads fall back to the primary without it, so it never makes the service unready.
    body["replica"] = {"state": "disabled"} if replica is None else replica.describe()
    try:
        async with request.app.state.engine.connect() as conn:
            revision = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
            # Only on the schema this code knows (an older one may lack the table).
            if revision == head_revision():
                counts = (await conn.execute(_WEBHOOK_COUNTS)).one()
                body["webhooks"] = {"pending": counts.pending, "failed": counts.failed}
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
