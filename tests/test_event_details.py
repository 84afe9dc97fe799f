"""GOOGLE_CALENDAR_EVENT_DETAILS: what of the patient each setting lets reach Google, through
the real Google client against the fake Google, and how a change of the setting reaches the
events already written."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import EventDetails, SettingsError, load_settings
from app.models.enums import AppointmentStatus
from app.services.google_calendar.client import event_id_for
from app.services.google_calendar_service import event_body
from tests.clock import Clock
from tests.conftest import client_for, started_app
from tests.factories import book, create_doctor, next_weekday
from tests.fake_google import ADMIN, FakeGoogle
from tests.test_calendar_mirror import (
    ZONE,
    all_synced,
    assert_mirror_matches,
    calendar_settings,
    eventually,
)

PATIENT = {
    "name": "Meera Iyer",
    "mobile_number": "+91 98765 43210",
    "email": "meera.iyer@mail.example",
}
E164 = "+919876543210"
LEVELS: tuple[EventDetails, ...] = ("full", "name", "none")
# What of the patient each setting lets through; the e-mail never reaches Google.
SHOWN: dict[str, set[str]] = {
    "full": {"name", "mobile", "patient_id"},
    "name": {"name", "patient_id"},
    "none": set(),
}


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def credentials(google: FakeGoogle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return google.write_credentials(tmp_path_factory.mktemp("google"))


@asynccontextmanager
async def serving(
    database_url: str, google: FakeGoogle, credentials: Path, details: EventDetails
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with its dispatcher, as started with this setting."""
    settings = calendar_settings(google, credentials, google_calendar_event_details=details)
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app) as client:
            yield client
    finally:
        await lifespan.__aexit__(None, None, None)


def traces(
    event: dict[str, Any], patient_id: str, e164: str = E164, email: str = PATIENT["email"]
) -> set[str]:
    """Which of the patient's data the whole event carries, anywhere in it."""
    dumped = json.dumps(event)
    found = {
        "name": any(part in dumped for part in ("Meera", "Iyer")),
        "mobile": e164 in dumped or e164.removeprefix("+91") in dumped,
        "email": email in dumped or email.split("@")[0] in dumped,
        "patient_id": patient_id in dumped,
    }
    return {what for what, present in found.items() if present}


def event_of(google: FakeGoogle, doctor: dict[str, Any], appointment_id: str) -> dict[str, Any]:
    return google.events(doctor["email"])[event_id_for(uuid.UUID(appointment_id))]


