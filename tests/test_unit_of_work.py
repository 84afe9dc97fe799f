"""The unit of work (app/database.py): one connection per unit, whatever mix of standalone
statements, driver statements and ORM work it runs, and the commit/rollback rules the services
rely on, on the pool and on a connection the tests' rollback mode lends."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from app.config import Settings
from app.database import commits_at_once, create_engine, create_sessionmaker, unit_of_work
from app.models import VisitType
from app.sql import Sql, execute, fetchrow
from tests.conftest import client_for, make_settings, started_app
from tests.factories import booking_payload, create_doctor, next_weekday

_STANDALONE_INSERT = Sql(
    "INSERT INTO visit_types (id, name, duration_minutes, is_active) VALUES (:id, :name, 30, true)",
    standalone=True,
)
_INSERT = Sql(
    "INSERT INTO visit_types (id, name, duration_minutes, is_active) VALUES (:id, :name, 30, true)"
)
_BACKEND = Sql("SELECT pg_backend_pid() AS pid", standalone=True)


async def _names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(text("SELECT name FROM visit_types"))).scalars())


async def test_each_kind_of_statement_commits_or_rolls_back_as_documented(
    db: AsyncEngine, database_url: str
) -> None:
    engine = create_engine(Settings(_env_file=None), database_url)  # type: ignore[call-arg]
    sessions = create_sessionmaker(engine)
    try:
        # Committed: everything, when the block ends normally.
        async with unit_of_work(sessions) as session:
            await execute(session, _STANDALONE_INSERT, id=uuid.uuid4(), name="standalone")
            await execute(session, _INSERT, id=uuid.uuid4(), name="in transaction")
            session.add(VisitType(name="orm", duration_minutes=20))
        assert await _names(db) == {"standalone", "in transaction", "orm"}

        # A standalone statement run before the transaction opened has committed by itself;
        # what came after it rolls back with the unit.
        with pytest.raises(RuntimeError):
            async with unit_of_work(sessions) as session:
                await execute(session, _STANDALONE_INSERT, id=uuid.uuid4(), name="kept")
                session.add(VisitType(name="rolled back (orm)", duration_minutes=20))
                await session.flush()
                await execute(session, _STANDALONE_INSERT, id=uuid.uuid4(), name="rolled back")
                raise RuntimeError("the unit fails")
        assert await _names(db) == {"standalone", "in transaction", "orm", "kept"}

        # One connection for the whole unit: the driver's and the ORM's are the same backend.
        async with unit_of_work(sessions) as session:
            before = await fetchrow(session, _BACKEND)
            orm = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            after = await fetchrow(session, _BACKEND)
            assert before is not None and after is not None
            assert before["pid"] == orm == after["pid"]
    finally:
        await engine.dispose()


async def test_bookings_of_every_kind_run_on_a_pool_of_one(db: object, database_url: str) -> None:
    """Plain, idempotent, refused (alternatives read), rescheduled and cancelled: none may ask
    for a second connection while it holds one (it would wait for itself, then answer 503)."""
    settings = make_settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=5)
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app) as client:
            doctor = await create_doctor(client)
            day = next_weekday(2)
            url = "/api/v1/appointments/"
            plain = client.post(url, json=booking_payload(doctor["id"], day, "09:00"))
            keyed = client.post(
                url,
                json=booking_payload(doctor["id"], day, "09:30"),
                headers={"Idempotency-Key": "pool-of-one"},
            )
            refused = client.post(url, json=booking_payload(doctor["id"], day, "09:10"))
            answers = await asyncio.gather(plain, keyed, refused)
            assert [a.status_code for a in answers] == [201, 201, 409], [a.text for a in answers]
            assert answers[2].json()["alternatives"]
            moved = await client.put(
                f"/api/v1/appointments/{answers[0].json()['id']}/reschedule",
                json={"date": day.isoformat(), "start_time": "10:00"},
            )
            assert moved.status_code == 200, moved.text
            cancelled = await client.delete(f"/api/v1/appointments/{answers[1].json()['id']}")
            assert cancelled.status_code == 200, cancelled.text
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_a_read_session_gives_its_connection_back_used_or_not(
    db: AsyncEngine, database_url: str
) -> None:
    """A read session that ran only driver statements, and one the ORM used too, both leave
    nothing checked out and nothing open once the request closes them."""
    from app.database import close_request_session, create_read_sessionmaker, driver

    engine = create_engine(Settings(_env_file=None), database_url)  # type: ignore[call-arg]
    reads = create_read_sessionmaker(engine)
    try:
        for use_orm in (False, True):
            session = reads()
            scope: dict[str, Any] = {"state": {"read_session": session}}
            assert (await (await driver(session, standalone=True)).fetchval("SELECT 1")) == 1
            if use_orm:
                await session.execute(text("SELECT 1"))
                assert session.in_transaction()
            await close_request_session(scope)
            assert not session.in_transaction()
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("mode", "plans"), [("force_generic_plan", (1, 0)), ("auto", (0, 1))])
async def test_connections_plan_statements_as_configured(
    db: AsyncEngine, database_url: str, mode: str, plans: tuple[int, int]
) -> None:
    """`DB_PLAN_CACHE_MODE` reaches every pooled connection: by default a prepared statement's
    first run already uses the plan PostgreSQL keeps; `auto` plans it for its values first."""
    settings = Settings(_env_file=None, db_plan_cache_mode=mode)  # type: ignore[call-arg]
    engine = create_engine(settings, database_url)
    sessions = create_sessionmaker(engine)
    probe = Sql(
        "SELECT count(*) AS n FROM visit_types WHERE duration_minutes > :d", standalone=True
    )
    try:
        async with unit_of_work(sessions) as session:
            assert (await fetchrow(session, probe, d=5))["n"] == 0
            counted = await fetchrow(
                session,
                Sql(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE 'SELECT count(*) AS n FROM visit_types%'",
                    standalone=True,
                ),
            )
            setting = await fetchrow(
                session, Sql("SELECT current_setting('plan_cache_mode') AS m", standalone=True)
            )
        assert setting["m"] == mode
        assert (counted["generic_plans"], counted["custom_plans"]) == plans
    finally:
        await engine.dispose()


async def test_a_unit_on_a_lent_connection_takes_the_same_path(
    connection: AsyncConnection,
) -> None:
    """Rollback mode lends the test's connection: a unit opens no transaction until it needs
    one, exactly as on the pool (so bookings there go through the batcher too), and the
    transaction it opens is a SAVEPOINT that rolls back alone."""
    sessions = async_sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions) as session:
            assert commits_at_once(session)
            await execute(session, _STANDALONE_INSERT, id=uuid.uuid4(), name="at once")
            assert commits_at_once(session)
            await execute(session, _INSERT, id=uuid.uuid4(), name="rolled back")
            assert not commits_at_once(session)
            session.add(VisitType(name="rolled back (orm)", duration_minutes=20))
            await session.flush()
            raise RuntimeError("the unit fails")
    async with unit_of_work(sessions) as session:
        session.add(VisitType(name="orm first", duration_minutes=20))
        await session.flush()
        assert not commits_at_once(session)
        await execute(session, _INSERT, id=uuid.uuid4(), name="after the orm")
    names = set((await connection.execute(text("SELECT name FROM visit_types"))).scalars())
    assert names == {"at once", "orm first", "after the orm"}


async def test_a_booking_in_rollback_mode_is_written_by_the_batcher(
    client: httpx.AsyncClient,
) -> None:
    def written() -> float:
        value = REGISTRY.get_sample_value("booking_batch_rows_count", {"kind": "write"})
        return value or 0.0

    doctor = await create_doctor(client)
    before = written()
    booked = await client.post(
        "/api/v1/appointments/", json=booking_payload(doctor["id"], next_weekday(1), "09:00")
    )
    assert booked.status_code == 201, booked.text
    assert written() == before + 1


async def test_a_unit_begun_without_a_statement_still_runs_driver_statements_inside_it(
    db: AsyncEngine, database_url: str
) -> None:
    """The session's transaction has begun, but SQLAlchemy's adapter sends BEGIN only with
    its first statement: the driver's statement must not run, and commit, outside it."""
    engine = create_engine(Settings(_env_file=None), database_url)  # type: ignore[call-arg]
    sessions = create_sessionmaker(engine)
    try:
        with pytest.raises(RuntimeError):
            async with unit_of_work(sessions) as session:
                await session.connection()
                await execute(session, _STANDALONE_INSERT, id=uuid.uuid4(), name="in it")
                raise RuntimeError("the unit fails")
        assert await _names(db) == set()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
