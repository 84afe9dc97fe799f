"""Confirmations (spec: "Confirmations and reminders"): the fields, `POST .../confirm` (once,
and only for an upcoming visit), `"confirmed": true` on a booking and a reschedule, a
reschedule without it, the audit trail, the list filters (doctor, patient, the desk's day),
`appointment.confirmed` sent by the confirm operation only, roles, and the phone agent's two
tools (the call list written to the access log). Rollback mode."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.agent.answers import Agent
from app.agent.tools.confirmations import confirm_appointment, list_unconfirmed_appointments
from tests.clock import Clock
from tests.conftest import OTHER_KEY, client_for, started_app
from tests.factories import book, create_doctor, next_weekday
from tests.test_agent_tools import ok, refused, said
from tests.test_webhooks_api import AGENT_KEY, PUBLIC_URL, READONLY_KEY, webhook_settings


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    app, lifespan = await started_app(webhook_settings(), database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, OTHER_KEY) as client:
        yield client


@pytest.fixture
async def doctor(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await create_doctor(admin, name="Dr Asha Rao")


async def _book(
    client: httpx.AsyncClient, doctor: dict[str, Any], day: dt.date, start: str, **kw: Any
) -> dict[str, Any]:
    response = await book(client, doctor["id"], day, start, **kw)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _confirmed_messages(connection: AsyncConnection) -> list[str]:
    rows = await connection.execute(
        text(
            "SELECT data->'appointment_row'->>'id' AS id FROM webhook_deliveries"
            " WHERE event = 'appointment.confirmed'"
        )
    )
    return [row.id for row in rows]


async def test_confirming_is_once_audited_and_sends_one_message(
    admin: httpx.AsyncClient, doctor: dict[str, Any], connection: AsyncConnection
) -> None:
    await admin.post(
        "/api/v1/webhooks/", json={"url": PUBLIC_URL, "events": ["appointment.confirmed"]}
    )
    appointment = await _book(admin, doctor, next_weekday(2), "10:00")
    assert appointment["confirmation_status"] == "unconfirmed"
    assert appointment["confirmed_at"] is None

    first = await admin.post(
        f"/api/v1/appointments/{appointment['id']}/confirm",
        headers={"X-Correlation-ID": "call-17"},
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["confirmation_status"] == "confirmed"
    assert dt.datetime.fromisoformat(body["confirmed_at"]).utcoffset() is not None
    assert body["status"] == "BOOKED"
    again = await admin.post(f"/api/v1/appointments/{appointment['id']}/confirm")
    assert again.status_code == 200
    assert again.json() == body  # unchanged
    assert (await admin.get(f"/api/v1/appointments/{appointment['id']}")).json() == body

    events = (await admin.get(f"/api/v1/appointments/{appointment['id']}/events")).json()
    assert [e["action"] for e in events] == ["created", "confirmed"]
    assert events[1]["correlation_id"] == "call-17"
    assert await _confirmed_messages(connection) == [appointment["id"]]


async def test_only_an_upcoming_visit_is_confirmed(
    admin: httpx.AsyncClient, doctor: dict[str, Any], clock: Clock
) -> None:
    day = next_weekday(2)
    cancelled = await _book(admin, doctor, day, "10:00")
    await admin.delete(f"/api/v1/appointments/{cancelled['id']}")
    refused_ = await admin.post(f"/api/v1/appointments/{cancelled['id']}/confirm")
    assert refused_.status_code == 409
    assert refused_.json()["code"] == "invalid_state"

    started = await _book(admin, doctor, day, "11:00")
    clock.set(day, "11:00")
    late = await admin.post(f"/api/v1/appointments/{started['id']}/confirm")
    assert late.status_code == 409
    assert late.json()["detail"] == "An appointment that has already started cannot be confirmed."

    unknown = await admin.post(f"/api/v1/appointments/{uuid.uuid4()}/confirm")
    assert unknown.status_code == 404
    malformed = await admin.post("/api/v1/appointments/not-an-id/confirm")
    assert malformed.status_code == 400


async def test_an_agent_confirms_and_a_readonly_key_may_not(
    app: FastAPI, admin: httpx.AsyncClient, doctor: dict[str, Any]
) -> None:
    appointment = await _book(admin, doctor, next_weekday(2), "10:00")
    async with client_for(app, READONLY_KEY) as readonly:
        path = f"/api/v1/appointments/{appointment['id']}"
        assert (await readonly.post(f"{path}/confirm")).status_code == 403
        assert (await readonly.get(f"{path}/reminders")).status_code == 200
    async with client_for(app, AGENT_KEY) as agent:
        confirmed = await agent.post(f"/api/v1/appointments/{appointment['id']}/confirm")
        assert confirmed.status_code == 200


async def test_a_booking_or_a_move_the_caller_agreed_to_is_confirmed_and_a_move_without_is_not(
    admin: httpx.AsyncClient, doctor: dict[str, Any], connection: AsyncConnection
) -> None:
    await admin.post(
        "/api/v1/webhooks/",
        json={"url": PUBLIC_URL, "events": ["appointment.confirmed", "appointment.booked"]},
    )
    day = next_weekday(2)
    appointment = await _book(admin, doctor, day, "10:00", confirmed=True)
    assert appointment["confirmation_status"] == "confirmed"
    path = f"/api/v1/appointments/{appointment['id']}/reschedule"

    moved = await admin.put(path, json={"date": day.isoformat(), "start_time": "11:00"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["confirmation_status"], moved.json()["confirmed_at"]) == (
        "unconfirmed",
        None,
    )
    agreed = await admin.put(
        path, json={"date": day.isoformat(), "start_time": "12:00", "confirmed": True}
    )
    assert agreed.json()["confirmation_status"] == "confirmed"
    assert agreed.json()["confirmed_at"] is not None
    # Their own events say so; `appointment.confirmed` is the confirm operation's alone.
    assert await _confirmed_messages(connection) == []
    booked = await connection.scalar(
        text(
            "SELECT data->'appointment_row'->>'confirmation_status' FROM webhook_deliveries"
            " WHERE event = 'appointment.booked'"
        )
    )
    assert booked == "confirmed"

    wrong = await admin.put(
        path, json={"date": day.isoformat(), "start_time": "13:00", "confirmed": "perhaps"}
    )
    assert wrong.status_code == 400
    assert [e["field"] for e in wrong.json()["errors"]] == ["confirmed"]


async def test_the_lists_and_the_desk_filter_by_confirmation(
    admin: httpx.AsyncClient, doctor: dict[str, Any]
) -> None:
    day = next_weekday(2)
    yes = await _book(admin, doctor, day, "10:00", confirmed=True)
    no = await _book(admin, doctor, day, "11:00")
    for path in (
        f"/api/v1/appointments/doctor/{doctor['id']}",
        f"/api/v1/appointments/patient/{yes['patient_id']}",
    ):
        confirmed = await admin.get(path, params={"confirmation_status": "confirmed"})
        assert [a["id"] for a in confirmed.json()] == [yes["id"]]
    unconfirmed = await admin.get(
        f"/api/v1/appointments/doctor/{doctor['id']}", params={"confirmation_status": "unconfirmed"}
    )
    assert [a["id"] for a in unconfirmed.json()] == [no["id"]]
    desk = await admin.get(
        "/api/v1/desk/day", params={"date": day.isoformat(), "confirmation_status": "unconfirmed"}
    )
    (column,) = [c for c in desk.json()["doctors"] if c["doctor_id"] == doctor["id"]]
    assert [a["id"] for a in column["appointments"]] == [no["id"]]
    assert column["appointments"][0]["confirmation_status"] == "unconfirmed"
    bad = await admin.get(
        f"/api/v1/appointments/doctor/{doctor['id']}", params={"confirmation_status": "maybe"}
    )
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["confirmation_status"]


async def test_the_agent_confirms_and_gets_the_days_call_list(
    app: FastAPI, admin: httpx.AsyncClient, doctor: dict[str, Any], connection: AsyncConnection
) -> None:
    agent = Agent.of(app.state, "phone")
    day = next_weekday(2)
    later = await _book(admin, doctor, day, "11:00")
    earlier = await _book(admin, doctor, day, "09:30")
    await _book(admin, doctor, day, "10:00", confirmed=True)
    gone = await _book(admin, doctor, day, "12:00")
    await admin.delete(f"/api/v1/appointments/{gone['id']}")
    await _book(admin, doctor, day + dt.timedelta(days=1), "10:00")

    result = await list_unconfirmed_appointments(agent, day.isoformat())
    items = ok(result)["items"]
    assert [i["id"] for i in items] == [earlier["id"], later["id"]]
    patient = (await admin.get(f"/api/v1/patients/{earlier['patient_id']}")).json()
    assert items[0]["patient"] == {
        "id": patient["id"],
        "name": patient["name"],
        "mobile_number": patient["mobile_number"],
    }
    rest = (await admin.get(f"/api/v1/appointments/{earlier['id']}")).json()
    assert {k: v for k, v in items[0].items() if k != "patient"} == rest
    assert said(result) == f"2 appointments on {day:%A} {day.day} {day:%B} still to confirm."
    logged = await connection.execute(
        text("SELECT patient_id, actor, via FROM patient_access_log WHERE actor = 'phone'")
    )
    assert {(str(r.patient_id), r.actor, r.via) for r in logged} == {
        (earlier["patient_id"], "phone", "mcp list_unconfirmed_appointments"),
        (later["patient_id"], "phone", "mcp list_unconfirmed_appointments"),
    }

    confirmed = await confirm_appointment(agent, earlier["id"], call_id="call-9")
    assert ok(confirmed)["confirmation_status"] == "confirmed"
    assert said(confirmed).endswith("is confirmed.")
    remaining = ok(await list_unconfirmed_appointments(agent, day.isoformat()))["items"]
    assert [i["id"] for i in remaining] == [later["id"]]
    events = (await admin.get(f"/api/v1/appointments/{earlier['id']}/events")).json()
    assert (events[-1]["action"], events[-1]["actor"], events[-1]["correlation_id"]) == (
        "confirmed",
        "phone",
        "call-9",
    )

    assert refused(await confirm_appointment(agent, gone["id"]))["code"] == "invalid_state"
    bad_day = refused(await list_unconfirmed_appointments(agent, "tomorrow"))
    assert [e["field"] for e in bad_day["errors"]] == ["date"]
