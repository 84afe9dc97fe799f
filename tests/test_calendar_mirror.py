"""The Google Calendar mirror, through the real Google client, against a fake Google."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.database import driver, unit_of_work
from app.schemas.appointment import AppointmentCreate
from app.services import booking_service
from app.services.context import Caller, Clinic
from app.services.google_calendar.client import event_id_for
from app.services.google_calendar_service import CalendarMirror
from app.services.outbox import jobs as outbox
from app.services.outbox.dispatcher import Dispatcher
from tests.clock import Clock
from tests.conftest import client_for, make_settings, started_app
from tests.factories import book, booking_payload, create_doctor, next_weekday, patient_payload
from tests.fake_google import ADMIN, FakeGoogle, Scripted

ZONE = "Asia/Kolkata"


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def credentials(google: FakeGoogle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return google.write_credentials(tmp_path_factory.mktemp("google"))


def calendar_settings(google: FakeGoogle, credentials: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "google_calendar_credentials_path": str(credentials),
        "google_calendar_delegated_admin_email": ADMIN,
        "google_calendar_api_endpoint": f"{google.url}/calendar/v3/",
        "google_calendar_timeout_seconds": 5,
        "clinic_timezone": ZONE,
        "dispatcher_enabled": True,
        "dispatcher_poll_seconds": 0.2,
        "dispatcher_backoff_base_seconds": 0.05,
        "dispatcher_backoff_max_seconds": 0.3,
        "dispatcher_lease_seconds": 10,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
async def mirrored(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    google.reset()
    app, lifespan = await started_app(calendar_settings(google, credentials), database_url)
    async with client_for(app) as client:
        yield app, client
    await lifespan.__aexit__(None, None, None)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def appointment(client: httpx.AsyncClient, appointment_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/appointments/{appointment_id}")
    body: dict[str, Any] = response.json()
    return body


def all_synced(client: httpx.AsyncClient, *ids: str) -> Callable[[], Awaitable[bool]]:
    """A check for `eventually`: every given appointment's calendar state is `synced`."""

    async def check() -> bool:
        states = [(await appointment(client, i))["calendar_sync_status"] for i in ids]
        return set(states) == {"synced"}

    return check


async def assert_mirror_matches(db: AsyncEngine, google: FakeGoogle) -> None:
    """Exactly one event per appointment that is not cancelled, at its time, in its doctor's
    calendar."""
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT a.id, a.date, a.start_time, a.end_time, d.email FROM appointments a"
                    " JOIN doctors d ON d.id = a.doctor_id"
                    " WHERE a.status <> 'CANCELLED'"
                )
            )
        ).all()
    expected = {event_id_for(r.id): r for r in rows}
    live = google.all_events()
    assert set(live) == set(expected)
    for event_id, row in expected.items():
        event = google.events(row.email)[event_id]
        assert event["start"] == {"dateTime": f"{row.date}T{row.start_time}", "timeZone": ZONE}
        assert event["end"] == {"dateTime": f"{row.date}T{row.end_time}", "timeZone": ZONE}
        assert event["extendedProperties"]["private"]["appointment_id"] == str(row.id)


async def test_events_appear_move_and_disappear(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine
) -> None:
    _, client = mirrored
    doctor = await create_doctor(client)
    day = next_weekday(0)
    created = await book(client, doctor["id"], day, "10:00")
    assert created.status_code == 201
    assert created.json()["calendar_sync_status"] == "pending"
    appointment_id = created.json()["id"]
    event_id = event_id_for(uuid.UUID(appointment_id))

    synced = all_synced(client, appointment_id)

    await eventually(synced)
    stored = await appointment(client, appointment_id)
    assert stored["google_calendar_event_id"] == event_id
    event = google.events(doctor["email"])[event_id]
    assert event["start"] == {"dateTime": f"{day}T10:00:00", "timeZone": ZONE}
    assert event["end"] == {"dateTime": f"{day}T10:30:00", "timeZone": ZONE}
    assert "Patient:" in event["description"]
    assert google.rejected_tokens == 0 and google.token_requests >= 1

    moved = await client.put(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        json={"date": day.isoformat(), "start_time": "15:30"},
    )
    assert moved.json()["calendar_sync_status"] == "pending"
    await eventually(synced)
    assert google.events(doctor["email"])[event_id]["start"]["dateTime"] == f"{day}T15:30:00"

    await client.delete(f"/api/v1/appointments/{appointment_id}")
    await eventually(synced)
    assert google.events(doctor["email"]) == {}
    await assert_mirror_matches(db, google)


