"""A visit moved to another doctor ("Can I see another cardiologist instead?"): on that
doctor's grid, keeping its length; the old slot freed; the trail shows both doctors; the
Google event leaves the old doctor's calendar for the new one's (real client, fake Google)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.services.google_calendar.client import event_id_for
from tests.conftest import client_for, started_app
from tests.factories import book, create_doctor, next_weekday
from tests.fake_google import FakeGoogle
from tests.test_calendar_mirror import all_synced, assert_mirror_matches, calendar_settings
from tests.test_calendar_mirror import eventually as eventually_true

API = "/api/v1"


async def move(
    client: httpx.AsyncClient, appointment_id: str, day: dt.date, start: str, **extra: Any
) -> httpx.Response:
    return await client.put(
        f"{API}/appointments/{appointment_id}/reschedule",
        json={"date": day.isoformat(), "start_time": start, **extra},
    )


async def free_starts(client: httpx.AsyncClient, doctor_id: str, day: dt.date) -> list[str]:
    response = await client.get(
        f"{API}/appointments/availability/{doctor_id}", params={"date": day.isoformat()}
    )
    return [s["start_time"] for s in response.json()["days"][0]["slots"]]


async def test_a_visit_moves_to_another_doctor_keeping_its_length(
    client: httpx.AsyncClient,
) -> None:
    first = await create_doctor(client, name="Dr Asha Rao", slot_duration_minutes=30)
    other = await create_doctor(client, name="Dr Meera Iyer", slot_duration_minutes=20)
    day = next_weekday(1)
    booked = (await book(client, first["id"], day, "10:00")).json()

    # 30 minutes on a 20-minute grid: 09:40 is a start of Dr Iyer's grid; 09:45 is not.
    off_grid = await move(client, booked["id"], day, "09:45", doctor_id=other["id"])
    assert off_grid.status_code == 409 and off_grid.json()["reason"] == "outside_hours"
    moved = await move(client, booked["id"], day, "09:40", doctor_id=other["id"])
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["id"], body["doctor_id"], body["status"]) == (
        booked["id"],
        other["id"],
        "RESCHEDULED",
    )
    assert (body["start_time"], body["end_time"]) == ("09:40", "10:10")

    assert "10:00" in await free_starts(client, first["id"], day)  # the old slot is free
    assert "09:40" not in await free_starts(client, other["id"], day)
    assert "10:00" not in await free_starts(client, other["id"], day)  # 10:10 ends the visit

    events = (await client.get(f"{API}/appointments/{booked['id']}/events")).json()
    assert [e["action"] for e in events] == ["created", "rescheduled"]
    assert events[0]["after"]["doctor_id"] == first["id"]
    assert (events[1]["before"]["doctor_id"], events[1]["after"]["doctor_id"]) == (
        first["id"],
        other["id"],
    )
    assert (events[1]["before"]["start_time"], events[1]["after"]["start_time"]) == (
        "10:00",
        "09:40",
    )

    listed = await client.get(f"{API}/appointments/doctor/{other['id']}")
    assert [a["id"] for a in listed.json()] == [booked["id"]]
    assert (await client.get(f"{API}/appointments/doctor/{first['id']}")).json() == []


async def test_the_same_doctor_named_is_an_ordinary_move(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(2)
    booked = (await book(client, doctor["id"], day, "10:00")).json()
    moved = await move(client, booked["id"], day, "11:00", doctor_id=doctor["id"])
    assert (moved.status_code, moved.json()["start_time"]) == (200, "11:00")
    still = await move(client, booked["id"], day, "11:00", doctor_id=doctor["id"])
    assert still.status_code == 200 and still.json()["updated_at"] == moved.json()["updated_at"]


async def test_a_doctor_without_the_visit_type_or_unknown_is_refused(
    client: httpx.AsyncClient,
) -> None:
    consultation = (
        await client.post(
            f"{API}/visit-types/", json={"name": "Long consultation", "duration_minutes": 60}
        )
    ).json()
    offers = await create_doctor(client, visit_type_ids=[consultation["id"]])
    does_not = await create_doctor(client)
    also_offers = await create_doctor(
        client, visit_type_ids=[consultation["id"]], slot_duration_minutes=15
    )
    day = next_weekday(3)
    booked = await book(client, offers["id"], day, "10:00", visit_type_id=consultation["id"])
    appointment = booked.json()

    refused = await move(client, appointment["id"], day, "10:00", doctor_id=does_not["id"])
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == ["doctor_id"]
    unknown = await move(client, appointment["id"], day, "10:00", doctor_id=str(uuid.uuid4()))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    malformed = await move(client, appointment["id"], day, "10:00", doctor_id="nobody")
    assert [e["field"] for e in malformed.json()["errors"]] == ["doctor_id"]
    unchanged = (await client.get(f"{API}/appointments/{appointment['id']}")).json()
    assert (unchanged["doctor_id"], unchanged["status"]) == (offers["id"], "BOOKED")

    moved = await move(client, appointment["id"], day, "10:15", doctor_id=also_offers["id"])
    assert moved.status_code == 200, moved.text
    assert (moved.json()["end_time"], moved.json()["visit_type_id"]) == (
        "11:15",
        consultation["id"],
    )


async def test_a_taken_slot_of_the_other_doctor_is_refused_with_theirs(
    client: httpx.AsyncClient,
) -> None:
    first = await create_doctor(client)
    other = await create_doctor(client)
    day = next_weekday(4)
    booked = (await book(client, first["id"], day, "10:00")).json()
    assert (await book(client, other["id"], day, "11:00")).status_code == 201
    taken = await move(client, booked["id"], day, "11:00", doctor_id=other["id"])
    assert taken.status_code == 409
    assert (taken.json()["code"], taken.json()["reason"]) == ("slot_unavailable", "taken")
    assert "11:00" not in [a["start_time"] for a in taken.json()["alternatives"]]
    inactive = await create_doctor(client, is_active=False)
    closed = await move(client, booked["id"], day, "10:00", doctor_id=inactive["id"])
    assert (closed.status_code, closed.json()["reason"]) == (409, "doctor_inactive")


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def credentials(google: FakeGoogle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return google.write_credentials(tmp_path_factory.mktemp("google"))


@pytest.fixture
async def mirrored(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> AsyncIterator[httpx.AsyncClient]:
    google.reset()
    app: FastAPI
    app, lifespan = await started_app(calendar_settings(google, credentials), database_url)
    async with client_for(app) as client:
        yield client
    await lifespan.__aexit__(None, None, None)


@pytest.mark.parametrize("can_move", [True, False], ids=["events.move", "delete-and-insert"])
async def test_the_google_event_moves_to_the_new_doctors_calendar(
    mirrored: httpx.AsyncClient, google: FakeGoogle, db: AsyncEngine, can_move: bool
) -> None:
    client = mirrored
    google.no_move = not can_move
    first = await create_doctor(client)
    other = await create_doctor(client)
    day = next_weekday(1)
    booked = (await book(client, first["id"], day, "10:00")).json()
    event_id = event_id_for(uuid.UUID(booked["id"]))
    synced = all_synced(client, booked["id"])
    await eventually_true(synced)
    assert event_id in google.events(first["email"])

    moved = await move(client, booked["id"], day, "14:00", doctor_id=other["id"])
    assert moved.status_code == 200, moved.text
    await eventually_true(lambda: _has(google, other["email"], event_id))
    await eventually_true(synced)
    assert google.events(first["email"]) == {}
    event = google.events(other["email"])[event_id]
    assert event["start"]["dateTime"] == f"{day}T14:00:00"
    await assert_mirror_matches(db, google)


async def _has(google: FakeGoogle, calendar_id: str, event_id: str) -> bool:
    return event_id in google.events(calendar_id)
