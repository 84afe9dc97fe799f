"""Property over HTTP: whatever availability offers can be booked, exactly once.

Rollback mode, one transaction per example: the app is started once for the module (in its
own event loop thread) and each example binds it to a fresh connection of the app's own pool
whose transaction is rolled back when the example ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import bind_to_connection, client_for, make_settings, started_app
from tests.factories import book, doctor_payload, next_weekday

T = TypeVar("T")


class LoopThread:
    """An event loop in its own thread, so sync Hypothesis tests can drive the async app."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def driver(database_url: str) -> Iterator[tuple[LoopThread, httpx.AsyncClient, Any]]:
    runner = LoopThread()
    app, lifespan = runner.run(
        started_app(make_settings(clinic_timezone="Europe/London"), database_url)
    )
    client = client_for(app)
    yield runner, client, app
    runner.run(client.aclose())
    runner.run(lifespan.__aexit__(None, None, None))
    runner.stop()


async def _rolled_back(app: Any, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run `scenario` with every request of `app` in one transaction, then roll it back."""
    async with app.state.engine.connect() as connection:
        await connection.begin()
        bind_to_connection(app, connection)
        try:
            await scenario()
        finally:
            await connection.rollback()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start_minute=st.integers(6 * 60, 12 * 60).map(lambda m: m - m % 5),
    length=st.integers(60, 10 * 60),
    slot=st.sampled_from([10, 15, 20, 30, 45, 60, 90]),
    pre_booked=st.lists(st.integers(0, 40), max_size=6),
    pick=st.integers(0, 10_000),
)
def test_any_offered_slot_books_once(
    driver: tuple[LoopThread, httpx.AsyncClient, Any],
    start_minute: int,
    length: int,
    slot: int,
    pre_booked: list[int],
    pick: int,
) -> None:
    runner, client, app = driver
    end_minute = min(start_minute + length, 23 * 60 + 59)
    hours = {
        "start": f"{start_minute // 60:02d}:{start_minute % 60:02d}",
        "end": f"{end_minute // 60:02d}:{end_minute % 60:02d}",
    }

    async def scenario() -> None:
        created = await client.post(
            "/api/v1/doctors/",
            json=doctor_payload(
                working_hours=hours,
                slot_duration_minutes=slot,
                working_days=[
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                ],
            ),
        )
        assert created.status_code == 201, created.text
        doctor_id = created.json()["id"]
        day = next_weekday(2)

        async def offered() -> list[str]:
            response = await client.get(
                f"/api/v1/appointments/availability/{doctor_id}", params={"date": day.isoformat()}
            )
            return [s["start_time"] for s in response.json()["days"][0]["slots"]]

        for index in pre_booked:
            current = await offered()
            if current:
                assert (
                    await book(client, doctor_id, day, current[index % len(current)])
                ).status_code == 201
        current = await offered()
        if not current:
            return
        chosen = current[pick % len(current)]
        first = await book(client, doctor_id, day, chosen)
        assert first.status_code == 201, first.text
        second = await book(client, doctor_id, day, chosen)
        assert second.status_code == 409
        assert chosen not in await offered()

    runner.run(_rolled_back(app, scenario))
