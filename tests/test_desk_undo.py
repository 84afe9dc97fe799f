"""Undoing a front desk step (spec: "Front desk, second round"): a check-in or no-show taken
back on its date to the status before it, every other case refused, a no-show's time given
away meanwhile refused with the booking's 409, the audit trail, the reminders the step voided,
no webhook message, who may undo, and an undo racing bookings of the freed time."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.services.webhooks.events import WebhookEvent
from tests.clock import Clock
from tests.conftest import OTHER_KEY, client_for, make_settings, started_app
from tests.factories import book, create_doctor, next_weekday
from tests.test_webhooks_api import AGENT_KEY, PUBLIC_URL, READONLY_KEY, webhook_settings

APPOINTMENTS = "/api/v1/appointments"


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    app, lifespan = await started_app(webhook_settings(), database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, OTHER_KEY) as client:
        yield client


async def booked(
    client: httpx.AsyncClient, doctor: str, day: dt.date, start: str, **kw: Any
) -> dict[str, Any]:
    response = await book(client, doctor, day, start, **kw)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def post(client: httpx.AsyncClient, appointment: str, name: str) -> httpx.Response:
    return await client.post(f"{APPOINTMENTS}/{appointment}/{name}")


def state_refused(response: httpx.Response, sentence: str) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "invalid_state"
    assert sentence in response.json()["detail"]


async def test_a_check_in_is_undone_to_the_status_before_it_and_audited(
    admin: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(admin))["id"]
    day = next_weekday(0)
    plain = await booked(admin, doctor, day, "10:00")
    moved = await booked(admin, doctor, day, "11:00")
    assert (
        await admin.put(
            f"{APPOINTMENTS}/{moved['id']}/reschedule",
            json={"date": day.isoformat(), "start_time": "11:30"},
        )
    ).status_code == 200

    clock.set(day, "09:45")
    for visit, was in ((plain, "BOOKED"), (moved, "RESCHEDULED")):
        assert (await post(admin, visit["id"], "check-in")).json()["status"] == "CHECKED_IN"
        undone = await admin.post(
            f"{APPOINTMENTS}/{visit['id']}/undo", headers={"X-Correlation-ID": "desk-7"}
        )
        assert undone.status_code == 200, undone.text
        assert undone.json()["status"] == was
        assert undone.json() == (await admin.get(f"{APPOINTMENTS}/{visit['id']}")).json()
        # Nothing left to undo: the visit is upcoming again, and may be checked in again.
        state_refused(await post(admin, visit["id"], "undo"), "Only a check-in or a no-show")
        events = (await admin.get(f"{APPOINTMENTS}/{visit['id']}/events")).json()
        last = events[-1]
        assert last["action"] == "undo"
        assert last["before"]["status"] == "CHECKED_IN" and last["after"]["status"] == was
        assert last["actor"] == "desk" and last["correlation_id"] == "desk-7"
    again = await post(admin, plain["id"], "check-in")
    assert again.json()["status"] == "CHECKED_IN"


async def test_only_a_check_in_or_no_show_on_its_date_is_undone(
    admin: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(admin))["id"]
    day = next_weekday(1)
    done = await booked(admin, doctor, day, "09:00")
    cancelled = await booked(admin, doctor, day, "10:00")
    upcoming = await booked(admin, doctor, day, "11:00")
    yesterday = await booked(admin, doctor, day, "12:00")
    assert (await admin.delete(f"{APPOINTMENTS}/{cancelled['id']}")).status_code == 200

    clock.set(day, "12:10")
    await post(admin, done["id"], "check-in")
    await post(admin, done["id"], "complete")
    await post(admin, yesterday["id"], "no-show")
    state_refused(await post(admin, done["id"], "undo"), "this appointment is completed")
    state_refused(await post(admin, cancelled["id"], "undo"), "this appointment is cancelled")
    state_refused(await post(admin, upcoming["id"], "undo"), "this appointment is booked")

    clock.set(day + dt.timedelta(days=1), "08:00")
    state_refused(await post(admin, yesterday["id"], "undo"), "only on the appointment's date")
    assert (await admin.get(f"{APPOINTMENTS}/{yesterday['id']}")).json()["status"] == "NO_SHOW"

    missing = await post(admin, "00000000-0000-4000-8000-000000000000", "undo")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert (await post(admin, "not-an-id", "undo")).status_code == 400


async def test_undoing_a_no_show_keeps_its_reminders_void_and_sends_no_message(
    admin: httpx.AsyncClient, connection: AsyncConnection, clock: Clock
) -> None:
    appointment_events = [str(e) for e in WebhookEvent if e.startswith("appointment.")]
    created = await admin.post(
        "/api/v1/webhooks/", json={"url": PUBLIC_URL, "events": appointment_events}
    )
    assert created.status_code == 201, created.text
    doctor = (await create_doctor(admin, buffer_minutes=15))["id"]
    day = next_weekday(2)
    visit = await booked(admin, doctor, day, "15:00")
    planned = (await admin.get(f"{APPOINTMENTS}/{visit['id']}/reminders")).json()
    assert planned and {r["status"] for r in planned} == {"scheduled"}

    clock.set(day, "15:10")
    assert (await post(admin, visit["id"], "no-show")).json()["status"] == "NO_SHOW"
    voided = (await admin.get(f"{APPOINTMENTS}/{visit['id']}/reminders")).json()
    assert {r["status"] for r in voided} == {"void"}

    async def messages() -> list[str]:
        rows = await connection.execute(text("SELECT event FROM webhook_deliveries ORDER BY event"))
        return list(rows.scalars())

    sent_before = await messages()
    assert sent_before == ["appointment.booked", "appointment.no_show"]  # by name
    undone = await post(admin, visit["id"], "undo")
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "BOOKED"
    assert await messages() == sent_before
    after = (await admin.get(f"{APPOINTMENTS}/{visit['id']}/reminders")).json()
    assert after == voided
    # The visit holds its time again: a booking 15 minutes after it is inside the buffer.
    taken = await book(admin, doctor, day, "15:30")
    assert taken.status_code == 409 and taken.json()["reason"] == "taken"


async def test_a_no_show_whose_time_was_given_away_is_not_undone(
    admin: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(admin, buffer_minutes=30, slot_duration_minutes=30))["id"]
    day = next_weekday(3)
    taken_over = await booked(admin, doctor, day, "10:00")
    held_over = await booked(admin, doctor, day, "13:00")
    clock.set(day, "10:05")
    await post(admin, taken_over["id"], "no-show")
    # 10:30 is closer than the buffer to the no-show's 10:00-10:30.
    walk_in = await booked(admin, doctor, day, "11:00")
    assert walk_in["status"] == "BOOKED"
    moved_in = await admin.put(
        f"{APPOINTMENTS}/{walk_in['id']}/reschedule",
        json={"date": day.isoformat(), "start_time": "10:30"},
    )
    assert moved_in.status_code == 200, moved_in.text

    refused = await post(admin, taken_over["id"], "undo")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "slot_unavailable" and body["reason"] == "taken"
    assert body["alternatives"], body
    assert body["alternatives"] == sorted(
        body["alternatives"], key=lambda a: (a["date"], a["start_time"])
    )
    assert (await admin.get(f"{APPOINTMENTS}/{taken_over['id']}")).json()["status"] == "NO_SHOW"
    events = (await admin.get(f"{APPOINTMENTS}/{taken_over['id']}/events")).json()
    assert [e["action"] for e in events] == ["created", "no_show"]

    clock.set(day, "13:05")
    await post(admin, held_over["id"], "no-show")
    hold = await admin.post(
        "/api/v1/holds/",
        json={"doctor_id": doctor, "date": day.isoformat(), "start_time": "13:30"},
    )
    assert hold.status_code == 201, hold.text
    held = await post(admin, held_over["id"], "undo")
    assert held.status_code == 409 and held.json()["reason"] == "held"
    # Once the hold is released the time is free again, and the no-show is undone.
    assert (await admin.delete(f"/api/v1/holds/{hold.json()['id']}")).status_code == 204
    undone = await post(admin, held_over["id"], "undo")
    assert undone.status_code == 200 and undone.json()["status"] == "BOOKED"


async def test_only_an_admin_undoes(app: FastAPI, admin: httpx.AsyncClient, clock: Clock) -> None:
    doctor = (await create_doctor(admin))["id"]
    day = next_weekday(4)
    visit = await booked(admin, doctor, day, "09:00")
    clock.set(day, "08:50")
    await post(admin, visit["id"], "check-in")
    for key in (AGENT_KEY, READONLY_KEY):
        async with client_for(app, key) as other:
            forbidden = await post(other, visit["id"], "undo")
            assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    assert (await admin.get(f"{APPOINTMENTS}/{visit['id']}")).json()["status"] == "CHECKED_IN"


OVERLAPPING_ACTIVE = text(
    """
    SELECT count(*) FROM appointments a
      JOIN appointments b ON a.doctor_id = b.doctor_id AND a.id < b.id AND a.date = b.date
      JOIN doctors d ON d.id = a.doctor_id
     WHERE a.status IN ('BOOKED', 'RESCHEDULED', 'CHECKED_IN', 'COMPLETED')
       AND b.status IN ('BOOKED', 'RESCHEDULED', 'CHECKED_IN', 'COMPLETED')
       AND a.start_time < b.end_time + make_interval(mins => d.buffer_minutes)
       AND b.start_time < a.end_time + make_interval(mins => d.buffer_minutes)
    """
)


async def test_an_undo_racing_bookings_of_the_freed_time_leaves_one_winner(
    committed: AsyncEngine, committed_client: httpx.AsyncClient, database_url: str, clock: Clock
) -> None:
    """Each round: a long visit marked a no-show, then at once its undo (from one app) and
    bookings of the slot its time covers (from another app on its own pool): either the undo
    or one booking wins, never both, and the day never holds two visits too close."""
    client = committed_client
    visit_type = await client.post(
        "/api/v1/visit-types/", json={"name": "Long consultation", "duration_minutes": 60}
    )
    assert visit_type.status_code == 201, visit_type.text
    long_visit = visit_type.json()["id"]
    doctor = (await create_doctor(client, slot_duration_minutes=30, visit_type_ids=[long_visit]))[
        "id"
    ]
    day = next_weekday(0)
    starts = ("09:00", "11:00", "13:00", "15:00")
    visits = [await booked(client, doctor, day, s, visit_type_id=long_visit) for s in starts]
    other_app, lifespan = await started_app(make_settings(), database_url)
    winners: list[str] = []
    try:
        async with client_for(other_app) as other:
            for visit, start in zip(visits, starts, strict=True):
                hour = int(start[:2])
                clock.set(day, f"{hour:02d}:10")
                assert (await post(client, visit["id"], "no-show")).status_code == 200
                # The second half hour of the no-show's 60 minutes, still to come.
                freed = f"{hour:02d}:30"
                answers = await asyncio.gather(
                    post(client, visit["id"], "undo"),
                    *(book(other, doctor, day, freed) for _ in range(3)),
                )
                undo, bookings = answers[0], answers[1:]
                assert undo.status_code in (200, 409), undo.text
                assert {b.status_code for b in bookings} <= {201, 409}
                booked_now = [b for b in bookings if b.status_code == 201]
                assert (undo.status_code == 200) != bool(booked_now), [a.text for a in answers]
                assert len(booked_now) <= 1
                if undo.status_code == 409:
                    assert undo.json()["reason"] == "taken"
                    winners.append("booking")
                else:
                    assert {b.json()["reason"] for b in bookings} == {"taken"}
                    winners.append("undo")
                async with committed.connect() as conn:
                    assert (await conn.execute(OVERLAPPING_ACTIVE)).scalar_one() == 0
    finally:
        await lifespan.__aexit__(None, None, None)
    assert len(winners) == len(starts)
