"""The one way to the database: engines, the unit of work, and hand-written SQL on the driver.

Every request and every job works through an `AsyncSession`:
- `unit_of_work` opens a session and commits it when the block ends (rolls back when it
  raises). The request dependencies (`SessionDep`, `adapters.open_change`), the outbox
  dispatcher, housekeeping and the commands all go through it; services only flush.
- `read_session` (`ReadSessionDep`) is a session for requests that only read, marked
  `READS`: its statements on the driver run without a transaction (one statement needs no
  BEGIN and COMMIT round trips); ORM reads open one, rolled back when the session closes.
  It reads from the replica (`DATABASE_READ_URL`) while that is well; units of work never do.
Services take a session and nothing else. The hottest statements (availability, search,
booking) are hand-written SQL (`app/sql.py`), run on the asyncpg connection under the session
(`driver`): inside the unit of work's transaction, or at once while none is open when the
statement is `standalone`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import asyncpg
from asyncpg.transaction import Transaction
from fastapi import Depends, Request
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings

Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")


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
                "plan_cache_mode": settings.db_plan_cache_mode,
            },
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> Sessions:
    """Sessions for units of work: each runs in one transaction."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# Marks a session that only reads (`Session.info`). Not an AUTOCOMMIT engine: an engine with
# execution options dispatches connection events on every checkout, which the profile of the
# hottest read showed as a tenth of its time.
READS = "reads"


def create_read_sessionmaker(engine: AsyncEngine) -> Sessions:
    """Sessions for requests that only read, on the same pool."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info={READS: True})


@asynccontextmanager
async def unit_of_work(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session whose work commits when the block ends, or rolls back when it raises.

    The session is bound to a connection checked out here, and its hand-written statements
    run on that connection's asyncpg connection (`driver`). The unit opens no transaction
    until something needs one: `standalone` statements run at once without one, and a
    session that did nothing else is neither committed nor closed. That bookkeeping (a
    greenlet switch each, and the BEGIN and COMMIT round trips) cost a booking, which is two
    standalone statements, a fifth of its CPU (BENCHMARKS.md). Anything else opens the unit's
    transaction on the same connection, so a unit never holds two.
    """
    bind = sessions.kw.get("bind")
    async with _checked_out(bind) as connection:
        unit = _Unit(connection, lent=connection is bind)
        session = sessions(bind=connection, info={_UNIT: unit})
        try:
            yield session
            if _has_work(session):
                await session.commit()
            if unit.transaction is not None:
                await unit.transaction.commit()
        except BaseException:
            await _roll_back(session, unit)
            raise
        finally:
            unit.transaction = None
            if _has_work(session) or session.sync_session.identity_map:
                await session.close()
            if not unit.lent and unit.driver.is_in_transaction():
                # Never give the pool a connection inside a transaction (a commit or rollback
                # cut short): the next request would run in it.
                await connection.invalidate()


class _Unit:
    """What a unit of work's session keeps beside SQLAlchemy's state (`Session.info`).

    Hand-written statements go straight to `driver`; the transaction they need is begun
    through asyncpg's own API (`transaction`), because SQLAlchemy's driver adapter begins
    its transaction only with the first statement sent through it. When the ORM then sends
    one, the adapter's transaction nests in this one (asyncpg makes it a SAVEPOINT); when the
    ORM came first, the driver's statements run in the adapter's transaction.
    """

    __slots__ = ("connection", "driver", "lent", "transaction")

    def __init__(self, connection: AsyncConnection, *, lent: bool) -> None:
        self.connection = connection
        self.driver = _driver_of(connection)
        # A connection the sessions are bound to is lent by its owner (the tests' rollback
        # mode: one connection in a transaction for the whole test); the unit's own
        # transaction is then a SAVEPOINT in the owner's.
        self.lent = lent
        self.transaction: Transaction | None = None

    async def begin(self) -> None:
        self.transaction = self.driver.transaction()
        await self.transaction.start()


async def _roll_back(session: AsyncSession, unit: _Unit) -> None:
    try:
        if _has_work(session):
            await session.rollback()
    finally:
        transaction, unit.transaction = unit.transaction, None
        if transaction is not None and not unit.driver.is_closed():
            await transaction.rollback()


def _has_work(session: AsyncSession) -> bool:
    return session.in_transaction() or bool(session.new or session.deleted or session.dirty)


@asynccontextmanager
async def _checked_out(bind: object) -> AsyncIterator[AsyncConnection]:
    """A connection from the sessions' engine, or the one they are bound to (lent, not closed)."""
    if isinstance(bind, AsyncConnection):
        yield bind
        return
    if not isinstance(bind, AsyncEngine):
        raise TypeError("sessions are bound to an engine or a connection")
    connection = await _connect(bind)
    try:
        yield connection
    finally:
        await connection.close()


# Requests of this process inside a pool checkout: waiting for a connection while the pool
# is exhausted (`metrics.sample_pool`; SQLAlchemy's pool does not count its waiters).
_checkouts = 0


def checkouts_waiting() -> int:
    return _checkouts


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    global _checkouts
    _checkouts += 1
    try:
        return await engine.connect()
    finally:
        _checkouts -= 1


