"""Application factory: `uvicorn --factory app.main:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import VERSION, housekeeping, launcher
from app.adapters import clinic_of
from app.agent import server as agent_server
from app.config import Settings, load_settings
from app.database import create_engine, create_read_sessionmaker, create_sessionmaker
from app.error_handlers import install_error_handlers
from app.logging_setup import configure_logging
from app.middleware import RequestContextMiddleware, RequestLimitsMiddleware
from app.replica import Replica, ReplicaFallbackMiddleware
from app.routes import (
    appointment,
    desk,
    docs,
    doctor,
    health,
    hold,
    lanes,
    me,
    openapi,
    patient,
    reminder,
    schedule,
    series,
    sync,
    visit_type,
    waitlist,
    webhook,
)
from app.security import ApiKey, KeyRateLimiter, parse_api_keys, require_api_key
from app.services import availability_service
from app.services.outbox.dispatcher import Dispatcher
from app.services.scheduling.day_cache import DayCache
from app.services.sync_service import build_dispatcher
from app.services.waitlist.matcher import sweep_forever

logger = logging.getLogger("app")


def create_app(settings: Settings | None = None, database_url: str | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    url = database_url or settings.database_url
    if url is None:
        raise SystemExit(
            "DATABASE_URL is not set; `make run` starts an embedded PostgreSQL for you"
        )
    api_keys = parse_api_keys(settings.service_api_key or launcher.stored_api_key(settings))
    app = _new_app(settings, url, api_keys)
    install_error_handlers(app)
    _add_routes(app)
    # The phone agent's tools at /mcp, after every other route; its session manager runs for
    # as long as the app serves (`_lifespan`).
    app.state.agent_interface = agent_server.mount(app)
    openapi.install_openapi(app)
    _add_middleware(app, settings)
    return app


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document `/openapi.json` serves, without a database or a key: building the
    app opens nothing (the lifespan would), so `make client` needs no running service."""
    keyless = settings.model_copy(update={"service_api_key": "openapi:document-only"})
    document: dict[str, Any] = create_app(keyless, "postgresql://unused/unused").openapi()
    return document


def _new_app(settings: Settings, url: str, api_keys: dict[str, ApiKey]) -> FastAPI:
    """The app, and what its requests find on `app.state` before the lifespan starts."""
    app = FastAPI(
        title="Clinic booking service",
        version=VERSION,
        description="Doctors, patients, availability and appointments for a clinic; "
        "PostgreSQL is the source of truth, Google Calendar and RAG are mirrors.",
        lifespan=functools.partial(_lifespan, settings=settings, url=url),
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,
        redoc_url=None,
        # Observability is Prometheus (/metrics) and JSON logs; FastAPI's OpenTelemetry hooks
        # would otherwise look for a configured provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.api_keys = api_keys
    app.state.day_cache = DayCache(settings.availability_cache_days)
    app.state.replica = None
    app.state.rate_limiter = (
        KeyRateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
    )
    return app


def _add_routes(app: FastAPI) -> None:
    # Each router is included directly (not through a nested /api/v1 router): nested routers
    # are matched once per level on every request, which showed up in the profile. The
    # appointment routes come first because they carry the hottest paths, after the series'
    # (`/appointments/series...`, never to be read as an appointment's id). The key is checked
    # here, once for every /api/v1 route.
    for router in (
        series.router,
        appointment.router,
        hold.router,
        doctor.router,
        schedule.router,
        visit_type.router,
        patient.router,
        desk.router,
        sync.router,
        webhook.router,
        me.router,
        reminder.router,
        waitlist.router,
    ):
        app.include_router(router, prefix="/api/v1", dependencies=[Depends(require_api_key)])
    app.include_router(health.router)
    app.include_router(desk.page_router)
    docs.install_docs(app)
    # The hottest operations first, on plain routes calling the same endpoint functions
    # (app/routes/lanes.py); their FastAPI routes document them.
    app.router.routes[:0] = lanes.lanes(app.routes)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # The middleware added last sees the request first: request ids (and the last-resort 500)
    # wrap everything, and the limits refuse a request before the replica fallback or a route
    # reads it.
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "X-API-Key",
                "Content-Type",
                "Idempotency-Key",
                "X-Correlation-ID",
                "X-Request-ID",
            ],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(ReplicaFallbackMiddleware)
    app.add_middleware(RequestLimitsMiddleware)
    app.add_middleware(RequestContextMiddleware)


