"""A series' occurrences leave the service one by one, as single bookings do: each its own Google
event (through the real client against the fake Google), at the series' wall-clock time across
both daylight-saving changes; each its own `appointment.booked` and `appointment.cancelled`
message, delivered to a receiver on loopback and verified with `standardwebhooks`. Committed
mode: the dispatcher reads what the requests committed."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from app.services.google_calendar.client import event_id_for
from tests.conftest import client_for, started_app
from tests.factories import create_doctor, next_weekday, patient_payload
from tests.fake_google import FakeGoogle
from tests.fake_receiver import Receiver
from tests.test_calendar_mirror import all_synced, calendar_settings, eventually
from tests.test_webhook_delivery import drain, endpoint
from tests.webhook_harness import Made

SERIES = "/api/v1/appointments/series"
BERLIN = "Europe/Berlin"


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def credentials(google: FakeGoogle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return google.write_credentials(tmp_path_factory.mktemp("google"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.stop()


def _series(doctor_id: str, start: dt.date, count: int) -> dict[str, Any]:
    return {
        "doctor_id": doctor_id,
        "start_date": start.isoformat(),
        "start_time": "10:00",
        "source": "ADMIN",
        "patient": patient_payload(),
        "recurrence": {"frequency": "weekly", "count": count},
    }


async def test_a_weekly_series_across_both_clock_changes_keeps_its_wall_clock_time(
    db: AsyncEngine,
    database_url: str,
    google: FakeGoogle,
    credentials: Path,
) -> None:
    google.reset()
    settings = calendar_settings(google, credentials, clinic_timezone=BERLIN)
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app) as client:
            doctor = await create_doctor(client)
            start = next_weekday(0)
            # 52 Mondays: a year, so both the spring and the autumn change fall inside it.
            response = await client.post(SERIES, json=_series(doctor["id"], start, 52))
            assert response.status_code == 201, response.text
            booked = response.json()["appointments"]
            assert len(booked) == 52
            assert {a["start_time"] for a in booked} == {"10:00"}
            zone = ZoneInfo(BERLIN)
            instants = [
                dt.datetime.combine(dt.date.fromisoformat(a["date"]), dt.time(10), tzinfo=zone)
                for a in booked
            ]
            # The same wall-clock time is two different UTC hours across the year.
            assert {i.utcoffset() for i in instants} == {
                dt.timedelta(hours=1),
                dt.timedelta(hours=2),
            }
            assert {i.astimezone(dt.UTC).hour for i in instants} == {8, 9}

            await eventually(all_synced(client, *(a["id"] for a in booked)), within=60)
            events = google.events(doctor["email"])
            assert set(events) == {event_id_for(uuid.UUID(a["id"])) for a in booked}
            for appointment in booked:
                event = events[event_id_for(uuid.UUID(appointment["id"]))]
                assert event["start"] == {
                    "dateTime": f"{appointment['date']}T10:00:00",
                    "timeZone": BERLIN,
                }
                assert event["end"]["dateTime"] == f"{appointment['date']}T10:30:00"
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_each_occurrence_sends_its_own_booked_and_cancelled_messages(
    service: Made, receiver: Receiver, database_url: str
) -> None:
    app, client, settings = await service()
    hook = await endpoint(client, receiver.url, "appointment.booked", "appointment.cancelled")
    doctor = await create_doctor(client)
    made = await client.post(SERIES, json=_series(doctor["id"], next_weekday(1), 3))
    assert made.status_code == 201, made.text
    series = made.json()
    ids = [a["id"] for a in series["appointments"]]
    await drain(app, settings, database_url)

    cancelled = await client.delete(f"{SERIES}/{series['series_id']}")
    assert cancelled.json()["cancelled"] == ids
    await drain(app, settings, database_url)

    messages = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in receiver.received()]
    assert len({r.message_id for r in receiver.received()}) == 6
    by_type: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        by_type.setdefault(message["type"], []).append(message["data"]["appointment"])
    for event, status in (("appointment.booked", "BOOKED"), ("appointment.cancelled", "CANCELLED")):
        sent = sorted(by_type[event], key=lambda a: a["date"])
        assert [a["id"] for a in sent] == ids
        assert {(a["status"], a["series_id"]) for a in sent} == {(status, series["series_id"])}
    assert json.loads(receiver.received()[0].body)["data"]["doctor"]["id"] == doctor["id"]
