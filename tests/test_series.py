"""Recurring series over HTTP (SPEC: Recurring series): booked all or none, each failing
occurrence's reason and alternatives, validation, idempotency, reading, cancelling from a date,
one occurrence moved or cancelled alone, and the webhook messages each occurrence queues.
Rollback mode; the races, Google and delivery are in test_series_race.py and
test_series_mirrors.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.services.booking import series as series_machinery
from app.services.scheduling.engine import ALTERNATIVES
from tests.conftest import API_KEY, OTHER_KEY, client_for, started_app
from tests.factories import book, create_doctor, create_patient, next_weekday, patient_payload
from tests.test_webhooks_api import READONLY_KEY, webhook_settings

API = "/api/v1"
SERIES = f"{API}/appointments/series"
MONDAY = 0


def series_payload(
    doctor_id: str, start: dt.date, at: str = "10:00", **recurrence: Any
) -> dict[str, Any]:
    return {
        "doctor_id": doctor_id,
        "start_date": start.isoformat(),
        "start_time": at,
        "source": "ADMIN",
        "patient": patient_payload(),
        "recurrence": {"frequency": "weekly", **(recurrence or {"count": 4})},
    }


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    """The rollback-mode app, with webhooks (a sealing key) and a `readonly` key too."""
    keys = f"agent:{API_KEY},admin:{OTHER_KEY},dash:{READONLY_KEY}:readonly"
    app, lifespan = await started_app(
        webhook_settings(service_api_key=keys), database_url, connection
    )
    yield app
    await lifespan.__aexit__(None, None, None)


async def count(connection: AsyncConnection, sql: str, **params: Any) -> int:
    return int(await connection.scalar(text(sql), params) or 0)


async def written(connection: AsyncConnection) -> tuple[int, int, int]:
    """Appointments, patients and series in the database."""
    return (
        await count(connection, "SELECT count(*) FROM appointments"),
        await count(connection, "SELECT count(*) FROM patients"),
        await count(connection, "SELECT count(*) FROM appointment_series"),
    )


def weekly(start: dt.date, n: int) -> list[str]:
    return [(start + dt.timedelta(weeks=i)).isoformat() for i in range(n)]


async def test_a_weekly_series_books_every_occurrence_at_the_same_time(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    start = next_weekday(MONDAY)
    response = await client.post(SERIES, json=series_payload(doctor["id"], start))
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"series_id", "recurrence", "appointments"}
    assert body["recurrence"] == {"frequency": "weekly", "interval": 1, "count": 4}
    booked = body["appointments"]
    assert [a["date"] for a in booked] == weekly(start, 4)
    assert {(a["start_time"], a["end_time"], a["status"]) for a in booked} == {
        ("10:00", "10:30", "BOOKED")
    }
    assert {a["series_id"] for a in booked} == {body["series_id"]}
    assert len({a["patient_id"] for a in booked}) == 1
    # Each occurrence is an ordinary appointment: readable alone, with its own audit trail.
    for appointment in booked:
        alone = (await client.get(f"{API}/appointments/{appointment['id']}")).json()
        assert alone["series_id"] == body["series_id"]
        events = (await client.get(f"{API}/appointments/{appointment['id']}/events")).json()
        assert [e["action"] for e in events] == ["created"]
    stored = (
        await connection.execute(
            text(
                "SELECT doctor_id, patient_id, start_date, start_time, frequency,"
                " repeat_interval, count, until FROM appointment_series"
            )
        )
    ).one()
    assert (str(stored.doctor_id), str(stored.patient_id), stored.start_date) == (
        doctor["id"],
        booked[0]["patient_id"],
        start,
    )
    assert (stored.start_time, stored.frequency, stored.repeat_interval) == (
        dt.time(10),
        "weekly",
        1,
    )
    assert (stored.count, stored.until) == (4, None)


async def test_a_daily_series_every_other_day_until_a_date(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(
        client,
        working_days=["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    )
    start = next_weekday(MONDAY)
    until = start + dt.timedelta(days=9)  # the 10th day: every other day gives 5 visits
    payload = series_payload(
        doctor["id"], start, "14:30", frequency="daily", interval=2, until=until.isoformat()
    )
    response = await client.post(SERIES, json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["recurrence"] == {"frequency": "daily", "interval": 2, "until": until.isoformat()}
    assert [a["date"] for a in body["appointments"]] == [
        (start + dt.timedelta(days=2 * i)).isoformat() for i in range(5)
    ]
    assert {a["start_time"] for a in body["appointments"]} == {"14:30"}


async def test_an_existing_patient_by_id_or_by_mobile_is_reused(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    patient = await create_patient(client)
    start = next_weekday(MONDAY)
    by_id = {**series_payload(doctor["id"], start), "patient_id": patient["id"]}
    del by_id["patient"]
    by_mobile = series_payload(doctor["id"], start, "11:00")
    by_mobile["patient"] = {"name": "Someone Else", "mobile_number": patient["mobile_number"]}
    for payload in (by_id, by_mobile):
        response = await client.post(SERIES, json=payload)
        assert response.status_code == 201, response.text
        assert {a["patient_id"] for a in response.json()["appointments"]} == {patient["id"]}
    assert await count(connection, "SELECT count(*) FROM patients") == 1
    unknown = {**by_id, "patient_id": "00000000-0000-4000-8000-000000000000"}
    refused = await client.post(SERIES, json={**unknown, "start_time": "12:00"})
    assert refused.status_code == 404, refused.text


async def test_conflicts_name_every_failing_occurrence_and_nothing_is_booked(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """Eight Mondays: the 2nd taken, the 3rd on leave, the 4th a holiday, the 5th with other
    hours, the 6th at the daily limit, the 8th beyond the horizon; the 1st and 7th are free."""
    start = next_weekday(MONDAY)
    week = [start + dt.timedelta(weeks=i) for i in range(8)]
    today = dt.date.today()
    doctor = await create_doctor(
        client,
        max_appointments_per_day=2,
        booking_horizon_days=(week[6] - today).days + 3,
    )
    doctor_id = doctor["id"]
    async with client_for(app, OTHER_KEY) as admin:
        assert (await book(client, doctor_id, week[1], "10:00")).status_code == 201
        leave = await client.post(
            f"{API}/doctors/{doctor_id}/leaves", json={"date": week[2].isoformat()}
        )
        assert leave.status_code == 201, leave.text
        holiday = await admin.put(
            f"{API}/clinic/holidays/{week[3].isoformat()}", json={"name": "Founders' Day"}
        )
        assert holiday.status_code == 201, holiday.text
        afternoon = {"windows": [{"start": "13:00", "end": "17:00"}]}
        override = await admin.put(
            f"{API}/doctors/{doctor_id}/overrides/{week[4].isoformat()}", json=afternoon
        )
        assert override.status_code == 201, override.text
    for at in ("11:00", "12:00"):
        assert (await book(client, doctor_id, week[5], at)).status_code == 201
    before = await written(connection)

    response = await client.post(SERIES, json=series_payload(doctor_id, start, count=8))
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "slot_unavailable"
    found = [(c["date"], c["start_time"], c["reason"]) for c in body["conflicts"]]
    assert found == [
        (week[1].isoformat(), "10:00", "taken"),
        (week[2].isoformat(), "10:00", "leave"),
        (week[3].isoformat(), "10:00", "holiday"),
        (week[4].isoformat(), "10:00", "outside_hours"),
        (week[5].isoformat(), "10:00", "daily_limit"),
        (week[7].isoformat(), "10:00", "beyond_horizon"),
    ]
    # The top level is the earliest conflict's; each conflict is what a single booking says.
    assert (body["reason"], body["alternatives"]) == (
        "taken",
        body["conflicts"][0]["alternatives"],
    )
    assert before == await written(connection)
    for conflict in body["conflicts"]:
        alone = await book(client, doctor_id, dt.date.fromisoformat(conflict["date"]), "10:00")
        assert alone.status_code == 409
        assert (alone.json()["reason"], alone.json()["alternatives"]) == (
            conflict["reason"],
            conflict["alternatives"],
        )
        assert len(conflict["alternatives"]) <= ALTERNATIVES


async def test_a_series_starting_in_the_past_is_refused_as_past(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    start = next_weekday(MONDAY) - dt.timedelta(weeks=3)
    response = await client.post(SERIES, json=series_payload(doctor["id"], start, count=5))
    assert response.status_code == 409
    reasons = [c["reason"] for c in response.json()["conflicts"]]
    assert reasons[0] == "past"
    assert await written(connection) == (0, 0, 0)


@pytest.mark.parametrize(
    ("recurrence", "field"),
    [
        ({"frequency": "weekly", "count": 4, "until": "2099-01-01"}, "recurrence"),
        ({"frequency": "weekly"}, "recurrence"),
        ({"frequency": "weekly", "count": 1}, "recurrence.count"),
        ({"frequency": "weekly", "count": 53}, "recurrence.count"),
        ({"frequency": "weekly", "interval": 5, "count": 4}, "recurrence.interval"),
        ({"frequency": "weekly", "interval": 0, "count": 4}, "recurrence.interval"),
        ({"frequency": "monthly", "count": 4}, "recurrence.frequency"),
        ({"frequency": "weekly", "count": 4, "every": 2}, "recurrence.every"),
        ({"frequency": "daily", "until": "+60"}, "recurrence.until"),  # 61 visits
        ({"frequency": "daily", "until": "+0"}, "recurrence.until"),  # 1 visit
        ({"frequency": "weekly", "until": "-7"}, "recurrence.until"),  # none
    ],
)
async def test_invalid_recurrences_are_400_naming_the_field(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    recurrence: dict[str, Any],
    field: str,
) -> None:
    doctor = await create_doctor(client)
    start = next_weekday(MONDAY)
    if str(recurrence.get("until", "")).startswith(("+", "-")):
        days = int(recurrence["until"])
        recurrence = {**recurrence, "until": (start + dt.timedelta(days=days)).isoformat()}
    payload = {**series_payload(doctor["id"], start), "recurrence": recurrence}
    response = await client.post(SERIES, json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == [field]
    assert await written(connection) == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start_time": "25:00"}, "start_time"),
        ({"start_date": "2027-02-30"}, "start_date"),
        ({"source": "FAX"}, "source"),
        ({"colour": "blue"}, "colour"),
        ({"patient_id": "00000000-0000-4000-8000-000000000000"}, "body"),
        ({"patient": None}, "body"),
        ({"recurrence": None}, "recurrence"),
    ],
)
async def test_an_invalid_body_is_400_and_writes_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection, change: dict[str, Any], field: str
) -> None:
    doctor = await create_doctor(client)
    payload = {**series_payload(doctor["id"], next_weekday(MONDAY)), **change}
    response = await client.post(SERIES, json=payload)
    assert response.status_code == 400, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await written(connection) == (0, 0, 0)


async def test_a_visit_type_the_doctor_does_not_offer_is_400(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    made = await client.post(
        f"{API}/visit-types/", json={"name": "Physiotherapy", "duration_minutes": 45}
    )
    payload = {
        **series_payload(doctor["id"], next_weekday(MONDAY)),
        "visit_type_id": made.json()["id"],
    }
    response = await client.post(SERIES, json=payload)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["visit_type_id"]


async def test_a_series_of_a_visit_type_lasts_its_length(client: httpx.AsyncClient) -> None:
    made = await client.post(
        f"{API}/visit-types/", json={"name": "Physiotherapy", "duration_minutes": 45}
    )
    type_id = made.json()["id"]
    doctor = await create_doctor(client, visit_type_ids=[type_id])
    payload = {**series_payload(doctor["id"], next_weekday(MONDAY)), "visit_type_id": type_id}
    response = await client.post(SERIES, json=payload)
    assert response.status_code == 201, response.text
    assert {(a["end_time"], a["visit_type_id"]) for a in response.json()["appointments"]} == {
        ("10:45", type_id)
    }


async def test_an_unknown_doctor_is_404(client: httpx.AsyncClient) -> None:
    payload = series_payload("00000000-0000-4000-8000-000000000000", next_weekday(MONDAY))
    assert (await client.post(SERIES, json=payload)).status_code == 404


async def test_the_same_idempotency_key_replays_and_another_body_is_422(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    payload = series_payload(doctor["id"], next_weekday(MONDAY))
    headers = {"Idempotency-Key": "course-42"}
    first = await client.post(SERIES, json=payload, headers=headers)
    again = await client.post(SERIES, json=payload, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await written(connection) == (4, 1, 1)
    other = await client.post(SERIES, json={**payload, "start_time": "11:00"}, headers=headers)
    assert other.status_code == 422
    assert await written(connection) == (4, 1, 1)


async def test_a_refused_series_with_a_key_can_be_retried_once_the_slot_is_free(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    start = next_weekday(MONDAY)
    blocking = await book(client, doctor["id"], start + dt.timedelta(weeks=2), "10:00")
    payload = series_payload(doctor["id"], start)
    headers = {"Idempotency-Key": "course-43"}
    refused = await client.post(SERIES, json=payload, headers=headers)
    assert refused.status_code == 409
    assert [c["reason"] for c in refused.json()["conflicts"]] == ["taken"]
    await client.delete(f"{API}/appointments/{blocking.json()['id']}")
    retried = await client.post(SERIES, json=payload, headers=headers)
    assert retried.status_code == 201, retried.text


async def test_get_answers_every_occurrence_by_current_date_and_unknown_is_404(
    client: httpx.AsyncClient,
) -> None:
    doctor = await create_doctor(client)
    start = next_weekday(MONDAY)
    made = (await client.post(SERIES, json=series_payload(doctor["id"], start))).json()
    ids = [a["id"] for a in made["appointments"]]
    # The first moves after the last; the second is cancelled; both stay in the series.
    later = start + dt.timedelta(weeks=5)
    moved = await client.put(
        f"{API}/appointments/{ids[0]}/reschedule",
        json={"date": later.isoformat(), "start_time": "09:00"},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["status"], moved.json()["series_id"]) == ("RESCHEDULED", made["series_id"])
    cancelled = await client.delete(f"{API}/appointments/{ids[1]}")
    assert cancelled.json()["series_id"] == made["series_id"]

    got = await client.get(f"{SERIES}/{made['series_id']}")
    assert got.status_code == 200
    body = got.json()
    assert body["series_id"] == made["series_id"]
    assert body["recurrence"] == made["recurrence"]
    assert [(a["id"], a["status"]) for a in body["appointments"]] == [
        (ids[1], "CANCELLED"),
        (ids[2], "BOOKED"),
        (ids[3], "BOOKED"),
        (ids[0], "RESCHEDULED"),
    ]
    # The others were not touched by the move or the cancel.
    for untouched in ids[2:]:
        alone = (await client.get(f"{API}/appointments/{untouched}")).json()
        assert (alone["status"], alone["start_time"]) == ("BOOKED", "10:00")
    unknown = await client.get(f"{SERIES}/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    assert (await client.get(f"{SERIES}/not-an-id")).status_code == 400


async def test_cancelling_from_a_date_leaves_the_earlier_ones_and_a_repeat_cancels_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    start = next_weekday(MONDAY)
    made = (await client.post(SERIES, json=series_payload(doctor["id"], start, count=5))).json()
    ids = [a["id"] for a in made["appointments"]]
    await client.delete(f"{API}/appointments/{ids[3]}")  # already cancelled: not listed again
    from_date = (start + dt.timedelta(weeks=2)).isoformat()
    url = f"{SERIES}/{made['series_id']}"
    response = await client.delete(url, params={"from_date": from_date})
    assert response.status_code == 200, response.text
    assert response.json() == {"series_id": made["series_id"], "cancelled": [ids[2], ids[4]]}
    statuses = [a["status"] for a in (await client.get(url)).json()["appointments"]]
    assert statuses == ["BOOKED", "BOOKED", "CANCELLED", "CANCELLED", "CANCELLED"]
    again = await client.delete(url, params={"from_date": from_date})
    assert again.json() == {"series_id": made["series_id"], "cancelled": []}
    # Without from_date: from today, so the rest of the series.
    rest = await client.delete(url)
    assert rest.json()["cancelled"] == ids[:2]
    events = await count(
        connection,
        "SELECT count(*) FROM appointment_events WHERE action = 'cancelled'",
    )
    assert events == 5
    unknown = await client.delete(f"{SERIES}/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
    bad = await client.delete(url, params={"from_date": "soon"})
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["from_date"]


async def test_each_occurrence_queues_its_own_booked_message(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """One `appointment.booked` per occurrence, in the booking's own statement, with that
    occurrence as its data (the delivery itself: test_series_mirrors.py)."""
    hook = await client.post(
        f"{API}/webhooks/",
        json={"url": "https://93.184.215.14/hooks", "events": ["appointment.booked"]},
    )
    assert hook.status_code == 201, hook.text
    doctor = await create_doctor(client)
    made = (await client.post(SERIES, json=series_payload(doctor["id"], next_weekday(0)))).json()
    rows = await connection.execute(
        text("SELECT event, data FROM webhook_deliveries ORDER BY data->'appointment_row'->>'date'")
    )
    messages = rows.all()
    assert [m.event for m in messages] == ["appointment.booked"] * 4
    assert [m.data["appointment_row"]["id"] for m in messages] == [
        a["id"] for a in made["appointments"]
    ]
    assert {m.data["appointment_row"]["series_id"] for m in messages} == {made["series_id"]}


async def test_a_readonly_key_reads_a_series_but_books_and_cancels_none(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    doctor = await create_doctor(client)
    payload = series_payload(doctor["id"], next_weekday(MONDAY))
    made = (await client.post(SERIES, json=payload)).json()
    async with client_for(app, READONLY_KEY) as readonly:
        assert (await readonly.get(f"{SERIES}/{made['series_id']}")).status_code == 200
        refused = await readonly.post(SERIES, json={**payload, "start_time": "11:00"})
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert (await readonly.delete(f"{SERIES}/{made['series_id']}")).status_code == 403


@pytest.mark.parametrize(("taken_at", "outcome"), [("11:00", 201), ("10:00", 409)])
async def test_a_day_changed_between_read_and_write_makes_the_whole_series_decide_again(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
    taken_at: str,
    outcome: int,
) -> None:
    """A booking commits on the series' second day after the series read it: the series'
    write finds that day stale and writes nothing of any day, then claims its days and decides
    again. Beside it (11:00), every occurrence is booked; on its slot (10:00), none is."""
    doctor = await create_doctor(client)
    start = next_weekday(MONDAY)
    reads: list[object] = []
    real = series_machinery.load_doctor_calendar

    async def read_then_book(*args: Any, **kwargs: Any) -> Any:
        calendar = await real(*args, **kwargs)
        reads.append(calendar)
        if len(reads) == 1:
            meanwhile = await book(client, doctor["id"], start + dt.timedelta(weeks=1), taken_at)
            assert meanwhile.status_code == 201, meanwhile.text
        return calendar

    monkeypatch.setattr(series_machinery, "load_doctor_calendar", read_then_book)
    response = await client.post(SERIES, json=series_payload(doctor["id"], start, count=3))
    assert response.status_code == outcome, response.text
    assert len(reads) == 2
    series_rows = await count(connection, "SELECT count(*) FROM appointment_series")
    in_series = await count(
        connection, "SELECT count(*) FROM appointments WHERE series_id IS NOT NULL"
    )
    if outcome == 201:
        assert (series_rows, in_series) == (1, 3)
    else:
        assert [(c["date"], c["reason"]) for c in response.json()["conflicts"]] == [
            ((start + dt.timedelta(weeks=1)).isoformat(), "taken")
        ]
        # Only the booking made meanwhile, and its patient, are in the database.
        assert await written(connection) == (1, 1, 0)