async def test_the_event_names_the_visit_type(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle
) -> None:
    _, client = mirrored
    created_type = await client.post(
        "/api/v1/visit-types/", json={"name": "New patient consultation", "duration_minutes": 60}
    )
    visit_type = created_type.json()
    doctor = await create_doctor(client, visit_type_ids=[visit_type["id"]])
    day = next_weekday(1)
    typed = await book(client, doctor["id"], day, "10:00", visit_type_id=visit_type["id"])
    plain = await book(client, doctor["id"], day, "14:00")
    assert typed.status_code == plain.status_code == 201, (typed.text, plain.text)
    for response in (typed, plain):
        await eventually(all_synced(client, response.json()["id"]))
    events = google.events(doctor["email"])
    typed_event = events[event_id_for(uuid.UUID(typed.json()["id"]))]
    plain_event = events[event_id_for(uuid.UUID(plain.json()["id"]))]
    assert typed_event["summary"].startswith("New patient consultation: ")
    assert "Visit: New patient consultation" in typed_event["description"]
    assert typed_event["end"]["dateTime"] == f"{day}T11:00:00"
    assert plain_event["summary"].startswith("Appointment: ")


async def test_the_event_shows_what_the_front_desk_recorded(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine, clock: Clock
) -> None:
    _, client = mirrored
    doctor = await create_doctor(client)
    day = next_weekday(3)
    seen, missed = [
        (await book(client, doctor["id"], day, t)).json()["id"] for t in ("09:00", "11:00")
    ]
    clock.set(day, "11:10")

    def event(appointment_id: str) -> dict[str, Any]:
        return google.events(doctor["email"])[event_id_for(uuid.UUID(appointment_id))]

    for name, title in (("check-in", "Checked in - Appointment: "), ("complete", "Completed - ")):
        assert (await client.post(f"/api/v1/appointments/{seen}/{name}")).status_code == 200
        await eventually(all_synced(client, seen, missed))
        assert event(seen)["summary"].startswith(title)
        assert event(seen)["transparency"] == "opaque"
    assert (await client.post(f"/api/v1/appointments/{missed}/no-show")).status_code == 200
    await eventually(all_synced(client, missed))
    # The missed visit stays in the doctor's calendar as a record, its time shown as free.
    assert event(missed)["summary"].startswith("No-show - Appointment: ")
    assert event(missed)["transparency"] == "transparent"
    await assert_mirror_matches(db, google)


