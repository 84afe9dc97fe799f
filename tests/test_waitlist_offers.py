"""Every way a slot comes free ends in exactly one offer, to the oldest entry it fits (SPEC
"Waitlist"): a cancel, a move away, a hold released or expired, a leave removed, hours added
by an override or the weekly hours, an offer declined or expired. And an accept after the
hold expired: booked while the slot is free, else 409 and waiting again. Rollback mode; time
is moved with the clinic's clock (tests/clock.py), never slept through."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.clock import Clock
from tests.factories import book, create_doctor, next_weekday, patient_payload
from tests.test_waitlist_api import (
    WAITLIST,
    entry,
    fill,
    joined,
    on,
    settle,
    short_day_doctor,
    swept,
)

DAY = next_weekday(2, weeks_ahead=2)
OTHER_DAY = next_weekday(3, weeks_ahead=2)


async def offered_slots(connection: AsyncConnection) -> list[tuple[uuid.UUID, str, str]]:
    """Every offer made: (entry, start, outcome), in the order made."""
    rows = await connection.execute(
        text("SELECT entry_id, start_time, outcome FROM waitlist_offers ORDER BY id")
    )
    return [(r.entry_id, r.start_time.strftime("%H:%M"), r.outcome) for r in rows]


async def two_waiting(client: httpx.AsyncClient, doctor: str) -> tuple[str, str]:
    """Two entries for `doctor` on DAY, the first older."""
    first = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(DAY))
    second = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(DAY))
    return first["id"], second["id"]


async def only_offer(
    client: httpx.AsyncClient, connection: AsyncConnection, to: str, start: str, others: str
) -> None:
    assert await offered_slots(connection) == [(uuid.UUID(to), start, "open")]
    got = await entry(client, to)
    assert (got["status"], got["offer"]["start_time"]) == ("offered", start)
    assert (await entry(client, others))["status"] == "waiting"


async def full_day(app: FastAPI, client: httpx.AsyncClient) -> tuple[str, list[str], str, str]:
    """A doctor whose two slots on DAY are booked, and two entries waiting for them."""
    doctor = await short_day_doctor(client, DAY)
    booked = await fill(client, doctor, DAY, "09:00", "09:30")
    first, second = await two_waiting(client, doctor)
    await settle(app)
    assert await offered_slots(app.state.test_connection) == []
    return doctor, booked, first, second


@pytest.fixture(autouse=True)
def remember_connection(app: FastAPI, connection: AsyncConnection) -> None:
    app.state.test_connection = connection


async def test_a_cancel(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    _, booked, first, second = await full_day(app, client)
    assert (await client.delete(f"/api/v1/appointments/{booked[1]}")).status_code == 200
    await settle(app)
    await only_offer(client, connection, first, "09:30", second)


async def test_a_move_away(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = (await create_doctor(client))["id"]
    starts = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)]
    booked = await fill(client, doctor, DAY, *starts)
    first, second = await two_waiting(client, doctor)
    await settle(app)
    assert await offered_slots(connection) == []
    moved = await client.put(
        f"/api/v1/appointments/{booked[4]}/reschedule",
        json={"date": OTHER_DAY.isoformat(), "start_time": "09:00"},
    )
    assert moved.status_code == 200, moved.text
    await settle(app)
    await only_offer(client, connection, first, "11:00", second)


async def test_a_hold_released(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await short_day_doctor(client, DAY)
    await fill(client, doctor, DAY, "09:30")
    hold = await client.post(
        "/api/v1/holds/", json={"doctor_id": doctor, "date": DAY.isoformat(), "start_time": "09:00"}
    )
    first, second = await two_waiting(client, doctor)
    await settle(app)
    assert await offered_slots(connection) == []
    assert (await client.delete(f"/api/v1/holds/{hold.json()['id']}")).status_code == 204
    await settle(app)
    await only_offer(client, connection, first, "09:00", second)


async def test_a_hold_expired(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection, clock: Clock
) -> None:
    doctor = await short_day_doctor(client, DAY)
    await fill(client, doctor, DAY, "09:30")
    body = {"doctor_id": doctor, "date": DAY.isoformat(), "start_time": "09:00", "ttl_seconds": 30}
    assert (await client.post("/api/v1/holds/", json=body)).status_code == 201
    first, second = await two_waiting(client, doctor)
    await swept(app)
    assert await offered_slots(connection) == []
    clock.later(seconds=31)
    await swept(app)
    await only_offer(client, connection, first, "09:00", second)


async def test_a_leave_removed(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await short_day_doctor(client, DAY)
    await fill(client, doctor, DAY, "09:30")
    leave = await client.post(
        f"/api/v1/doctors/{doctor}/leaves",
        json={"date": DAY.isoformat(), "start_time": "09:00", "end_time": "09:30"},
    )
    assert leave.status_code == 201, leave.text
    first, second = await two_waiting(client, doctor)
    await settle(app)
    assert await offered_slots(connection) == []
    removed = await client.delete(f"/api/v1/doctors/{doctor}/leaves/{leave.json()['id']}")
    assert removed.status_code in (200, 204), removed.text
    await settle(app)
    await only_offer(client, connection, first, "09:00", second)


async def test_hours_added_by_an_override(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await short_day_doctor(client, OTHER_DAY)  # DAY is not a working day
    first, second = await two_waiting(client, doctor)
    await settle(app)
    assert await offered_slots(connection) == []
    opened = await client.put(
        f"/api/v1/doctors/{doctor}/overrides/{DAY.isoformat()}",
        json={"windows": [{"start": "14:00", "end": "14:30"}]},
    )
    assert opened.status_code in (200, 201), opened.text
    await settle(app)
    await only_offer(client, connection, first, "14:00", second)


async def test_hours_added_to_the_week(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    other = OTHER_DAY.strftime("%A").lower()
    doctor = await short_day_doctor(client, OTHER_DAY)
    first, second = await two_waiting(client, doctor)
    await settle(app)
    assert await offered_slots(connection) == []
    week = {other: [{"start": "09:00", "end": "10:00"}]}
    week[DAY.strftime("%A").lower()] = [{"start": "16:00", "end": "16:30"}]
    updated = await client.put(f"/api/v1/doctors/{doctor}", json={"weekly_hours": week})
    assert updated.status_code == 200, updated.text
    await settle(app)
    await only_offer(client, connection, first, "16:00", second)


async def test_an_offer_declined_goes_to_the_next(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    _, booked, first, second = await full_day(app, client)
    await client.delete(f"/api/v1/appointments/{booked[0]}")
    await settle(app)
    assert (await client.post(f"{WAITLIST}{first}/decline")).status_code == 200
    await settle(app)
    assert await offered_slots(connection) == [
        (uuid.UUID(first), "09:00", "declined"),
        (uuid.UUID(second), "09:00", "open"),
    ]
    assert (await entry(client, first))["status"] == "waiting"
    assert (await entry(client, second))["offer"]["start_time"] == "09:00"


async def test_an_offer_expired_goes_to_the_next_and_says_so(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection, clock: Clock
) -> None:
    endpoint = await subscribed(connection)
    _, booked, first, second = await full_day(app, client)
    await client.delete(f"/api/v1/appointments/{booked[0]}")
    await settle(app)
    hold_id = (await entry(client, first))["offer"]["hold_id"]
    clock.later(minutes=14)
    await swept(app)
    assert (await entry(client, first))["status"] == "offered"  # not yet
    clock.later(minutes=1, seconds=1)
    await swept(app)
    assert await offered_slots(connection) == [
        (uuid.UUID(first), "09:00", "expired"),
        (uuid.UUID(second), "09:00", "open"),
    ]
    assert (await client.get(f"/api/v1/holds/{hold_id}")).json()["status"] == "expired"
    messages = await sent(connection, endpoint)
    assert [(m["event"], m["data"]["waitlist_entry"]["id"]) for m in messages] == [
        ("waitlist.offered", first),
        ("waitlist.offer_expired", first),
        ("waitlist.offered", second),
    ]
    expired = messages[1]["data"]
    assert (expired["waitlist_entry"]["status"], expired["waitlist_entry"]["offer"]) == (
        "waiting",
        None,
    )
    assert (expired["hold"]["id"], expired["hold"]["status"]) == (hold_id, "expired")
    offered = messages[0]["data"]
    assert offered["waitlist_entry"]["status"] == "offered"
    assert offered["hold"]["status"] == "active"
    assert set(offered["patient"]) == {"id", "name", "mobile_number"}
    assert offered["patient"]["id"] == offered["waitlist_entry"]["patient_id"]
    assert set(offered["doctor"]) == {"id", "name"}
    assert all(m["patient_id"] == offered["patient"]["id"] for m in messages[:2])


async def test_accept_after_expiry_books_while_the_slot_is_free(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = await short_day_doctor(client, DAY)
    made = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(DAY))
    await settle(app)
    clock.later(minutes=16)  # the hold has expired; the sweep has not handed it back yet
    got = await entry(client, made["id"])
    assert got["status"] == "offered"
    assert (await client.get(f"/api/v1/holds/{got['offer']['hold_id']}")).json()[
        "status"
    ] == "expired"
    accepted = await client.post(f"{WAITLIST}{made['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "booked"
    hold = (await client.get(f"/api/v1/holds/{got['offer']['hold_id']}")).json()
    assert hold["status"] == "booked"


async def test_accept_after_expiry_with_the_slot_gone_is_409_and_waiting_again(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection, clock: Clock
) -> None:
    doctor = await short_day_doctor(client, DAY)
    made = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(DAY))
    await settle(app)
    offer = (await entry(client, made["id"]))["offer"]
    clock.later(minutes=16)
    taken = await book(client, doctor, DAY, offer["start_time"])
    assert taken.status_code == 201, taken.text

    refused = await client.post(f"{WAITLIST}{made['id']}/accept", headers={"Idempotency-Key": "k"})
    assert refused.status_code == 409, refused.text
    body: dict[str, Any] = refused.json()
    assert (body["code"], body["reason"]) == ("slot_unavailable", "taken")
    assert body["alternatives"] and body["alternatives"][0]["date"] == DAY.isoformat()
    after = await entry(client, made["id"])
    assert (after["status"], after["offer"]) == ("waiting", None)
    assert await offered_slots(connection) == [(uuid.UUID(made["id"]), "09:00", "gone")]
    # Waiting again: offered the other slot, never the one that was gone.
    await settle(app)
    assert (await entry(client, made["id"]))["offer"]["start_time"] == "09:30"
    again = await client.post(f"{WAITLIST}{made['id']}/accept", headers={"Idempotency-Key": "k"})
    assert again.status_code == 200, again.text


async def subscribed(connection: AsyncConnection) -> uuid.UUID:
    """An active endpoint subscribed to the waitlist's events (its messages are only queued
    here: rollback mode runs no webhook deliveries)."""
    row = await connection.execute(
        text(
            "INSERT INTO webhook_endpoints (id, url, events, secret)"
            " VALUES (gen_random_uuid(), 'https://hooks.example/waitlist',"
            " ARRAY['waitlist.offered', 'waitlist.offer_expired'], 'sealed') RETURNING id"
        )
    )
    endpoint: uuid.UUID = row.scalar_one()
    return endpoint


async def sent(connection: AsyncConnection, endpoint: uuid.UUID) -> list[dict[str, Any]]:
    rows = await connection.execute(
        text(
            "SELECT d.event, d.data, d.patient_id FROM webhook_deliveries d"
            " JOIN outbox_jobs j ON j.target = 'webhook' AND j.aggregate_id = d.id"
            " WHERE d.endpoint_id = :e ORDER BY j.id"
        ),
        {"e": endpoint},
    )
    return [{"event": r.event, "data": r.data, "patient_id": str(r.patient_id)} for r in rows]


async def test_an_offer_whose_hold_is_used_directly_ends_with_it(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """The hold's id is a capability: released through `DELETE /holds/{id}`, the offer ends and
    the slot goes on; booked through `POST /appointments/`, the entry is booked."""
    _, booked, first, second = await full_day(app, client)
    await client.delete(f"/api/v1/appointments/{booked[0]}")
    await settle(app)
    first_hold = (await entry(client, first))["offer"]["hold_id"]
    assert (await client.delete(f"/api/v1/holds/{first_hold}")).status_code == 204
    await swept(app)
    assert (await entry(client, first))["status"] == "waiting"
    second_hold = (await entry(client, second))["offer"]["hold_id"]
    through = await client.post(
        "/api/v1/appointments/",
        json={"hold_id": second_hold, "source": "ADMIN", "patient": patient_payload()},
    )
    assert through.status_code == 201, through.text
    await swept(app)
    after = await entry(client, second)
    assert (after["status"], after["booked_appointment_id"]) == ("booked", through.json()["id"])
    assert [o[2] for o in await offered_slots(connection)] == ["expired", "accepted"]


async def test_a_holiday_removed(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await short_day_doctor(client, DAY)
    await fill(client, doctor, DAY, "09:30")
    holiday = await client.put(f"/api/v1/clinic/holidays/{DAY.isoformat()}", json={"name": "Fete"})
    assert holiday.status_code in (200, 201), holiday.text
    first, second = await two_waiting(client, doctor)
    await settle(app)
    assert await offered_slots(connection) == []
    assert (await client.delete(f"/api/v1/clinic/holidays/{DAY.isoformat()}")).status_code == 204
    await settle(app)
    await only_offer(client, connection, first, "09:00", second)


async def test_entries_expire_once_their_dates_have_passed(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection, clock: Clock
) -> None:
    doctor = await short_day_doctor(client, DAY)
    await fill(client, doctor, DAY, "09:30")
    offered = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(DAY))
    waiting = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(DAY))
    await settle(app)
    hold_id = (await entry(client, offered["id"]))["offer"]["hold_id"]
    assert (await entry(client, waiting["id"]))["status"] == "waiting"
    clock.set(DAY + dt.timedelta(days=1), "08:00")
    await swept(app)
    for made in (offered, waiting):
        after = await entry(client, made["id"])
        assert (after["status"], after["offer"]) == ("expired", None)
    assert (await client.get(f"/api/v1/holds/{hold_id}")).json()["status"] == "released"
    assert [o[2] for o in await offered_slots(connection)] == ["withdrawn"]


async def test_a_round_reads_on_past_entries_that_fit_nothing(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """A round reads the entries a page at a time while the doctor has a slot free: the
    entry that fits it is found however many older ones fit nothing."""
    doctor = await short_day_doctor(client, DAY)
    booked = await fill(client, doctor, DAY, "09:00", "09:30")
    patient = (await client.post("/api/v1/patients/", json=patient_payload())).json()["id"]
    await connection.execute(
        text(
            "INSERT INTO waitlist_entries (id, patient_id, doctor_id, start_date, end_date,"
            " times, actor) SELECT gen_random_uuid(), :p, :d, :day, :day,"
            ' \'[{"start": "09:30", "end": "10:00"}]\', \'test\' FROM generate_series(1, 450)'
        ),
        {"p": patient, "d": doctor, "day": DAY},
    )
    fits = await joined(client, patient_id=patient, doctor_id=doctor, **on(DAY))
    await client.delete(f"/api/v1/appointments/{booked[0]}")  # 09:00: only the last fits it
    await settle(app)
    assert await offered_slots(connection) == [(uuid.UUID(fits["id"]), "09:00", "open")]
