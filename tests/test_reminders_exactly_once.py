"""Each reminder is emitted exactly once per (appointment, offset, start time): by two real
service processes sweeping the one database, one of them restarted while reminders are
being emitted and delivered, with a hundred reminders due in the same second; and by sweeps
racing in one process. Counted at a loopback receiver, every body verified as Standard
Webhooks says.

The reminders are planned by real bookings; then time "passes" by moving their due instants
to a moment just ahead (`UPDATE reminders SET due_at`), which is all the sweep looks at.
Committed mode: the processes and sweeps read what the others committed."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterator

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from app import adapters
from app.database import unit_of_work
from app.services.reminders import sweep
from tests.conftest import OTHER_KEY, client_for, started_app
from tests.factories import booking_payload, create_doctor, next_weekday
from tests.fake_receiver import Receiver
from tests.servers import service_processes
from tests.test_calendar_mirror import eventually
from tests.test_webhook_delivery import delivery_settings

SLOTS = [f"{9 + i // 2:02d}:{30 * (i % 2):02d}" for i in range(10)]  # 09:00 .. 13:30


async def _book_many(client: httpx.AsyncClient, doctors: int) -> list[str]:
    """Ten appointments for each of `doctors` new doctors on one day; their ids."""
    day = next_weekday(3)
    ids: list[str] = []
    for _ in range(doctors):
        doctor = await create_doctor(client)
        answers = await asyncio.gather(
            *(
                client.post("/api/v1/appointments/", json=booking_payload(doctor["id"], day, s))
                for s in SLOTS
            )
        )
        assert [a.status_code for a in answers] == [201] * len(SLOTS), answers[0].text
        ids += [a.json()["id"] for a in answers]
    return ids


async def _come_due(engine: AsyncEngine, offset: int, in_seconds: float) -> int:
    """The scheduled reminders of `offset` come due together, `in_seconds` from now."""
    async with engine.begin() as conn:
        moved = await conn.execute(
            text(
                "UPDATE reminders SET due_at = date_trunc('second', clock_timestamp())"
                " + make_interval(secs => :seconds)"
                " WHERE status = 'scheduled' AND offset_minutes = :offset"
            ),
            {"seconds": in_seconds, "offset": offset},
        )
    return int(getattr(moved, "rowcount", 0))


async def _count(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql)) or 0)


@contextlib.contextmanager
def _receiver() -> Iterator[Receiver]:
    receiver = Receiver(delay=0.02)  # slow enough that deliveries are in flight at the restart
    try:
        yield receiver
    finally:
        receiver.stop()


async def test_two_processes_and_a_restart_emit_each_reminder_exactly_once(
    committed: AsyncEngine, database_url: str
) -> None:
    env = {
        "DISPATCHER_ENABLED": "true",
        "DISPATCHER_POLL_SECONDS": "0.5",
        "DISPATCHER_LEASE_SECONDS": "5",
        "REMINDER_SWEEP_SECONDS": "0.2",
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WEBHOOK_SECRET_KEY": Fernet.generate_key().decode(),
    }
    async with committed.begin() as conn:  # no replan owed: only the test moves due instants
        await conn.execute(text("UPDATE reminder_policy SET planned_version = version"))
    with _receiver() as receiver, contextlib.ExitStack() as first:
        first.enter_context(service_processes(database_url, 1, OTHER_KEY, env))  # process A
        with service_processes(database_url, 1, OTHER_KEY, env) as (b,):  # process B
            async with httpx.AsyncClient(
                base_url=b, headers={"X-API-Key": OTHER_KEY}, timeout=30
            ) as client:
                created = await client.post(
                    "/api/v1/webhooks/",
                    json={"url": receiver.url, "events": ["appointment.reminder_due"]},
                )
                assert created.status_code == 201, created.text
                endpoint = created.json()
                appointments = await _book_many(client, doctors=10)

                # A hundred due in the same second; once some are out, A restarts.
                assert await _come_due(committed, 1440, in_seconds=1) == len(appointments)

                async def some_received() -> bool:
                    return len(receiver.received()) >= 10

                await eventually(some_received, within=60)
                first.close()  # SIGTERM: A stops with sweeps and deliveries under way
                with service_processes(database_url, 1, OTHER_KEY, env):
                    # The second hundred, due while the new A starts.
                    assert await _come_due(committed, 120, in_seconds=1) == len(appointments)

                    async def all_delivered() -> bool:
                        sent = await _count(
                            committed, "SELECT count(*) FROM reminders WHERE status = 'sent'"
                        )
                        owed = await _count(
                            committed,
                            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'",
                        )
                        return sent == 2 * len(appointments) and owed == 0

                    await eventually(all_delivered, within=90)
                access = await client.get(
                    f"/api/v1/patients/{await _patient_of(committed, appointments[0])}/access-log"
                )
                assert f"webhook:{endpoint['id']}" in {e["actor"] for e in access.json()}

    requests = receiver.received()
    verifier = Webhook(endpoint["secret"])
    bodies = [verifier.verify(r.body, r.headers) for r in requests]
    assert {b["type"] for b in bodies} == {"appointment.reminder_due"}
    assert await _count(committed, "SELECT count(*) FROM webhook_deliveries") == 200
    assert len(requests) == len({r.message_id for r in requests}) == 200
    per_reminder = collections.Counter(
        (b["data"]["appointment"]["id"], b["data"]["reminder"]["offset_minutes"]) for b in bodies
    )
    assert set(per_reminder) == {(i, o) for i in appointments for o in (1440, 120)}
    assert set(per_reminder.values()) == {1}


async def _patient_of(engine: AsyncEngine, appointment_id: str) -> str:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT patient_id FROM appointments WHERE id = :id"), {"id": appointment_id}
        )
    return str(found)


async def test_sweeps_racing_on_one_instant_take_each_reminder_once(
    committed: AsyncEngine, database_url: str
) -> None:
    settings = delivery_settings()
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app, OTHER_KEY) as client:
            created = await client.post(
                "/api/v1/webhooks/",
                json={"url": "http://127.0.0.1:9/hooks", "events": ["appointment.reminder_due"]},
            )
            assert created.status_code == 201, created.text
            appointments = await _book_many(client, doctors=15)
        due = await _come_due(committed, 1440, in_seconds=0)
        due += await _come_due(committed, 120, in_seconds=0)
        assert due == 2 * len(appointments) == 300

        async def one_sweep() -> list[int]:
            settled: list[int] = []
            while True:
                async with unit_of_work(app.state.sessionmaker) as session:
                    clinic = adapters.clinic_of(settings)
                    settled.append(await sweep.emit_due(session, clinic, limit=25))
                if not settled[-1]:
                    return settled

        rounds = await asyncio.gather(*(one_sweep() for _ in range(4)))
    finally:
        await lifespan.__aexit__(None, None, None)
    assert sum(sum(r) for r in rounds) == 300
    messages = await _count(
        committed,
        "SELECT count(DISTINCT (data->'appointment_row'->>'id',"
        " data->'reminder'->>'offset_minutes')) FROM webhook_deliveries",
    )
    assert messages == await _count(committed, "SELECT count(*) FROM webhook_deliveries") == 300