async def resync(database_url: str, credentials: Path, *args: str) -> str:
    """`python -m app resync-calendar`, run as an operator would, under `none`."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SERVICE_API_KEY": "x:resync-secret",
        "GOOGLE_CALENDAR_CREDENTIALS_PATH": str(credentials),
        "GOOGLE_CALENDAR_DELEGATED_ADMIN_EMAIL": ADMIN,
        "GOOGLE_CALENDAR_EVENT_DETAILS": "none",
        "CLINIC_TIMEZONE": ZONE,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "resync-calendar", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("details", LEVELS)
async def test_each_setting_sends_only_what_it_allows(
    details: EventDetails, db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> None:
    google.reset()
    async with serving(database_url, google, credentials, details) as client:
        visit_type = (
            await client.post(
                "/api/v1/visit-types/", json={"name": "Diabetes review", "duration_minutes": 30}
            )
        ).json()
        doctor = await create_doctor(client, visit_type_ids=[visit_type["id"]])
        booked = await book(
            client,
            doctor["id"],
            next_weekday(0),
            "10:00",
            patient=PATIENT,
            visit_type_id=visit_type["id"],
        )
        assert booked.status_code == 201, booked.text
        appointment_id, patient_id = booked.json()["id"], booked.json()["patient_id"]
        await eventually(all_synced(client, appointment_id))

    event = event_of(google, doctor, appointment_id)
    assert traces(event, patient_id) == SHOWN[details]
    assert event["extendedProperties"]["private"]["appointment_id"] == appointment_id
    assert f"Appointment id: {appointment_id}" in event["description"]
    assert "Time: 10:00-10:30" in event["description"]
    if details == "none":
        assert event["summary"] == "Appointment"
        assert "Booked via: AI_CALLING_AGENT" in event["description"]
        assert "clinic's booking system" in event["description"]
    else:
        assert event["summary"] == "Diabetes review: Meera Iyer"


async def test_a_changed_setting_reaches_the_next_update(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path
) -> None:
    google.reset()
    day = next_weekday(1)
    async with serving(database_url, google, credentials, "full") as client:
        doctor = await create_doctor(client)
        booked = (await book(client, doctor["id"], day, "10:00", patient=PATIENT)).json()
        await eventually(all_synced(client, booked["id"]))
    assert traces(event_of(google, doctor, booked["id"]), booked["patient_id"]) == SHOWN["full"]

    async with serving(database_url, google, credentials, "none") as client:
        moved = await client.put(
            f"/api/v1/appointments/{booked['id']}/reschedule",
            json={"date": day.isoformat(), "start_time": "14:00"},
        )
        assert moved.status_code == 200, moved.text
        await eventually(all_synced(client, booked["id"]))

    event = event_of(google, doctor, booked["id"])
    assert event["start"]["dateTime"] == f"{day}T14:00:00"
    assert event["summary"] == "Appointment"
    assert traces(event, booked["patient_id"]) == set()
    # Sent as null, which is how a patch deletes a private property in Google.
    private = event["extendedProperties"]["private"]
    assert private == {"appointment_id": booked["id"], "patient_id": None}
    await assert_mirror_matches(db, google)


async def test_status_markers_stay_in_front_of_a_bare_appointment(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path, clock: Clock
) -> None:
    google.reset()
    day = next_weekday(3)
    async with serving(database_url, google, credentials, "none") as client:
        doctor = await create_doctor(client)
        seen, missed = [
            (await book(client, doctor["id"], day, t)).json()["id"] for t in ("09:00", "11:00")
        ]
        clock.set(day, "11:10")
        assert (await client.post(f"/api/v1/appointments/{seen}/check-in")).status_code == 200
        assert (await client.post(f"/api/v1/appointments/{missed}/no-show")).status_code == 200
        await eventually(all_synced(client, seen, missed))
    assert event_of(google, doctor, seen)["summary"] == "Checked in - Appointment"
    assert event_of(google, doctor, missed)["summary"] == "No-show - Appointment"


async def test_resync_rewrites_events_written_under_an_earlier_setting(
    db: AsyncEngine, database_url: str, google: FakeGoogle, credentials: Path, clock: Clock
) -> None:
    google.reset()
    first_day = next_weekday(0)
    later_day = first_day + dt.timedelta(days=2)
    people = [
        {**PATIENT, "mobile_number": f"+91 98765 4321{i}", "email": f"meera.iyer{i}@mail.example"}
        for i in range(3)
    ]
    async with serving(database_url, google, credentials, "full") as client:
        doctor = await create_doctor(client)
        slots = ((first_day, "10:00"), (first_day, "11:00"), (later_day, "10:00"))
        booked = [
            (await book(client, doctor["id"], day, start, patient=person)).json()
            for (day, start), person in zip(slots, people, strict=True)
        ]
        clock.set(first_day, "11:10")
        no_show = booked[1]["id"]
        assert (await client.post(f"/api/v1/appointments/{no_show}/no-show")).status_code == 200
        ids = [b["id"] for b in booked]
        await eventually(all_synced(client, *ids))

    def names_left() -> set[str]:
        return {
            b["id"]
            for b in booked
            if "name" in traces(event_of(google, doctor, b["id"]), b["patient_id"])
        }

    assert names_left() == set(ids)

    async with serving(database_url, google, credentials, "none") as client:
        # The restart alone rewrites nothing: the events change when they are next written.
        await asyncio.sleep(0.5)
        assert names_left() == set(ids)

        later = await resync(database_url, credentials, "--from", later_day.isoformat())
        assert "queued 1 appointments" in later

        async def only_earlier_named() -> bool:
            return names_left() == {ids[0], no_show}

        await eventually(only_earlier_named)

        assert "queued 3 appointments" in await resync(database_url, credentials)

        async def none_named() -> bool:
            return not names_left()

        await eventually(none_named)
        await eventually(all_synced(client, *ids))

    for b, person in zip(booked, people, strict=True):
        event = event_of(google, doctor, b["id"])
        e164 = "+91" + person["mobile_number"].removeprefix("+91").replace(" ", "")
        assert traces(event, b["patient_id"], e164, person["email"]) == set()
        assert event["extendedProperties"]["private"]["appointment_id"] == b["id"]
    missed = event_of(google, doctor, no_show)
    assert (missed["summary"], missed["transparency"]) == ("No-show - Appointment", "transparent")
    await assert_mirror_matches(db, google)


def _google_patch(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Google's documented patch semantics (the fake replaces top-level fields instead):
    objects merge recursively, a null deletes, anything else replaces."""
    merged = dict(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _google_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.mark.parametrize(
    ("before", "after"), [("full", "name"), ("full", "none"), ("name", "none")]
)
def test_a_patch_under_a_narrower_setting_leaves_nothing_behind_in_google(
    before: EventDetails, after: EventDetails
) -> None:
    patient_id = uuid.uuid4()
    row: Any = SimpleNamespace(
        id=uuid.uuid4(),
        date=dt.date(2030, 1, 7),
        start_time=dt.time(10),
        end_time=dt.time(10, 30),
        status=AppointmentStatus.BOOKED,
        source="ADMIN",
        patient_id=patient_id,
        patient_name="Meera Iyer",
        mobile_number=E164,
        visit_type_name=None,
    )
    stored = event_body(row, ZONE, before)
    assert traces(stored, str(patient_id)) == SHOWN[before]
    assert (
        traces(_google_patch(stored, event_body(row, ZONE, after)), str(patient_id))
        == (SHOWN[after])
    )
    # The body decides by the setting, not by what the row happens to carry.
    assert traces(event_body(row, ZONE, after), str(patient_id)) == SHOWN[after]


def test_an_unknown_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("GOOGLE_CALENDAR_EVENT_DETAILS", raising=False)
    assert load_settings().google_calendar_event_details == "full"
    for level in LEVELS:
        monkeypatch.setenv("GOOGLE_CALENDAR_EVENT_DETAILS", level)
        assert load_settings().google_calendar_event_details == level

    monkeypatch.setenv("GOOGLE_CALENDAR_EVENT_DETAILS", "partial")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == (
        "invalid setting GOOGLE_CALENDAR_EVENT_DETAILS: Input should be 'full', 'name' or 'none'"
    )
    started = subprocess.run(
        [sys.executable, "-m", "app", "resync-calendar"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert started.stderr.strip().splitlines() == [str(refused.value)]
