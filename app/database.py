"""The one way to the database: engines, the unit of work, and hand-written SQL on the driver.

Every request and every job works through an `AsyncSession`:
- `unit_of_work` opens a session and commits it when the block ends (rolls back when it
  raises). The request dependency `SessionDep`, the outbox dispatcher, housekeeping and the
  commands all go through it; services only flush, never commit.
- `ReadSessionDep` is a session on the same pool in autocommit mode, for requests that only
  read: one statement needs no BEGIN and COMMIT round trips.
Services take a session and nothing else. The hottest statements (availability, search,
booking) are hand-written SQL run on the asyncpg connection under the session (`driver`),
inside the session's transaction, with `:named` parameters (`Sql`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings

Sessions = async_sessionmaker[AsyncSession]


def async_url(database_url: str) -> URL:
    """Turn a libpq-style `postgresql://` URL into SQLAlchemy's asyncpg form."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    query = dict(url.query)
    sslmode = query.pop("sslmode", None)
    if sslmode is not None and sslmode != "disable":
        query["ssl"] = sslmode
    return url.set(drivername="postgresql+asyncpg", query=query)


def create_engine(settings: Settings, database_url: str) -> AsyncEngine:
    return create_async_engine(
        async_url(database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "command_timeout": max(settings.db_statement_timeout_ms / 1000, 1) + 5,
            "server_settings": {
                "application_name": "clinic-booking",
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "lock_timeout": str(settings.db_statement_timeout_ms),
            },
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> Sessions:
    """Sessions for units of work: each runs in one transaction."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> Sessions:
    """Sessions for reads: the same pool in autocommit mode."""
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


@asynccontextmanager
async def unit_of_work(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session whose work commits when the block ends, or rolls back when it raises."""
    async with sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def _request_unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


async def _request_reads(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: Sessions = request.app.state.read_sessionmaker
    async with sessions() as session:
        yield session


# Scoped to the endpoint function, so the commit happens before the response is sent: a
# client never sees a 201 for a booking that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(_request_unit_of_work, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(_request_reads, scope="function")]


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, inside the session's transaction.

    For the hottest statements only: on them SQLAlchemy's statement layer costs more CPU than
    the round trip itself (see BENCHMARKS.md). SQLAlchemy's asyncpg adapter sends BEGIN
    lazily, with the first statement that goes through it; statements sent straight to the
    driver would bypass that and run outside the transaction, so it is started here.
    """
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    adapter = pooled.dbapi_connection
    if not isinstance(adapter, AsyncAdapt_asyncpg_connection):
        raise TypeError("the database driver is not asyncpg")
    if adapter._transaction is None:
        await adapter._start_transaction()  # returns at once in autocommit mode
    raw: asyncpg.Connection = pooled.driver_connection
    return raw


_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Sql:
    """A hand-written statement with `:name` parameters, compiled once to the driver's `$n`.

    Values are passed by name (`sql.args(doctor_id=..., day=...)`), so a statement with many
    parameters reads like a call with keywords, and a missing or unknown name fails loudly.
    """

    __slots__ = ("_expected", "names", "text")

    def __init__(self, text: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.text = _PARAMETER.sub(number, text)
        self.names = tuple(names)
        self._expected = frozenset(names)

    def args(self, **values: object) -> list[object]:
        if values.keys() != self._expected:
            missing = self._expected - values.keys()
            unknown = values.keys() - self._expected
            raise TypeError(f"SQL parameters: missing {sorted(missing)}, unknown {sorted(unknown)}")
        return [values[name] for name in self.names]


async def fetch(session: AsyncSession, sql: Sql, **values: object) -> list[asyncpg.Record]:
    return await (await driver(session)).fetch(sql.text, *sql.args(**values))


async def fetchrow(session: AsyncSession, sql: Sql, **values: object) -> asyncpg.Record | None:
    return await (await driver(session)).fetchrow(sql.text, *sql.args(**values))


async def execute(session: AsyncSession, sql: Sql, **values: object) -> str:
    return await (await driver(session)).execute(sql.text, *sql.args(**values))


def violated_constraint(exc: DBAPIError | asyncpg.PostgresError) -> str | None:
    """The constraint a unique, exclusion or check violation names, so services can answer
    with a 409."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    original = getattr(original, "__cause__", None) or original
    name = getattr(original, "constraint_name", None)
    return name if isinstance(name, str) else None
