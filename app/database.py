"""Engine, sessions and the one-transaction-per-request dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

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
