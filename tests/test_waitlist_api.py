"""The waitlist's endpoints (SPEC "Waitlist"): entries made, read, listed and cancelled, their
validation, and the answers to an offer (accept, decline), in rollback mode. The matcher's
jobs are run here by a dispatcher with the waitlist matcher alone (`settle`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.adapters import clinic_of
from app.services.outbox.dispatcher import Dispatcher
from app.services.waitlist.matcher import WaitlistMatcher, sweep
from tests.conftest import OTHER_KEY, client_for
from tests.factories import book, create_doctor, create_patient, next_weekday, patient_payload

WAITLIST = "/api/v1/waitlist/"
READONLY_KEY = "readonly-secret-key"


async def settle(app: FastAPI) -> None:
    """Run every `waitlist` job owed (what the service's dispatcher does after each commit)."""
    settings = app.state.settings.model_copy(update={"dispatcher_concurrency": 1})
    matcher = WaitlistMatcher(settings, app.state.sessionmaker, lambda: clinic_of(settings))
    await Dispatcher(settings, app.state.sessionmaker, "", [matcher]).run_until_idle()


async def swept(app: FastAPI) -> None:
    """One sweep (what each dispatching process does every WAITLIST_SWEEP_SECONDS)."""
    settings = app.state.settings
    await sweep(app.state.sessionmaker, clinic_of(settings), settings)
    await settle(app)


async def join(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post(WAITLIST, json=fields)


async def joined(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await join(client, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def entry(client: httpx.AsyncClient, entry_id: str) -> dict[str, Any]:
    response = await client.get(f"{WAITLIST}{entry_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def on(day: dt.date, **fields: Any) -> dict[str, Any]:
    """An entry's dates: that one day."""
    return {"start_date": day.isoformat(), "end_date": day.isoformat(), **fields}


async def short_day_doctor(client: httpx.AsyncClient, day: dt.date, **fields: Any) -> str:
    """A doctor who works 09:00-10:00 on `day`'s weekday only: two 30-minute slots."""
    weekday = day.strftime("%A").lower()
    doctor = await create_doctor(
        client, weekly_hours={weekday: [{"start": "09:00", "end": "10:00"}]}, **fields
    )
    return str(doctor["id"])


async def fill(client: httpx.AsyncClient, doctor: str, day: dt.date, *starts: str) -> list[str]:
    ids = []
    for start in starts:
        response = await book(client, doctor, day, start)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_an_entry_made_while_a_slot_is_free_is_offered_its_earliest_match(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    day = next_weekday(2)
    doctor = await short_day_doctor(client, day)
    await fill(client, doctor, day, "09:00")
    patient = await create_patient(client)
    made = await joined(client, patient_id=patient["id"], doctor_id=doctor, **on(day))
    assert made["status"] == "waiting" and made["offer"] is None
    assert made["weekdays"] is None and made["times"] is None
    assert made["booked_appointment_id"] is None

    await settle(app)
    offered = await entry(client, made["id"])
    assert offered["status"] == "offered"
    offer = offered["offer"]
    assert (offer["doctor_id"], offer["date"], offer["start_time"], offer["end_time"]) == (
        doctor,
        day.isoformat(),
        "09:30",
        "10:00",
    )
    expires = dt.datetime.fromisoformat(offer["expires_at"])
    assert dt.timedelta(minutes=14) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
    hold = (await client.get(f"/api/v1/holds/{offer['hold_id']}")).json()
    assert hold["status"] == "active"
    slots = await client.get(
        f"/api/v1/appointments/availability/{doctor}", params={"date": day.isoformat()}
    )
    assert slots.json()["days"][0]["slots"] == []  # held for the entry


async def test_accept_books_the_held_slot_with_the_keys_source(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    day = next_weekday(3)
    doctor = await short_day_doctor(client, day)
    made = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(day))
    await settle(app)
    hold_id = (await entry(client, made["id"]))["offer"]["hold_id"]

    key = {"Idempotency-Key": "accept-once"}
    async with client_for(app, OTHER_KEY) as admin:
        accepted = await admin.post(f"{WAITLIST}{made['id']}/accept", headers=key)
        again = await admin.post(f"{WAITLIST}{made['id']}/accept", headers=key)
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "booked" and body["offer"] is None
    assert again.status_code == 200 and again.json() == body
    assert again.headers.get("idempotent-replayed") == "true"
    appointment = (await client.get(f"/api/v1/appointments/{body['booked_appointment_id']}")).json()
    assert (appointment["date"], appointment["start_time"]) == (day.isoformat(), "09:00")
    assert (appointment["patient_id"], appointment["source"]) == (made["patient_id"], "ADMIN")
    hold = (await client.get(f"/api/v1/holds/{hold_id}")).json()
    assert (hold["status"], hold["appointment_id"]) == ("booked", appointment["id"])
    for refused in (
        await client.post(f"{WAITLIST}{made['id']}/accept"),
        await client.post(f"{WAITLIST}{made['id']}/decline"),
        await client.delete(f"{WAITLIST}{made['id']}"),
    ):
        assert (refused.status_code, refused.json()["code"]) == (409, "invalid_state")
    offers = await connection.execute(text("SELECT outcome FROM waitlist_offers"))
    assert offers.scalars().all() == ["accepted"]


async def test_accept_moves_the_appointment_the_patient_wants_earlier(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    early, late = next_weekday(1), next_weekday(1, weeks_ahead=2)
    doctor = (await create_doctor(client))["id"]
    patient = await create_patient(client)
    booked = await book(client, doctor, late, "11:00", patient_id=patient["id"])
    appointment = booked.json()
    starts = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)]
    await fill(client, doctor, early, *starts)
    made = await joined(
        client,
        patient_id=patient["id"],
        appointment_id=appointment["id"],
        start_date=early.isoformat(),
        end_date=late.isoformat(),
    )
    assert (made["doctor_id"], made["appointment_id"]) == (doctor, appointment["id"])
    await settle(app)
    offer = (await entry(client, made["id"]))["offer"]
    # The earliest slot free after `early` (full) is on the next day, long before the visit.
    assert offer["date"] == (early + dt.timedelta(days=1)).isoformat()
    assert offer["start_time"] == "09:00"

    accepted = await client.post(f"{WAITLIST}{made['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["booked_appointment_id"] == appointment["id"]
    moved = (await client.get(f"/api/v1/appointments/{appointment['id']}")).json()
    assert (moved["date"], moved["start_time"], moved["status"]) == (
        offer["date"],
        "09:00",
        "RESCHEDULED",
    )
    hold = (await client.get(f"/api/v1/holds/{offer['hold_id']}")).json()
    assert (hold["status"], hold["appointment_id"]) == ("booked", appointment["id"])


async def test_decline_lets_the_slot_go_and_never_offers_it_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    day = next_weekday(4)
    doctor = await short_day_doctor(client, day)
    made = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(day))
    await settle(app)
    first = (await entry(client, made["id"]))["offer"]
    assert first["start_time"] == "09:00"
    declined = await client.post(f"{WAITLIST}{made['id']}/decline")
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["offer"]) == ("waiting", None)
    assert (await client.get(f"/api/v1/holds/{first['hold_id']}")).json()["status"] == "released"

    await settle(app)
    second = (await entry(client, made["id"]))["offer"]
    assert second["start_time"] == "09:30"  # 09:00 is free again, but was offered already
    await client.post(f"{WAITLIST}{made['id']}/decline")
    await settle(app)
    assert (await entry(client, made["id"]))["status"] == "waiting"
    again = await client.post(f"{WAITLIST}{made['id']}/decline")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state")


async def test_cancelling_an_entry_lets_its_offer_go(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    day = next_weekday(1)
    doctor = await short_day_doctor(client, day)
    made = await joined(client, patient=patient_payload(), doctor_id=doctor, **on(day))
    await settle(app)
    hold_id = (await entry(client, made["id"]))["offer"]["hold_id"]
    cancelled = await client.delete(f"{WAITLIST}{made['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["offer"]) == ("cancelled", None)
    assert (await client.get(f"/api/v1/holds/{hold_id}")).json()["status"] == "released"
    again = await client.delete(f"{WAITLIST}{made['id']}")
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    accept = await client.post(f"{WAITLIST}{made['id']}/accept")
    assert (accept.status_code, accept.json()["code"]) == (409, "invalid_state")


async def test_an_entry_goes_with_the_appointment_it_wanted_earlier(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    day = next_weekday(2, weeks_ahead=3)
    doctor = (await create_doctor(client))["id"]
    patient = await create_patient(client)
    appointment = (await book(client, doctor, day, "15:00", patient_id=patient["id"])).json()
    made = await joined(
        client,
        patient_id=patient["id"],
        appointment_id=appointment["id"],
        **on(day, times=[{"start": "09:00", "end": "12:00"}]),
    )
    await settle(app)
    hold_id = (await entry(client, made["id"]))["offer"]["hold_id"]
    assert (await client.delete(f"/api/v1/appointments/{appointment['id']}")).status_code == 200
    after = await entry(client, made["id"])
    assert (after["status"], after["offer"]) == ("cancelled", None)
    assert (await client.get(f"/api/v1/holds/{hold_id}")).json()["status"] == "released"


async def test_entries_are_listed_oldest_first_with_filters(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    day = next_weekday(1, weeks_ahead=4)
    doctor = (await create_doctor(client))["id"]
    patient = await create_patient(client)
    made = [
        await joined(client, patient_id=patient["id"], doctor_id=doctor, **on(day)),
        await joined(client, patient=patient_payload(), specialization="cardiology", **on(day)),
        await joined(client, patient_id=patient["id"], language="Hindi", **on(day)),
    ]
    listed = (await client.get(WAITLIST)).json()
    assert [e["id"] for e in listed] == [e["id"] for e in made]
    mine = (await client.get(WAITLIST, params={"patient_id": patient["id"]})).json()
    assert [e["id"] for e in mine] == [made[0]["id"], made[2]["id"]]
    theirs = (await client.get(WAITLIST, params={"doctor_id": doctor})).json()
    assert [e["id"] for e in theirs] == [made[0]["id"]]
    paged = (await client.get(WAITLIST, params={"limit": 1, "offset": 1})).json()
    assert [e["id"] for e in paged] == [made[1]["id"]]
    waiting = (await client.get(WAITLIST, params={"status": "waiting"})).json()
    assert len(waiting) == 3
    for bad in ({"status": "sleeping"}, {"limit": 0}, {"offset": -1}, {"patient_id": "x"}):
        refused = await client.get(WAITLIST, params=bad)
        assert refused.status_code == 400, (bad, refused.text)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await client.get(f"{WAITLIST}{unknown}")).status_code == 404
    assert (await client.delete(f"{WAITLIST}{unknown}")).status_code == 404
    assert (await client.post(f"{WAITLIST}{unknown}/accept")).status_code == 404


async def test_bad_entries_are_400_naming_the_field_and_write_nothing(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    today = dt.date.today()
    doctor = await create_doctor(client)
    patient = await create_patient(client)
    other = await create_patient(client)
    theirs = await book(client, doctor["id"], next_weekday(1), "10:00", patient_id=other["id"])
    day = next_weekday(2).isoformat()
    base = {"patient_id": patient["id"], "start_date": day, "end_date": day}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "start_date": (today - dt.timedelta(days=1)).isoformat()}, "start_date"),
        ({**base, "end_date": (today + dt.timedelta(days=1)).isoformat()}, "end_date"),
        ({**base, "end_date": (today + dt.timedelta(days=91)).isoformat()}, "end_date"),
        ({**base, "weekdays": ["Monday"]}, "weekdays"),
        ({**base, "weekdays": []}, "weekdays"),
        ({**base, "times": [{"start": "12:00", "end": "11:00"}]}, "times"),
        (
            {
                **base,
                "times": [{"start": "09:00", "end": "11:00"}, {"start": "10:00", "end": "12:00"}],
            },
            "times",
        ),
        ({**base, "appointment_id": theirs.json()["id"]}, "appointment_id"),
        ({**base, "appointment_id": "00000000-0000-4000-8000-000000000000"}, "appointment_id"),
        ({**base, "visit_type_id": "00000000-0000-4000-8000-000000000000"}, "visit_type_id"),
        ({**base, "colour": "blue"}, "colour"),
        ({**base, "notes": "a\x00b"}, "notes"),
        ({k: v for k, v in base.items() if k != "start_date"}, "start_date"),
    ]
    for body, field in cases:
        refused = await client.post(WAITLIST, json=body)
        assert refused.status_code == 400, (body, refused.text)
        fields = [e["field"] for e in refused.json()["errors"]]
        assert any(f.split(".")[0] == field for f in fields), (body, refused.text)
    mine = await book(client, doctor["id"], next_weekday(3), "10:00", patient_id=patient["id"])
    with_doctor = await client.post(
        WAITLIST, json={**base, "appointment_id": mine.json()["id"], "doctor_id": doctor["id"]}
    )
    assert with_doctor.status_code == 400
    assert with_doctor.json()["errors"][0]["field"] == "doctor_id"
    both = await client.post(WAITLIST, json={**base, "patient": patient_payload()})
    assert both.status_code == 400
    count = await connection.execute(text("SELECT count(*) FROM waitlist_entries"))
    assert count.scalar_one() == 0


async def test_reads_are_for_every_role_and_writes_for_admin_and_agent(
    app: FastAPI, connection: AsyncConnection, client: httpx.AsyncClient
) -> None:
    app.state.api_keys = {
        **app.state.api_keys,
        READONLY_KEY: type(next(iter(app.state.api_keys.values())))("reader", "readonly"),
    }
    day = next_weekday(1)
    made = await joined(client, patient=patient_payload(), **on(day))
    async with client_for(app, READONLY_KEY) as reader:
        assert (await reader.get(WAITLIST)).status_code == 200
        assert (await reader.get(f"{WAITLIST}{made['id']}")).status_code == 200
        for method, path in (
            ("POST", WAITLIST),
            ("DELETE", f"{WAITLIST}{made['id']}"),
            ("POST", f"{WAITLIST}{made['id']}/accept"),
            ("POST", f"{WAITLIST}{made['id']}/decline"),
        ):
            response = await reader.request(method, path, json=on(day))
            assert response.status_code == 403, (method, path, response.text)
