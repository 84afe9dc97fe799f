"""Holds (spec: "Holds"): kept, counted as appointments for everyone else, booked through,
released, expired; with the booking's refusals and idempotency."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.clock import Clock
from tests.factories import booking_payload, create_doctor, next_weekday, patient_payload

HOLDS = "/api/v1/holds/"
BOOK = "/api/v1/appointments/"


async def hold(
    client: httpx.AsyncClient, doctor: str, day: dt.date, start: str, **extra: Any
) -> httpx.Response:
    body = {"doctor_id": doctor, "date": day.isoformat(), "start_time": start, **extra}
    return await client.post(HOLDS, json=body)


async def offered(client: httpx.AsyncClient, doctor: str, day: dt.date, **params: str) -> list[str]:
    response = await client.get(
        f"/api/v1/appointments/availability/{doctor}", params={"date": day.isoformat(), **params}
    )
    assert response.status_code == 200, response.text
    return [s["start_time"] for s in response.json()["days"][0]["slots"]]


def through(hold_id: str, **extra: Any) -> dict[str, Any]:
    return {"hold_id": hold_id, "source": "AI_CALLING_AGENT", "patient": patient_payload(), **extra}


async def test_a_hold_counts_as_an_appointment_for_everyone_else(client: httpx.AsyncClient) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(1)
    assert "10:00" in await offered(client, doctor, day)
    created = await hold(client, doctor, day, "10:00")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "active" and body["appointment_id"] is None
    assert (body["start_time"], body["end_time"]) == ("10:00", "10:30")
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires.utcoffset() is not None  # an instant with its offset
    assert (
        dt.timedelta(seconds=290) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=300)
    )

    assert "10:00" not in await offered(client, doctor, day)
    search = await client.get(
        "/api/v1/appointments/availability",
        params={
            "doctor_id": doctor,
            "start_date": day.isoformat(),
            "end_date": day.isoformat(),
            "limit": 50,
        },
    )
    assert "10:00" not in [s["start_time"] for s in search.json()]
    for refused in (
        await client.post(BOOK, json=booking_payload(doctor, day, "10:00")),
        await hold(client, doctor, day, "10:00"),
    ):
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "slot_unavailable"
        assert refused.json()["reason"] == "held"
        assert refused.json()["alternatives"]
    assert (await client.get(f"{HOLDS}{body['id']}")).json()["status"] == "active"


async def test_booking_through_a_hold_converts_it(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    visit_type = (
        await client.post(
            "/api/v1/visit-types/", json={"name": "New patient", "duration_minutes": 60}
        )
    ).json()
    doctor = (await create_doctor(client, visit_type_ids=[visit_type["id"]]))["id"]
    day = next_weekday(2)
    held = (await hold(client, doctor, day, "11:00", visit_type_id=visit_type["id"])).json()
    assert held["end_time"] == "12:00"

    booked = await client.post(BOOK, json=through(held["id"]))
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert (appointment["doctor_id"], appointment["date"]) == (doctor, day.isoformat())
    assert (appointment["start_time"], appointment["end_time"]) == ("11:00", "12:00")
    assert appointment["visit_type_id"] == visit_type["id"]
    after = (await client.get(f"{HOLDS}{held['id']}")).json()
    assert (after["status"], after["appointment_id"]) == ("booked", appointment["id"])

    again = await client.post(BOOK, json=through(held["id"]))
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state")
    released = await client.delete(f"{HOLDS}{held['id']}")
    assert (released.status_code, released.json()["code"]) == (409, "invalid_state")
    rows = await connection.execute(
        text("SELECT count(*) FROM appointments WHERE doctor_id = :d"), {"d": doctor}
    )
    assert rows.scalar_one() == 1


async def test_fields_sent_with_a_hold_must_match_it(client: httpx.AsyncClient) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(3)
    held = (await hold(client, doctor, day, "09:30")).json()
    same = {"doctor_id": doctor, "date": day.isoformat(), "start_time": "09:30:00"}
    for field, wrong in (("start_time", "10:00"), ("date", next_weekday(4).isoformat())):
        refused = await client.post(BOOK, json=through(held["id"], **{**same, field: wrong}))
        assert refused.status_code == 400, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert (await client.get(f"{HOLDS}{held['id']}")).json()["status"] == "active"
    assert (await client.post(BOOK, json=through(held["id"], **same))).status_code == 201


async def test_bad_holds_and_bookings_are_400_or_404(client: httpx.AsyncClient) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(1)
    for ttl in (29, 901, "soon"):
        refused = await hold(client, doctor, day, "10:00", ttl_seconds=ttl)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "ttl_seconds"
    missing = await client.post(BOOK, json={"source": "ADMIN", "patient": patient_payload()})
    assert missing.status_code == 400
    assert {e["field"] for e in missing.json()["errors"]} == {"doctor_id", "date", "start_time"}
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await client.get(f"{HOLDS}{unknown}")).status_code == 404
    assert (await client.delete(f"{HOLDS}{unknown}")).status_code == 404
    assert (await client.post(BOOK, json=through(unknown))).status_code == 404
    assert (await hold(client, unknown, day, "10:00")).status_code == 404


async def test_release_frees_the_slot_at_once(client: httpx.AsyncClient) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(1)
    held = (await hold(client, doctor, day, "14:00")).json()
    assert "14:00" not in await offered(client, doctor, day)
    assert (await client.delete(f"{HOLDS}{held['id']}")).status_code == 204
    assert (await client.get(f"{HOLDS}{held['id']}")).json()["status"] == "released"
    assert "14:00" in await offered(client, doctor, day)
    assert (await client.delete(f"{HOLDS}{held['id']}")).status_code == 204  # again: no change
    refused = await client.post(BOOK, json=through(held["id"]))
    assert (refused.status_code, refused.json()["code"]) == (409, "invalid_state")


async def test_expiry_frees_the_slot_with_no_job(client: httpx.AsyncClient, clock: Clock) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(1, weeks_ahead=2)
    first = (await hold(client, doctor, day, "09:00", ttl_seconds=60)).json()
    second = (await hold(client, doctor, day, "15:00", ttl_seconds=60)).json()
    # Remembered answers without the held slots, then the holds expire.
    assert {"09:00", "15:00"}.isdisjoint(await offered(client, doctor, day))
    assert {"09:00", "15:00"}.isdisjoint(await offered(client, doctor, day))
    clock.later(seconds=61)
    assert {"09:00", "15:00"} <= set(await offered(client, doctor, day))
    assert (await client.get(f"{HOLDS}{first['id']}")).json()["status"] == "expired"

    # An expired hold still books while its slot is free, and then reads booked.
    booked = await client.post(BOOK, json=through(first["id"]))
    assert booked.status_code == 201, booked.text
    assert (await client.get(f"{HOLDS}{first['id']}")).json()["status"] == "booked"
    # Once someone else has taken its slot, it does not.
    assert (await client.post(BOOK, json=booking_payload(doctor, day, "15:00"))).status_code == 201
    late = await client.post(BOOK, json=through(second["id"]))
    assert (late.status_code, late.json()["reason"]) == (409, "taken")
    assert (await client.get(f"{HOLDS}{second['id']}")).json()["status"] == "expired"


async def test_holds_count_for_the_daily_limit_and_the_buffer(client: httpx.AsyncClient) -> None:
    doctor = (await create_doctor(client, max_appointments_per_day=1, buffer_minutes=30))["id"]
    day = next_weekday(2)
    held = (await hold(client, doctor, day, "10:00")).json()
    assert await offered(client, doctor, day) == []
    limit = await client.post(BOOK, json=booking_payload(doctor, day, "15:00"))
    assert (limit.status_code, limit.json()["reason"]) == (409, "daily_limit")
    # The hold's own booking is not refused for the limit it already counted in.
    assert (await client.post(BOOK, json=through(held["id"]))).status_code == 201

    other = (await create_doctor(client, buffer_minutes=30))["id"]
    await hold(client, other, day, "10:00")
    near = await client.post(BOOK, json=booking_payload(other, day, "10:30"))
    assert (near.status_code, near.json()["reason"]) == (409, "held")
    assert "11:00" in await offered(client, other, day)


async def test_idempotency_keys_work_on_holds(client: httpx.AsyncClient) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(4)
    body = {"doctor_id": doctor, "date": day.isoformat(), "start_time": "10:00"}
    key = {"Idempotency-Key": "hold-once"}
    first = await client.post(HOLDS, json=body, headers=key)
    again = await client.post(HOLDS, json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other = await client.post(HOLDS, json={**body, "start_time": "11:00"}, headers=key)
    assert other.status_code == 422
    # The same key on another operation is not a replay of the hold.
    booking = await client.post(BOOK, json=booking_payload(doctor, day, "12:00"), headers=key)
    assert booking.status_code == 422
