from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.database import async_url
from app.launcher import migrate
from app.main import create_app
from tests.db import throwaway_database

API_KEY = "test-secret-key"
OTHER_KEY = "other-secret-key"
TABLES = (
    "outbox_jobs, appointment_events, idempotency_keys, appointments, doctor_leaves, "
    "patient_history, patients, doctor_days, doctors"
)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "service_api_key": f"agent:{API_KEY},admin:{OTHER_KEY}",
        "clinic_timezone": "UTC",
        "log_level": "WARNING",
        "google_calendar_credentials_path": None,
        "rag_service_url": None,
        "database_url": None,
        "dispatcher_enabled": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking set-up that starts its own event loop (Alembic, asyncpg admin) off this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    database = throwaway_database()
    url: str = _in_thread(database.__enter__)
    try:
        _in_thread(migrate, url)
        yield url
    finally:
        _in_thread(database.__exit__, None, None, None)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(database_url), pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The test database, emptied after the test (tests commit real data)."""
    yield engine
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


async def started_app(settings: Settings, database_url: str) -> tuple[FastAPI, Any]:
    app = create_app(settings, database_url=database_url)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    return app, lifespan


@pytest.fixture
async def app(db: AsyncEngine, database_url: str) -> AsyncIterator[FastAPI]:
    app, lifespan = await started_app(make_settings(), database_url)
    yield app
    await lifespan.__aexit__(None, None, None)


def client_for(app: FastAPI, key: str | None = API_KEY) -> httpx.AsyncClient:
    headers = {"X-API-Key": key} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client