@asynccontextmanager
async def _lifespan(app: FastAPI, settings: Settings, url: str) -> AsyncIterator[None]:
    engine = _open_database(app, settings, url)
    replica_task = await _watch_replica(app, settings, engine)
    dispatcher = _start_dispatcher(app, settings, url)
    chores = asyncio.create_task(housekeeping.run_forever(app.state.sessionmaker))
    await _warm_day_cache(app, settings)
    # Everything loaded so far (modules, routes, schemas) lives as long as the process; keep
    # it out of the collector's full passes, whose pauses otherwise set the latency tail.
    gc.freeze()
    logger.info(
        "service started",
        extra={
            "calendar_sync": "enabled" if settings.calendar_enabled else "disabled",
            "rag_sync": "enabled" if settings.rag_enabled else "disabled",
            "timezone": settings.clinic_timezone,
        },
    )
    agent_interface: AbstractAsyncContextManager[None] = app.state.agent_interface
    try:
        async with agent_interface:
            yield
    finally:
        await _stop(app, engine, dispatcher, (chores, replica_task, app.state.waitlist_sweep))


def _open_database(app: FastAPI, settings: Settings, url: str) -> AsyncEngine:
    engine = create_engine(settings, url)
    app.state.engine = engine
    # Every request works through a session from one of these (app/database.py).
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = create_read_sessionmaker(engine)
    return engine


async def _watch_replica(
    app: FastAPI, settings: Settings, primary: AsyncEngine
) -> asyncio.Task[None] | None:
    if settings.database_read_url is None:
        return None
    replica = Replica(
        create_engine(settings, settings.database_read_url),
        primary,
        settings.read_replica_max_lag_seconds,
        settings.read_replica_check_seconds,
    )
    # Known before the first request: reads start on it only once it is found well.
    await replica.check()
    app.state.replica = replica
    return asyncio.create_task(replica.run_forever())


def _start_dispatcher(app: FastAPI, settings: Settings, url: str) -> Dispatcher | None:
    dispatcher = None
    app.state.waitlist_sweep = None
    if settings.dispatcher_enabled:
        clinic = functools.partial(clinic_of, settings)
        dispatcher = build_dispatcher(settings, app.state.sessionmaker, url, clinic)
        app.state.dispatcher_task = asyncio.create_task(dispatcher.run())
        # What time frees for the waitlist, where the matcher's jobs run.
        app.state.waitlist_sweep = asyncio.create_task(
            sweep_forever(app.state.sessionmaker, settings, clinic)
        )
    app.state.dispatcher = dispatcher
    return dispatcher


async def _warm_day_cache(app: FastAPI, settings: Settings) -> None:
    if not settings.availability_warm_days:
        return
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.availability_warm_seconds):
            warmed = await availability_service.warm_day_cache(
                app.state.sessionmaker,
                app.state.day_cache,
                clinic_of(settings).today,
                settings.availability_warm_days,
            )
    except (TimeoutError, OSError, SQLAlchemyError, asyncpg.PostgresError) as exc:
        # A cold cache costs only speed: the service starts (/ready tells of the database),
        # and keeps what was read before the budget ran out.
        logger.warning("day cache not fully warmed", extra={"error": type(exc).__name__})
        return
    logger.info(
        "day cache warmed",
        extra={"doctor_days": warmed, "seconds": round(time.monotonic() - started, 2)},
    )


async def _stop(
    app: FastAPI,
    engine: AsyncEngine,
    dispatcher: Dispatcher | None,
    tasks: tuple[asyncio.Task[None] | None, ...],
) -> None:
    for task in tasks:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if app.state.replica is not None:
        await app.state.replica.engine.dispose()
    if dispatcher is not None:
        dispatcher.stop()
        await app.state.dispatcher_task
    await engine.dispose()
