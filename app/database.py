"""Engine, sessions and the one-transaction-per-request dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings


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


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit when the endpoint returns, roll back when it raises.

    Scoped to the endpoint function (see `SessionDep`), so the commit happens before the
    response is sent: a client never sees a 201 for a booking that then fails to commit.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same pool in autocommit mode: a single-statement read needs no BEGIN/COMMIT."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A connection from the same pool, as the bare asyncpg driver.

    For the hottest statements only: on them SQLAlchemy's statement layer costs the worker more
    CPU than the driver round trip itself (see BENCHMARKS.md). Statements run in autocommit
    unless the caller opens a transaction on the connection. A connection the driver found
    broken is invalidated, so the pool replaces it instead of handing it out again.
    """
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        try:
            yield driver
        except BaseException:
            if driver.is_closed():
                await connection.invalidate()
            raise


async def session_driver(session: AsyncSession) -> asyncpg.Connection:
    """The driver connection under a session, for driver-level statements in its transaction.

    Only once the session has run a statement: SQLAlchemy opens the transaction lazily.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


@asynccontextmanager
async def driver_transaction(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A driver connection in a transaction: committed when the block ends, rolled back when
    it raises."""
    async with driver_connection(engine) as driver, driver.transaction():
        yield driver
