"""Fixtures. Two ways to run a test against the database:

Rollback mode (the default; `connection`, `app`, `client`): the test runs inside one
transaction on one connection of the test engine, rolled back at the end. Every unit of work
of the app (`app.state.sessionmaker`, `app.state.read_sessionmaker`) is a session on that
connection, each in its own SAVEPOINT, so a request that fails rolls back only itself.
Check rows with SQL on `connection` (same transaction). Nothing is committed, nothing is
truncated. `now()` is the test's start time in every statement: timestamps written during
the test are all equal.

Committed mode (`committed` or its older name `db`, `committed_app`, `committed_client`): the
app commits real data through its own pool; every table is truncated after the test. Use it
only when the test needs committed data seen over several connections: concurrent requests
(asyncio.gather) against one app, separate service processes, races, outages, the outbox
dispatcher, schemathesis over a subprocess, SQL from a second connection, or timestamps that
must differ between requests (newest-first ordering, "updated_at did (not) move").

The two modes do not mix in one test: a rollback-mode fixture together with `committed`/`db`
is refused, since neither side would see the other's data (and the truncate would wait for
the open transaction forever).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings
from app.database import READS, async_url
from app.launcher import migrate
from app.main import create_app
from tests.browser import browser, browser_session, page  # noqa: F401  (shared fixtures)
from tests.clock import clock  # noqa: F401  (shared fixture)
from tests.db import throwaway_database

# The webhook tests' `service` fixture (it needs this module's helpers, so it is a plugin).
pytest_plugins = ["tests.webhook_harness"]

API_KEY = "test-secret-key"
OTHER_KEY = "other-secret-key"
TABLES = (
    "waitlist_offers, waitlist_entries, reminders, reminder_policy, webhook_deliveries, "
    "webhook_endpoints, outbox_jobs, appointment_events, idempotency_keys, holds, appointments, "
    "appointment_series, doctor_leaves, "
    "doctor_date_overrides, clinic_holidays, patient_history, patient_access_log, patients, "
    "doctor_days, doctors, visit_types"
)
# The clinic's one reminder policy row: the defaults (its columns'), with no replan owed.
RESTORE_POLICY = "INSERT INTO reminder_policy DEFAULT VALUES"
_COMMITTED_FIXTURES = ("committed", "db")


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


# -- committed mode ----------------------------------------------------------------------------


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Committed mode: the test database, every table truncated after the test.

    For tests that need committed data seen over several connections (concurrent requests,
    service processes, the dispatcher, SQL on a second connection) or timestamps that differ
    between requests. Everything else uses rollback mode (`connection`, `app`, `client`).
    """
    yield engine
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        await conn.execute(text(RESTORE_POLICY))


@pytest.fixture
def db(committed: AsyncEngine) -> AsyncEngine:
    """The older name of `committed` (committed mode, truncated after the test)."""
    return committed


@pytest.fixture
async def committed_app(committed: AsyncEngine, database_url: str) -> AsyncIterator[FastAPI]:
    """The app on its own pool, committing real data (see `committed` for when)."""
    app, lifespan = await started_app(make_settings(), database_url)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def committed_client(committed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `committed_app`."""
    async with client_for(committed_app) as client:
        yield client


@pytest.fixture
def wiped(database_url: str) -> Iterator[str]:
    """Committed mode for sync tests (the browser's): every table truncated after the test,
    from a thread of its own, since Playwright's sync API holds this thread's event loop."""
    yield database_url

    async def truncate() -> None:
        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
            await connection.execute(RESTORE_POLICY)
        finally:
            await connection.close()

    _in_thread(asyncio.run, truncate())


# -- rollback mode -----------------------------------------------------------------------------


@pytest.fixture
async def connection(
    engine: AsyncEngine, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncConnection]:
    """Rollback mode: one connection in a transaction that is rolled back after the test.

    Apps started with `started_app(..., connection=connection)` (and the `app` fixture) run
    every request on it; read the rows they wrote with SQL on it too.
    """
    mixed = [name for name in _COMMITTED_FIXTURES if name in request.fixturenames]
    if mixed:
        pytest.fail(
            f"{request.node.nodeid} uses rollback mode (connection/app/client) together with "
            f"committed mode ({', '.join(mixed)}): use committed_app/committed_client, or read "
            "rows through `connection`",
            pytrace=False,
        )
    async with engine.connect() as conn:
        await conn.begin()
        # SQLAlchemy's driver adapter sends BEGIN with the first statement: send one now, so
        # that every unit of work of the app nests in this transaction (a SAVEPOINT), whether
        # its first statement goes through the ORM or straight to the driver.
        await conn.execute(text("SELECT 1"))
        try:
            yield conn
        finally:
            await conn.rollback()


def bind_to_connection(app: FastAPI, connection: AsyncConnection) -> None:
    """Lend `connection` to every session of `app`: each unit of work is a SAVEPOINT on it,
    and read sessions read on it. The app's code takes the same path as on its own pool
    (`app/database.py`): only where the connection comes from differs."""
    options: dict[str, Any] = {
        "bind": connection,
        "expire_on_commit": False,
        "autoflush": False,
        "join_transaction_mode": "create_savepoint",
    }
    app.state.sessionmaker = async_sessionmaker(**options)
    app.state.read_sessionmaker = async_sessionmaker(**options, info={READS: True})


async def started_app(
    settings: Settings, database_url: str, connection: AsyncConnection | None = None
) -> tuple[FastAPI, Any]:
    """The app with its lifespan entered (call `lifespan.__aexit__` when done).

    With `connection`, in rollback mode: its requests run on that connection.
    """
    app = create_app(settings, database_url=database_url)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    if connection is not None:
        bind_to_connection(app, connection)
    return app, lifespan


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    """The app in rollback mode: every request runs on `connection`."""
    app, lifespan = await started_app(make_settings(), database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


def client_for(app: FastAPI, key: str | None = API_KEY) -> httpx.AsyncClient:
    headers = {"X-API-Key": key} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the rollback-mode `app`."""
    async with client_for(app) as client:
        yield client
