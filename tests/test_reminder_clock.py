"""When a reminder is due, in a clinic on Europe/Berlin time: an offset is minutes of real time
before the start (so a day before a visit the morning after a clock change is an hour off
on the wall clock), across both changes of 2027, offsets longer than a day, quiet hours
crossing midnight and not, and instants at their edges ([start, end): at the start is
inside, at the end is outside) moved to the minute before the night's quiet hours began.

Through the API (booking, then GET /appointments/{id}/reminders), rollback mode."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.enums import WEEKDAYS
from tests.conftest import OTHER_KEY, client_for, started_app
from tests.factories import book, create_doctor
from tests.test_webhooks_api import webhook_settings

NIGHT = {"start": "20:00", "end": "08:00"}
# Each case: the policy, the appointment (date, start, Berlin time) and each offset's due_at.
CASES: dict[str, tuple[dict[str, Any], str, str, dict[int, str]]] = {
    "spring forward (28 March 2027)": (
        {"offsets_minutes": [2880, 1440, 180, 120], "quiet_hours": NIGHT},
        "2027-03-28",
        "10:00",
        {
            2880: "2027-03-26T09:00:00+01:00",
            1440: "2027-03-27T09:00:00+01:00",  # 24 h before 10:00 CEST is 09:00 CET
            180: "2027-03-27T19:59:00+01:00",  # 07:00 is quiet: the night began at 20:00 CET
            120: "2027-03-28T08:00:00+02:00",  # at the quiet hours' end: outside them
        },
    ),
    "fall back (31 October 2027)": (
        {"offsets_minutes": [2880, 1440, 180, 120], "quiet_hours": NIGHT},
        "2027-10-31",
        "10:00",
        {
            2880: "2027-10-29T11:00:00+02:00",
            1440: "2027-10-30T11:00:00+02:00",  # 24 h before 10:00 CET is 11:00 CEST
            180: "2027-10-30T19:59:00+02:00",  # the night began at 20:00 CEST
            120: "2027-10-31T08:00:00+01:00",
        },
    ),
    "quiet hours crossing midnight, on both sides of it": (
        {"offsets_minutes": [720, 420, 60, 30], "quiet_hours": NIGHT},
        "2027-01-05",
        "08:30",
        {
            720: "2027-01-04T19:59:00+01:00",  # 20:30 the evening before
            420: "2027-01-04T19:59:00+01:00",  # 01:30: the night began the evening before
            60: "2027-01-04T19:59:00+01:00",  # 07:30
            30: "2027-01-05T08:00:00+01:00",
        },
    ),
    "an instant at the quiet hours' start is inside them": (
        {"offsets_minutes": [720, 420, 60, 30], "quiet_hours": NIGHT},
        "2027-01-05",
        "21:00",
        {
            720: "2027-01-05T09:00:00+01:00",
            420: "2027-01-05T14:00:00+01:00",
            60: "2027-01-05T19:59:00+01:00",  # 20:00 exactly
            30: "2027-01-05T19:59:00+01:00",
        },
    ),
    "offsets of days, and quiet hours within a day": (
        {
            "offsets_minutes": [20160, 4320, 120, 60],
            "quiet_hours": {"start": "12:00", "end": "14:00"},
        },
        "2027-01-04",
        "15:00",
        {
            20160: "2026-12-21T15:00:00+01:00",
            4320: "2027-01-01T15:00:00+01:00",
            120: "2027-01-04T11:59:00+01:00",  # 13:00
            60: "2027-01-04T14:00:00+01:00",  # at the end: outside
        },
    ),
    "no quiet hours": (
        {"offsets_minutes": [720, 420], "quiet_hours": None},
        "2027-01-05",
        "08:30",
        {720: "2027-01-04T20:30:00+01:00", 420: "2027-01-05T01:30:00+01:00"},
    ),
}


@pytest.fixture
async def admin(connection: AsyncConnection, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = webhook_settings(clinic_timezone="Europe/Berlin")
    app, lifespan = await started_app(settings, database_url, connection)
    async with client_for(app, OTHER_KEY) as client:
        yield client
    await lifespan.__aexit__(None, None, None)


async def _around_the_clock(client: httpx.AsyncClient) -> dict[str, Any]:
    every_day = [{"start": "00:00", "end": "23:30"}]
    return await create_doctor(client, weekly_hours=dict.fromkeys(WEEKDAYS, every_day))


@pytest.mark.parametrize("case", CASES)
async def test_the_due_instant_in_a_clinic_with_daylight_saving(
    admin: httpx.AsyncClient, case: str
) -> None:
    policy, day, start, expected = CASES[case]
    changed = await admin.put("/api/v1/reminder-policy", json=policy)
    assert changed.status_code == 200, changed.text
    doctor = await _around_the_clock(admin)
    booked = await book(admin, doctor["id"], dt.date.fromisoformat(day), start)
    assert booked.status_code == 201, booked.text
    response = await admin.get(f"/api/v1/appointments/{booked.json()['id']}/reminders")
    plan = response.json()
    assert {r["offset_minutes"]: r["due_at"] for r in plan} == expected
    assert {r["status"] for r in plan} == {"scheduled"}
    instants = [dt.datetime.fromisoformat(r["due_at"]) for r in plan]
    assert instants == sorted(instants)  # listed by due_at
