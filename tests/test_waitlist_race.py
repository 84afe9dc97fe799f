"""The waitlist under a race: two service processes, each dispatching (so each runs the
matcher), a few hundred waiting entries, and dozens of cancels at once through both, with
bookings racing the offers for the freed slots. Checked in SQL once every freed slot is either
booked again or offered: no slot held for two entries, no entry offered twice, no slot both
offered and booked by someone else, and the offers went to the oldest entries. Committed
mode; waits are for conditions, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import OTHER_KEY
from tests.factories import booking_payload, create_doctor, next_weekday, patient_payload
from tests.servers import service_processes

DAY = next_weekday(1, weeks_ahead=2)
STARTS = [f"{h:02d}:{m:02d}" for h in range(9, 15) for m in (0, 30)]  # 12 slots a doctor
ENTRIES = 300
ACTIVE = "('BOOKED', 'RESCHEDULED', 'CHECKED_IN', 'COMPLETED')"


async def in_batches(calls: list[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    for at in range(0, len(calls), 25):
        answers += await asyncio.gather(*(call() for call in calls[at : at + 25]))
    return answers


async def until(check: Callable[[], Awaitable[bool]], within: float = 90) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.2)


async def rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def test_two_processes_offer_each_freed_slot_once_to_the_oldest(
    committed: AsyncEngine, database_url: str
) -> None:
    env = {"DISPATCHER_ENABLED": "true", "DISPATCHER_POLL_SECONDS": "0.5"}
    with service_processes(database_url, 2, OTHER_KEY, env) as urls:
        clients = [
            httpx.AsyncClient(base_url=url, headers={"X-API-Key": OTHER_KEY}, timeout=60)
            for url in urls
        ]
        try:
            await _race(committed, clients)
        finally:
            for client in clients:
                await client.aclose()


async def _race(engine: AsyncEngine, clients: list[httpx.AsyncClient]) -> None:
    weekday = DAY.strftime("%A").lower()
    week = {weekday: [{"start": "09:00", "end": "15:00"}]}
    doctors = [
        (await create_doctor(clients[0], specialization="Waitlistology", weekly_hours=week))["id"]
        for _ in range(2)
    ]
    bookings = [
        (
            lambda i=i, d=d, s=s: clients[i % 2].post(
                "/api/v1/appointments/", json=booking_payload(d, DAY, s)
            )
        )
        for i, (d, s) in enumerate((d, s) for d in doctors for s in STARTS)
    ]
    booked = [a.json()["id"] for a in await in_batches(bookings)]
    assert len(booked) == 2 * len(STARTS)

    entry = {"specialization": "waitlistology", "start_date": DAY.isoformat()}
    entry["end_date"] = DAY.isoformat()
    joins = [
        (
            lambda i=i: clients[i % 2].post(
                "/api/v1/waitlist/", json={**entry, "patient": patient_payload()}
            )
        )
        for i in range(ENTRIES)
    ]
    made = await in_batches(joins)
    assert all(m.status_code == 201 for m in made), [m.text for m in made if m.status_code != 201]
    assert await rows(engine, "SELECT id FROM waitlist_offers") == []

    # Every slot's appointment cancelled at once through both processes, and as many
    # strangers trying to book the slots as they come free.
    cancels = [
        (lambda i=i, a=a: clients[i % 2].delete(f"/api/v1/appointments/{a}"))
        for i, a in enumerate(booked)
    ]
    grabs = [
        (
            lambda i=i, d=d, s=s: clients[(i + 1) % 2].post(
                "/api/v1/appointments/", json=booking_payload(d, DAY, s)
            )
        )
        for i, (d, s) in enumerate((d, s) for d in doctors for s in STARTS[::3])
    ]
    answers = await asyncio.gather(*(call() for call in cancels + grabs))
    assert all(a.status_code == 200 for a in answers[: len(cancels)])
    assert all(a.status_code in (201, 409) for a in answers[len(cancels) :])

    # Every freed slot is, in the end, booked by a stranger or held for an entry.
    covered = f"""
        SELECT count(*) FROM (
            SELECT doctor_id, date, start_time FROM appointments WHERE status IN {ACTIVE}
            UNION
            SELECT doctor_id, date, start_time FROM waitlist_offers WHERE outcome = 'open'
        ) AS slot"""

    async def all_covered() -> bool:
        return (await rows(engine, covered))[0][0] == len(booked)

    await until(all_covered)

    # No slot held for two entries, and no two active holds on one slot.
    assert (
        await rows(
            engine,
            "SELECT doctor_id, date, start_time FROM waitlist_offers WHERE outcome = 'open'"
            " GROUP BY 1, 2, 3 HAVING count(*) > 1",
        )
        == []
    )
    assert (
        await rows(
            engine,
            "SELECT doctor_id, date, start_time FROM holds WHERE status = 'active'"
            " GROUP BY 1, 2, 3 HAVING count(*) > 1",
        )
        == []
    )
    # No entry offered twice; every offered entry reads offered, with that offer's hold.
    assert (
        await rows(engine, "SELECT entry_id FROM waitlist_offers GROUP BY 1 HAVING count(*) > 1")
        == []
    )
    assert (
        await rows(
            engine,
            "SELECT o.entry_id FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id"
            " WHERE e.status <> 'offered' OR e.hold_id IS DISTINCT FROM o.hold_id",
        )
        == []
    )
    # No slot both offered and booked by someone else.
    assert (
        await rows(
            engine,
            f"""SELECT o.id FROM waitlist_offers o JOIN appointments a
              ON a.doctor_id = o.doctor_id AND a.date = o.date
             AND a.start_time < o.end_time AND o.start_time < a.end_time
             WHERE o.outcome = 'open' AND a.status IN {ACTIVE}""",
        )
        == []
    )
    # The offers went to the oldest entries (every entry fits every slot).
    offered = {r[0] for r in await rows(engine, "SELECT entry_id FROM waitlist_offers")}
    oldest = await rows(
        engine, f"SELECT id FROM waitlist_entries ORDER BY created_at, id LIMIT {len(offered)}"
    )
    assert offered == {r[0] for r in oldest}
    assert len(offered) >= len(booked) - len(grabs)