def _driver_of(connection: AsyncConnection) -> asyncpg.Connection:
    # Public API all the way (`Connection.connection`, `driver_connection`), read off the
    # connection already checked out: `get_raw_connection()` would cost a greenlet switch.
    assert connection.sync_connection is not None  # set once connected
    raw = connection.sync_connection.connection.driver_connection
    if not isinstance(raw, asyncpg.Connection):
        raise TypeError("the database driver is not asyncpg")
    return raw


async def _request_unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


def read_session(request: Request) -> AsyncSession:
    """The request's read session. Not a `yield` dependency (FastAPI's exit stack for those
    was a tenth of the hottest read's time): there is nothing to commit, so it is closed by
    `close_request_session` once the response has been sent."""
    opened: AsyncSession | None = getattr(request.state, "read_session", None)
    if opened is not None:
        return opened
    sessions: Sessions = request.app.state.read_sessionmaker
    # The read replica while it is well (app/replica.py), unless a read already failed there.
    replica = request.app.state.replica
    if replica is not None and replica.usable and not getattr(request.state, "primary_only", 0):
        sessions = replica.sessions
        request.state.read_on_replica = True
    session = sessions()
    request.state.read_session = session
    return session


async def _request_reads(request: Request) -> AsyncSession:
    return read_session(request)


async def close_request_session(scope: MutableMapping[str, Any]) -> None:
    """Close the read session a request opened, if any (called by the request middleware)."""
    session: AsyncSession | None = scope.get("state", {}).pop("read_session", None)
    if session is None:
        return
    connection: AsyncConnection | None = session.info.pop(_READ_CONNECTION, None)
    session.info.pop(_READ_DRIVER, None)
    try:
        # A session that only ran driver statements holds nothing to close (a greenlet switch
        # saved on the hottest reads); one the ORM used is closed, rolling its reads back.
        if session.in_transaction() or session.sync_session.identity_map:
            await session.close()
    finally:
        if connection is not None:
            await connection.close()


# Scoped to the endpoint function, so the commit happens before the response is sent: a
# client never sees a 201 for a booking that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(_request_unit_of_work, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(_request_reads)]


# What a session keeps for its driver statements (`Session.info`).
_UNIT = "unit"  # a unit of work: its `_Unit`
_READ_CONNECTION = "read_connection"  # READS: the pooled connection it checked out, if any
_READ_DRIVER = "read_driver"  # READS: that connection's asyncpg connection


def commits_at_once(session: AsyncSession) -> bool:
    """Whether a `standalone` statement on this unit of work's session would run, and commit,
    by itself now: the unit has opened no transaction."""
    unit: _Unit | None = session.info.get(_UNIT)
    return unit is not None and unit.transaction is None and not session.in_transaction()


async def driver(session: AsyncSession, *, standalone: bool = False) -> asyncpg.Connection:
    """The asyncpg connection for `session`'s hand-written statements.

    For the hottest statements only: on them SQLAlchemy's statement layer costs more CPU than
    the round trip itself (see BENCHMARKS.md).
    - A unit of work's statements run inside its transaction, begun here if none is open
      (`_Unit`), unless the statement is `standalone` and the unit has opened none yet: then
      it runs at once (see `Sql`), saving the BEGIN and COMMIT round trips.
    - A session that only reads (`READS`) runs them without a transaction, on a connection
      it checks out of the pool directly: going through the session's transaction bookkeeping
      for a statement that needs none cost the hottest read a tenth of its time.
    """
    if session.info.get(READS):
        reader: asyncpg.Connection | None = session.info.get(_READ_DRIVER)
        if reader is None:
            reader = await _open_reads(session)
        return reader
    unit: _Unit | None = session.info.get(_UNIT)
    if unit is None:
        raise TypeError("hand-written statements run in a unit of work or a read session")
    if unit.transaction is None:
        if not session.in_transaction():
            if standalone:
                return unit.driver
            await unit.begin()
        elif not unit.driver.is_in_transaction():
            # The session has begun, but its driver adapter sends BEGIN only with the ORM's
            # first statement, and none has gone yet.
            await unit.begin()
    return unit.driver


async def _open_reads(session: AsyncSession) -> asyncpg.Connection:
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        connection = bind  # lent (the tests' rollback mode): used, never closed
    elif isinstance(bind, AsyncEngine):
        connection = session.info[_READ_CONNECTION] = await _connect(bind)
    else:
        raise TypeError("a read session is bound to an engine or a connection")
    reader = _driver_of(connection)
    session.info[_READ_DRIVER] = reader
    return reader


async def discard_if_broken(session: AsyncSession, connection: asyncpg.Connection) -> None:
    """Keep a connection the driver found broken (the database restarted) out of the pool.

    SQLAlchemy notices a lost connection only on statements that go through it; one that ran
    only driver statements would otherwise go back to the pool and fail the next request too.
    """
    if not connection.is_closed():
        return
    if session.info.get(READS):
        pooled: AsyncConnection | None = session.info.pop(_READ_CONNECTION, None)
        session.info.pop(_READ_DRIVER, None)
        if pooled is not None:
            await pooled.invalidate()
        return
    unit: _Unit | None = session.info.get(_UNIT)
    if unit is not None:
        unit.transaction = None
        await unit.connection.invalidate()


def violated_constraint(exc: DBAPIError | asyncpg.PostgresError) -> str | None:
    """The constraint a unique, exclusion or check violation names, so services can answer
    with a 409."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    original = getattr(original, "__cause__", None) or original
    name = getattr(original, "constraint_name", None)
    return name if isinstance(name, str) else None