async def test_google_down_then_back_converges(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine
) -> None:
    _, client = mirrored
    doctors = [await create_doctor(client) for _ in range(2)]
    day = next_weekday(1)
    google.down = True
    ids = []
    for i in range(12):
        response = await book(
            client, doctors[i % 2]["id"], day, f"{9 + i // 2:02d}:{(i % 2) * 30:02d}"
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    next_day = (day + dt.timedelta(days=1)).isoformat()
    for appointment_id, start in zip(ids[:3], ("16:00", "16:30", "15:00"), strict=True):
        moved = await client.put(
            f"/api/v1/appointments/{appointment_id}/reschedule",
            json={"date": next_day, "start_time": start},
        )
        assert moved.status_code == 200, moved.text
    for appointment_id in ids[3:5]:
        assert (await client.delete(f"/api/v1/appointments/{appointment_id}")).status_code == 200

    async def errors_visible() -> bool:
        status = (await client.get("/api/v1/sync/status")).json()["calendar"]
        return bool(status["recent_errors"]) and status["oldest_pending_age_seconds"] is not None

    await eventually(errors_visible)
    assert google.all_events() == {}
    google.down = False

    async def settled() -> bool:
        counts = (await client.get("/api/v1/sync/status")).json()["calendar"]["jobs"]
        return counts["pending"] == 0 and counts["in_progress"] == 0

    await eventually(settled)
    await assert_mirror_matches(db, google)
    statuses = {(await appointment(client, i))["calendar_sync_status"] for i in ids}
    assert statuses == {"synced"}


async def test_rate_limits_are_retried(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine
) -> None:
    _, client = mirrored
    doctor = await create_doctor(client)
    google.script.extend([Scripted(429, "rateLimitExceeded", retry_after="0")] * 3)
    google.script.extend([Scripted(403, "rateLimitExceeded")] * 2)
    google.script.extend([Scripted(403, "userRateLimitExceeded")] * 2)
    google.script.append(Scripted(500, "backendError"))
    ids = [
        (await book(client, doctor["id"], next_weekday(2), t)).json()["id"]
        for t in ("09:00", "09:30", "10:00")
    ]

    synced_all = all_synced(client, *ids)

    await eventually(synced_all)
    assert not google.script
    await assert_mirror_matches(db, google)


async def test_permanent_error_is_failed_and_visible(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine
) -> None:
    _, client = mirrored
    doctor = await create_doctor(client)
    google.missing_calendars.add(doctor["email"])
    created = (await book(client, doctor["id"], next_weekday(3), "11:00")).json()

    async def failed() -> bool:
        return (await appointment(client, created["id"]))["calendar_sync_status"] == "failed"

    await eventually(failed)
    stored = await appointment(client, created["id"])
    assert stored["status"] == "BOOKED"
    assert "404" in stored["calendar_sync_error"]
    status = (await client.get("/api/v1/sync/status")).json()["calendar"]
    assert status["jobs"]["failed"] == 1
    assert status["appointments"]["failed"] == 1
    assert status["recent_errors"][0]["aggregate_id"] == created["id"]
    inserts = [c for c in google.calls if c.action == "POST"]
    assert len(inserts) == 1  # a 404 is not retried

    google.missing_calendars.clear()
    retried = await client.post("/api/v1/sync/retry")
    assert retried.json() == {"requeued": 1}

    synced = all_synced(client, created["id"])

    await eventually(synced)
    await assert_mirror_matches(db, google)


async def test_email_change_moves_future_events(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine
) -> None:
    _, client = mirrored
    doctor = await create_doctor(client)
    created = (await book(client, doctor["id"], next_weekday(4), "12:00")).json()

    synced = all_synced(client, created["id"])

    await eventually(synced)
    await client.put(
        f"/api/v1/doctors/{doctor['id']}", json={"email": "new.address@clinic.example"}
    )
    await eventually(lambda: _has_event(google, "new.address@clinic.example"))
    await eventually(synced)
    assert google.events(doctor["email"]) == {}
    await assert_mirror_matches(db, google)


async def _has_event(google: FakeGoogle, calendar_id: str) -> bool:
    return bool(google.events(calendar_id))


async def _paused_app(
    database_url: str, google: FakeGoogle, credentials: Path
) -> tuple[FastAPI, Any, Settings]:
    settings = calendar_settings(google, credentials, dispatcher_enabled=False)
    app, lifespan = await started_app(settings, database_url)
    return app, lifespan, settings


def _dispatcher(app: FastAPI, settings: Settings, database_url: str, name: str) -> Dispatcher:
    mirror = CalendarMirror(settings, app.state.sessionmaker)
    return Dispatcher(settings, app.state.sessionmaker, database_url, [mirror], worker_id=name)


async def test_job_of_a_crashed_dispatcher_is_picked_up(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> None:
    google.reset()
    app, lifespan, settings = await _paused_app(database_url, google, credentials)
    try:
        async with client_for(app) as client:
            doctor = await create_doctor(client)
            created = (await book(client, doctor["id"], next_weekday(0), "09:00")).json()
        async with app.state.sessionmaker.begin() as session:
            held = await outbox.claim(session, "crashed", outbox.CALENDAR, 10, 0.5)
        assert [j.aggregate_id for j in held] == [uuid.UUID(created["id"])]
        survivor = _dispatcher(app, settings, database_url, "survivor")
        await survivor.run_until_idle()
        assert google.all_events() == {}  # still leased by the crashed one
        await asyncio.sleep(0.6)
        await survivor.run_until_idle()
        await assert_mirror_matches(db, google)
        async with db.connect() as conn:
            job = (
                await conn.execute(text("SELECT status, locked_by, attempts FROM outbox_jobs"))
            ).one()
        assert (job.status, job.locked_by, job.attempts) == ("done", None, 2)
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_two_dispatchers_never_deliver_one_job_twice(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> None:
    google.reset()
    app, lifespan, settings = await _paused_app(database_url, google, credentials)
    try:
        async with client_for(app) as client:
            doctors = [await create_doctor(client) for _ in range(3)]
            for doctor in doctors:
                for start in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00"):
                    assert (
                        await book(client, doctor["id"], next_weekday(1), start)
                    ).status_code == 201
        google.delay = 0.03
        first = _dispatcher(app, settings, database_url, "one")
        second = _dispatcher(app, settings, database_url, "two")
        await asyncio.gather(first.run_until_idle(), second.run_until_idle())
        inserts = Counter(c.event_id for c in google.calls if c.action == "POST")
        assert len(inserts) == 21 and set(inserts.values()) == {1}
        await assert_mirror_matches(db, google)
        async with db.connect() as conn:
            workers = (
                await conn.execute(
                    text(
                        "SELECT count(DISTINCT attempts), count(*) FROM outbox_jobs"
                        " WHERE status = 'done'"
                    )
                )
            ).one()
        assert workers == (1, 21)
    finally:
        await lifespan.__aexit__(None, None, None)


class _RolledBack(Exception):
    """Raised to roll a unit of work back."""


async def test_rolled_back_booking_never_reaches_google(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> None:
    google.reset()
    app, lifespan, settings = await _paused_app(database_url, google, credentials)
    try:
        async with client_for(app) as client:
            doctor = await create_doctor(client)
            clash = await book(client, doctor["id"], next_weekday(5), "10:00")  # a Saturday
            assert clash.status_code == 409
        clinic = Clinic(
            settings.timezone, dt.datetime.now(settings.timezone), None, calendar_enabled=True
        )
        with pytest.raises(_RolledBack):
            async with unit_of_work(app.state.sessionmaker) as session:
                # A unit of work whose transaction is already open (as when the edge has claimed
                # an Idempotency-Key): the booking joins it and goes when it rolls back.
                await session.execute(text("SELECT 1"))
                data = AppointmentCreate.model_validate(
                    booking_payload(doctor["id"], next_weekday(0), "10:00")
                )
                await booking_service.book(session, data, Caller("agent"), clinic)
                queued = await (await driver(session)).fetchval("SELECT count(*) FROM outbox_jobs")
                assert queued == 1
                async with db.connect() as conn:  # not visible outside the transaction
                    assert await conn.scalar(text("SELECT count(*) FROM outbox_jobs")) == 0
                raise _RolledBack
        await _dispatcher(app, settings, database_url, "d").run_until_idle()
        async with db.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM outbox_jobs")) == 0
            assert await conn.scalar(text("SELECT count(*) FROM appointments")) == 0
        assert google.calls == []
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_resync_command_rebuilds_a_wiped_calendar(
    mirrored: tuple[FastAPI, httpx.AsyncClient],
    google: FakeGoogle,
    db: AsyncEngine,
    database_url: str,
    credentials: Path,
) -> None:
    _, client = mirrored
    doctor = await create_doctor(client)
    ids = [
        (await book(client, doctor["id"], next_weekday(2), t)).json()["id"]
        for t in ("13:00", "13:30")
    ]

    synced_all = all_synced(client, *ids)

    await eventually(synced_all)
    with google.lock:
        google.calendars.clear()
        google.deleted.clear()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SERVICE_API_KEY": "x:resync-secret",
        "GOOGLE_CALENDAR_CREDENTIALS_PATH": str(credentials),
        "GOOGLE_CALENDAR_DELEGATED_ADMIN_EMAIL": ADMIN,
        "CLINIC_TIMEZONE": ZONE,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "resync-calendar"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "queued 2 appointments" in result.stdout
    await eventually(synced_all)
    await eventually(lambda: _has_event(google, doctor["email"]))
    await eventually(synced_all)
    await assert_mirror_matches(db, google)


async def test_notify_wakes_the_dispatcher_without_polling(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> None:
    google.reset()
    settings = calendar_settings(google, credentials, dispatcher_poll_seconds=300)
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app) as client:
            await asyncio.sleep(0.5)  # let the listener connect
            doctor = await create_doctor(client)
            created = (await book(client, doctor["id"], next_weekday(0), "14:00")).json()

            synced = all_synced(client, created["id"])

            await eventually(synced, within=5)
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_timed_out_create_is_not_duplicated(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> None:
    google.reset()
    settings = calendar_settings(google, credentials, google_calendar_timeout_seconds=0.3)
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app) as client:
            doctor = await create_doctor(client)
            google.delay = 0.6  # Google applies the insert, but the answer comes too late
            created = (await book(client, doctor["id"], next_weekday(0), "15:00")).json()
            await eventually(lambda: _has_event(google, doctor["email"]))
            google.delay = 0

            synced = all_synced(client, created["id"])

            await eventually(synced)
        inserts = [c for c in google.calls if c.action == "POST"]
        assert len(inserts) >= 2 and inserts[-1].status == 409  # the retry met its own event
        await assert_mirror_matches(db, google)
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_email_change_without_move_leaves_no_stray_event(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine
) -> None:
    _, client = mirrored
    google.no_move = True
    doctor = await create_doctor(client)
    created = (await book(client, doctor["id"], next_weekday(4), "12:30")).json()

    synced = all_synced(client, created["id"])

    await eventually(synced)
    await client.put(f"/api/v1/doctors/{doctor['id']}", json={"email": "moved@clinic.example"})
    await eventually(lambda: _has_event(google, "moved@clinic.example"))
    await eventually(synced)
    assert google.events(doctor["email"]) == {}
    await assert_mirror_matches(db, google)


async def test_holds_never_reach_google_only_their_bookings_do(
    mirrored: tuple[FastAPI, httpx.AsyncClient], google: FakeGoogle, db: AsyncEngine
) -> None:
    """Holds made, released and left to run queue nothing for any mirror; booking through a
    hold queues the appointment's event, as any booking does."""
    _, client = mirrored
    doctor = await create_doctor(client)
    day = next_weekday(2)
    held = []
    for start in ("09:00", "10:00", "11:00"):
        response = await client.post(
            "/api/v1/holds/",
            json={"doctor_id": doctor["id"], "date": str(day), "start_time": start},
        )
        assert response.status_code == 201, response.text
        held.append(response.json()["id"])
    assert (await client.delete(f"/api/v1/holds/{held[1]}")).status_code == 204
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM outbox_jobs")) == 0

    booked = await client.post(
        "/api/v1/appointments/",
        json={"hold_id": held[0], "source": "AI_CALLING_AGENT", "patient": patient_payload()},
    )
    assert booked.status_code == 201, booked.text
    await eventually(all_synced(client, booked.json()["id"]))
    async with db.connect() as conn:
        targets = (await conn.execute(text("SELECT target, aggregate_id FROM outbox_jobs"))).all()
    assert [(t, str(a)) for t, a in targets] == [("calendar", booked.json()["id"])]
    assert list(google.all_events()) == [event_id_for(uuid.UUID(booked.json()["id"]))]
