"""Availability reads cost a fixed number of queries, whatever the range or the doctor count."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.factories import book, create_doctor, next_weekday

_DRIVER_INTROSPECTION = ("typeinfo_tree", "set_config('jit'")


@asynccontextmanager
async def counting(connection: AsyncConnection) -> AsyncIterator[list[str]]:
    """Every statement the app sends (in rollback mode, all on the test's `connection`),
    whether through SQLAlchemy or the bare driver. The SAVEPOINT and RELEASE / ROLLBACK TO
    SAVEPOINT around each unit of work are the fixture's, not SELECTs, so no count sees them."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    def driver_record(query: Any) -> None:
        # asyncpg looks up unfamiliar column types once per connection; not the app's queries.
        if not any(marker in query.query for marker in _DRIVER_INTROSPECTION):
            statements.append(query.query)

    sync_connection = connection.sync_connection
    assert sync_connection is not None
    driver = (await connection.get_raw_connection()).driver_connection
    event.listen(sync_connection, "before_cursor_execute", record)
    driver.add_query_logger(driver_record)
    try:
        yield statements
        # asyncpg hands each logged query to its loggers with `call_soon`: let the loop run
        # them, or the block's last statement would be counted after the count is taken.
        await asyncio.sleep(0)
    finally:
        event.remove(sync_connection, "before_cursor_execute", record)
        driver.remove_query_logger(driver_record)


async def test_doctor_availability_is_two_queries_then_one(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """Whatever the range: the versions and the blocks the first time, then only the versions
    while the days are remembered; a change to one day costs one full read again."""
    doctor = await create_doctor(client)
    start = next_weekday(0)
    for offset in range(5):
        await book(client, doctor["id"], start + dt.timedelta(days=offset), "10:00")

    async def selects(days: int) -> int:
        async with counting(connection) as statements:
            response = await client.get(
                f"/api/v1/appointments/availability/{doctor['id']}",
                params={
                    "start_date": start.isoformat(),
                    "end_date": (start + dt.timedelta(days=days - 1)).isoformat(),
                },
            )
        assert response.status_code == 200
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    assert [await selects(days) for days in (1, 30, 62)] == [2, 2, 2]
    assert [await selects(days) for days in (1, 30, 62)] == [1, 1, 1]
    await book(client, doctor["id"], start + dt.timedelta(days=3), "11:00")
    assert [await selects(days) for days in (1, 30, 62)] == [1, 2, 1]


async def test_cross_doctor_search_reads_do_not_grow_with_the_doctors(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """One statement for the matching doctors, then one per chunk of days (1, 4, 16...) until
    the earliest `limit` slots are known: as many for three doctors as for one."""

    async def search() -> tuple[list[Any], int]:
        async with counting(connection) as statements:
            response = await client.get(
                "/api/v1/appointments/availability",
                # From a working day after today: the time of day decides nothing.
                params={
                    "specialization": "Neurology",
                    "limit": 50,
                    "start_date": next_weekday(1).isoformat(),
                },
            )
        assert response.status_code == 200 and response.json()
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        return response.json(), len(selects)

    counts = []
    for _ in range(3):
        await create_doctor(client, specialization="Neurology")
        found, count = await search()
        counts.append(count)
    # 50 slots of one doctor need more than the first day: days 1, then 2-5.
    assert counts == [3, 3, 3]
    # Asked again, both chunks' days are remembered at the versions read with the doctors.
    assert await search() == (found, 1)
