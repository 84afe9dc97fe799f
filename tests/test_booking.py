"""Availability, booking, rescheduling, cancelling and the audit trail over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import OTHER_KEY, client_for, make_settings, started_app
from tests.factories import (
    book,
    booking_payload,
    create_doctor,
    create_patient,
    next_weekday,
    patient_payload,
)

MONDAY = 0


async def slots_of(client: httpx.AsyncClient, doctor_id: str, day: dt.date) -> list[str]:
    response = await client.get(
        f"/api/v1/appointments/availability/{doctor_id}", params={"date": day.isoformat()}
    )
    assert response.status_code == 200, response.text
    (only,) = response.json()["days"]
    return [s["start_time"] for s in only["slots"]]


async def test_availability_shape_and_reasons(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(
        client,
        working_days=["monday", "wednesday"],
        slot_duration_minutes=45,
        working_hours={"start": "09:00", "end": "12:00"},
    )
    monday = next_weekday(MONDAY)
    await client.post(
        f"/api/v1/doctors/{doctor['id']}/leaves",
        json={"date": (monday + dt.timedelta(days=2)).isoformat()},
    )
    response = await client.get(
        f"/api/v1/appointments/availability/{doctor['id']}",
        params={
            "start_date": monday.isoformat(),
            "end_date": (monday + dt.timedelta(days=2)).isoformat(),
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["doctor_id"] == doctor["id"]
    assert body["timezone"] == "UTC"
    assert body["slot_duration_minutes"] == 45
    assert [d["unavailable_reason"] for d in body["days"]] == [None, "non_working_day", "leave"]
    assert body["days"][0]["slots"] == [
        {"start_time": "09:00", "end_time": "09:45"},
        {"start_time": "09:45", "end_time": "10:30"},
        {"start_time": "10:30", "end_time": "11:15"},
        {"start_time": "11:15", "end_time": "12:00"},
    ]

    past = await client.get(
        f"/api/v1/appointments/availability/{doctor['id']}", params={"date": "2020-01-06"}
    )
    assert past.json()["days"][0]["unavailable_reason"] == "past"
    default = await client.get(f"/api/v1/appointments/availability/{doctor['id']}")
    assert [d["date"] for d in default.json()["days"]] == [dt.date.today().isoformat()]

    await client.put(f"/api/v1/doctors/{doctor['id']}", json={"is_active": False})
    inactive = await client.get(
        f"/api/v1/appointments/availability/{doctor['id']}", params={"date": monday.isoformat()}
    )
    assert inactive.json()["days"][0]["unavailable_reason"] == "doctor_inactive"


async def test_availability_range_rules(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    url = f"/api/v1/appointments/availability/{doctor['id']}"
    start = next_weekday(MONDAY)
    ok = await client.get(
        url,
        params={
            "start_date": start.isoformat(),
            "end_date": (start + dt.timedelta(days=61)).isoformat(),
        },
    )
    assert ok.status_code == 200 and len(ok.json()["days"]) == 62
    too_long = await client.get(
        url,
        params={
            "start_date": start.isoformat(),
            "end_date": (start + dt.timedelta(days=62)).isoformat(),
        },
    )
    assert too_long.status_code == 400
    backwards = await client.get(
        url,
        params={
            "start_date": start.isoformat(),
            "end_date": (start - dt.timedelta(days=1)).isoformat(),
        },
    )
    assert backwards.status_code == 400
    assert (await client.get(url, params={"date": "2026-02-30"})).status_code == 400
    assert (await client.get(url, params={"date": "20261207"})).status_code == 400
    for far in ({"date": "9999-12-31"}, {"start_date": "9999-12-01", "end_date": "9999-12-31"}):
        assert (await client.get(url, params=far)).status_code == 400
    search = await client.get(
        "/api/v1/appointments/availability", params={"start_date": "9999-12-31"}
    )
    assert search.status_code == 400
    missing = await client.get(f"/api/v1/appointments/availability/{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_book_every_offered_slot_then_none_left(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, working_hours={"start": "09:00", "end": "12:00"})
    day = next_weekday(MONDAY)
    offered = await slots_of(client, doctor["id"], day)
    assert len(offered) == 6
    for start in offered:
        response = await book(client, doctor["id"], day, start)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "BOOKED"
        assert body["calendar_sync_status"] == "disabled"
        assert body["google_calendar_event_id"] is None
    assert await slots_of(client, doctor["id"], day) == []
    listed = (await client.get(f"/api/v1/appointments/doctor/{doctor['id']}")).json()
    assert [a["start_time"] for a in listed] == offered


@pytest.mark.parametrize(
    ("start", "why"),
    [
        ("09:10", "off grid"),
        ("08:30", "before hours"),
        ("16:45", "ends after hours"),
        ("17:00", "at closing"),
    ],
)
async def test_slots_the_engine_would_not_offer_are_409(
    client: httpx.AsyncClient, start: str, why: str
) -> None:
    doctor = await create_doctor(client)
    response = await book(client, doctor["id"], next_weekday(MONDAY), start)
    assert response.status_code == 409, why
    body = response.json()
    assert body["code"] == "slot_unavailable"
    assert body["alternatives"], why
    assert {"date", "start_time", "end_time"} == set(body["alternatives"][0])


async def test_taken_slot_gives_nearest_alternatives(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(MONDAY)
    assert (await book(client, doctor["id"], day, "10:00")).status_code == 201
    clash = await book(client, doctor["id"], day, "10:00")
    assert clash.status_code == 409
    alternatives = clash.json()["alternatives"]
    # The five nearest (by distance from 10:00), listed in time order.
    assert {a["date"] for a in alternatives} == {day.isoformat()}
    assert [a["start_time"] for a in alternatives] == ["09:00", "09:30", "10:30", "11:00", "11:30"]


async def test_leave_weekend_inactive_and_past_are_409(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    monday = next_weekday(MONDAY)
    await client.post(
        f"/api/v1/doctors/{doctor['id']}/leaves",
        json={"date": monday.isoformat(), "start_time": "09:00", "end_time": "10:00"},
    )
    assert (await book(client, doctor["id"], monday, "09:30")).status_code == 409
    assert (await book(client, doctor["id"], monday, "10:00")).status_code == 201
    saturday = next_weekday(5)
    assert (await book(client, doctor["id"], saturday, "10:00")).status_code == 409
    past = await book(client, doctor["id"], dt.date(2020, 1, 6), "10:00")
    assert past.status_code == 409
    await client.put(f"/api/v1/doctors/{doctor['id']}", json={"is_active": False})
    assert (await book(client, doctor["id"], monday, "11:00")).status_code == 409


async def test_unknown_doctor_or_patient_is_404(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(MONDAY)
    assert (await book(client, str(uuid.uuid4()), day, "10:00")).status_code == 404
    missing_patient = await book(client, doctor["id"], day, "10:00", patient_id=str(uuid.uuid4()))
    assert missing_patient.status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"source": "PHONE"},
        {"date": "next monday"},
        {"date": "9999-12-31"},  # the calendar's last day: no "next day" to compute
        {"date": "0001-01-01"},
        {"start_time": "25:00"},
        {"doctor_id": "nope"},
        {"patient": None},
        {"patient": {"name": "X", "mobile_number": "12"}},
        {"patient_id": "00000000-0000-0000-0000-000000000001"},
    ],
)
async def test_bad_booking_input_is_400_and_changes_nothing(
    client: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    doctor = await create_doctor(client)
    payload = booking_payload(doctor["id"], next_weekday(MONDAY), "10:00")
    payload.update(change)
    if change.get("patient_id"):
        payload["patient"] = patient_payload()  # both given
    response = await client.post("/api/v1/appointments/", json=payload)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    assert (await client.get(f"/api/v1/appointments/doctor/{doctor['id']}")).json() == []


async def test_existing_patient_is_reused_not_overwritten(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    patient = await create_patient(client, name="Original Name", mobile_number="+14155550199")
    day = next_weekday(MONDAY)
    response = await client.post(
        "/api/v1/appointments/",
        json=booking_payload(
            doctor["id"],
            day,
            "10:00",
            patient={"name": "Other Name", "mobile_number": "+1 415 555 0199"},
        ),
    )
    assert response.status_code == 201
    assert response.json()["patient_id"] == patient["id"]
    stored = (await client.get(f"/api/v1/patients/{patient['id']}")).json()
    assert stored["name"] == "Original Name"


async def test_failed_booking_creates_no_patient(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    payload = booking_payload(
        doctor["id"],
        next_weekday(5),
        "10:00",
        patient={"name": "New", "mobile_number": "+14155550177"},
    )
    assert (await client.post("/api/v1/appointments/", json=payload)).status_code == 409
    assert (await client.get("/api/v1/patients/mobile/%2B14155550177")).status_code == 404


# Committed mode: in one transaction now() is frozen, so an unchanged updated_at proves nothing.
async def test_reschedule_frees_the_old_slot_and_audits(
    committed_client: httpx.AsyncClient,
) -> None:
    client = committed_client
    doctor = await create_doctor(client)
    day = next_weekday(MONDAY)
    created = (await book(client, doctor["id"], day, "10:00")).json()
    url = f"/api/v1/appointments/{created['id']}/reschedule"
    moved = await client.put(
        url,
        json={"date": day.isoformat(), "start_time": "11:00"},
        headers={"X-Correlation-ID": "call-7"},
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["id"] == created["id"]
    assert body["status"] == "RESCHEDULED"
    assert (body["start_time"], body["end_time"]) == ("11:00", "11:30")
    offered = await slots_of(client, doctor["id"], day)
    assert "10:00" in offered and "11:00" not in offered
    assert (await book(client, doctor["id"], day, "10:00")).status_code == 201

    same = await client.put(url, json={"date": day.isoformat(), "start_time": "11:00"})
    assert same.status_code == 200 and same.json()["updated_at"] == body["updated_at"]
    taken = await client.put(url, json={"date": day.isoformat(), "start_time": "10:00"})
    assert taken.status_code == 409 and taken.json()["code"] == "slot_unavailable"
    assert (await client.put(url, json={"date": day.isoformat()})).status_code == 400

    events = (await client.get(f"/api/v1/appointments/{created['id']}/events")).json()
    assert [e["action"] for e in events] == ["created", "rescheduled"]
    assert events[1]["before"]["start_time"] == "10:00"
    assert events[1]["after"]["start_time"] == "11:00"
    assert events[1]["actor"] == "agent"
    assert events[1]["correlation_id"] == "call-7"
    assert events[1]["source"] == "AI_CALLING_AGENT"


async def test_reschedule_may_overlap_its_own_old_time(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, slot_duration_minutes=60)
    day = next_weekday(MONDAY)
    created = (await book(client, doctor["id"], day, "10:00")).json()
    await client.put(f"/api/v1/doctors/{doctor['id']}", json={"slot_duration_minutes": 30})
    moved = await client.put(
        f"/api/v1/appointments/{created['id']}/reschedule",
        json={"date": day.isoformat(), "start_time": "10:30"},
    )
    assert moved.status_code == 200, moved.text


# Committed mode: in one transaction now() is frozen, so an unchanged updated_at proves nothing.
async def test_cancel_is_idempotent_and_frees_the_slot(committed_app: Any) -> None:
    async with client_for(committed_app, OTHER_KEY) as admin:
        doctor = await create_doctor(admin)
        day = next_weekday(MONDAY)
        created = (await book(admin, doctor["id"], day, "10:00", source="ADMIN")).json()
        first = await admin.delete(f"/api/v1/appointments/{created['id']}")
        assert first.status_code == 200 and first.json()["status"] == "CANCELLED"
        again = await admin.delete(f"/api/v1/appointments/{created['id']}")
        assert again.status_code == 200 and again.json() == first.json()
        assert "10:00" in await slots_of(admin, doctor["id"], day)
        moved = await admin.put(
            f"/api/v1/appointments/{created['id']}/reschedule",
            json={"date": day.isoformat(), "start_time": "11:00"},
        )
        assert moved.status_code == 409 and moved.json()["code"] == "invalid_state"
        events = (await admin.get(f"/api/v1/appointments/{created['id']}/events")).json()
        assert [(e["action"], e["actor"]) for e in events] == [
            ("created", "admin"),
            ("cancelled", "admin"),
        ]
        assert (await admin.delete(f"/api/v1/appointments/{uuid.uuid4()}")).status_code == 404


async def test_past_appointments_cannot_move_or_cancel(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    patient = await create_patient(client)
    appointment_id = uuid.uuid4()
    await connection.execute(
        text(
            "INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time,"
            " status, source, calendar_sync_status) VALUES (:id, :d, :p, '2020-01-06',"
            " '10:00', '10:30', 'BOOKED', 'ADMIN', 'disabled')"
        ),
        {"id": appointment_id, "d": uuid.UUID(doctor["id"]), "p": uuid.UUID(patient["id"])},
    )
    cancel = await client.delete(f"/api/v1/appointments/{appointment_id}")
    assert cancel.status_code == 409 and cancel.json()["code"] == "invalid_state"
    move = await client.put(
        f"/api/v1/appointments/{appointment_id}/reschedule",
        json={"date": next_weekday(MONDAY).isoformat(), "start_time": "10:00"},
    )
    assert move.status_code == 409 and move.json()["code"] == "invalid_state"


async def test_audit_trail_is_append_only(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    created = (await book(client, doctor["id"], next_weekday(MONDAY), "10:00")).json()
    with pytest.raises(Exception, match="append-only"):
        async with connection.begin_nested():
            await connection.execute(text("UPDATE appointment_events SET actor = 'someone else'"))
    events = (await client.get(f"/api/v1/appointments/{created['id']}/events")).json()
    assert events[0]["actor"] == "agent"


async def test_lists_filter_and_order(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    patient = await create_patient(client)
    monday = next_weekday(0)
    tuesday = monday + dt.timedelta(days=1)
    ids = {}
    for day, start in ((tuesday, "09:00"), (monday, "11:00"), (monday, "09:30")):
        response = await book(client, doctor["id"], day, start, patient_id=patient["id"])
        ids[(day, start)] = response.json()["id"]
    await client.delete(f"/api/v1/appointments/{ids[(monday, '11:00')]}")

    async def starts(url: str, **params: str) -> list[tuple[str, str]]:
        response = await client.get(url, params=params)
        assert response.status_code == 200, response.text
        return [(a["date"], a["start_time"]) for a in response.json()]

    by_doctor = f"/api/v1/appointments/doctor/{doctor['id']}"
    by_patient = f"/api/v1/appointments/patient/{patient['id']}"
    m, t = monday.isoformat(), tuesday.isoformat()
    assert await starts(by_doctor) == [(m, "09:30"), (m, "11:00"), (t, "09:00")]
    assert await starts(by_patient, status="BOOKED") == [(m, "09:30"), (t, "09:00")]
    assert await starts(by_patient, date=m) == [(m, "09:30"), (m, "11:00")]
    assert await starts(by_doctor, start_date=t, end_date=t) == [(t, "09:00")]
    assert await starts(by_doctor, status="CANCELLED") == [(m, "11:00")]
    assert (await client.get(by_doctor, params={"status": "DONE"})).status_code == 400
    assert (await client.get(f"/api/v1/appointments/doctor/{uuid.uuid4()}")).status_code == 404
    one = await client.get(f"/api/v1/appointments/{ids[(tuesday, '09:00')]}")
    assert one.json()["date"] == t


async def test_earliest_slots_across_doctors(client: httpx.AsyncClient) -> None:
    early = await create_doctor(
        client,
        name="Dr Early",
        specialization="Cardiology",
        languages=["Hindi"],
        working_hours={"start": "08:00", "end": "10:00"},
    )
    await create_doctor(
        client,
        name="Dr Late",
        specialization="Cardiology",
        languages=["Hindi"],
        working_hours={"start": "09:00", "end": "10:00"},
    )
    await create_doctor(
        client,
        name="Dr English",
        specialization="Cardiology",
        languages=["English"],
        working_hours={"start": "07:00", "end": "08:00"},
    )
    await create_doctor(
        client,
        name="Dr Off",
        specialization="Cardiology",
        languages=["Hindi"],
        is_active=False,
        working_hours={"start": "06:00", "end": "08:00"},
    )
    monday = next_weekday(MONDAY)
    await book(client, early["id"], monday, "08:00")
    response = await client.get(
        "/api/v1/appointments/availability",
        params={
            "specialization": "cardiology",
            "language": "hindi",
            "start_date": monday.isoformat(),
            "limit": 4,
        },
    )
    assert response.status_code == 200, response.text
    found = [(s["doctor_name"], s["date"], s["start_time"]) for s in response.json()]
    m = monday.isoformat()
    assert found == [
        ("Dr Early", m, "08:30"),
        ("Dr Early", m, "09:00"),
        ("Dr Late", m, "09:00"),
        ("Dr Early", m, "09:30"),
    ]
    assert response.json()[0]["doctor_id"] == early["id"]
    assert response.json()[0]["end_time"] == "09:00"
    none = await client.get(
        "/api/v1/appointments/availability", params={"specialization": "Dermatology"}
    )
    assert none.status_code == 200 and none.json() == []
    bad = await client.get("/api/v1/appointments/availability", params={"limit": 0})
    assert bad.status_code == 400


async def test_dst_clinic_times_are_wall_clock(
    connection: AsyncConnection, database_url: str
) -> None:
    app, lifespan = await started_app(
        make_settings(clinic_timezone="America/New_York"), database_url, connection
    )
    try:
        async with client_for(app) as client:
            doctor = await create_doctor(
                client,
                working_days=["sunday"],
                working_hours={"start": "00:00", "end": "04:00"},
                slot_duration_minutes=60,
            )
            year = dt.date.today().year + 1
            march = dt.date(year, 3, 8)
            spring = march + dt.timedelta(days=(6 - march.weekday()) % 7)  # second Sunday
            offered = await slots_of(client, doctor["id"], spring)
            assert offered == ["00:00", "01:00", "03:00"]
            assert (await book(client, doctor["id"], spring, "02:00")).status_code == 409
            booked = await book(client, doctor["id"], spring, "03:00")
            assert booked.status_code == 201
            assert booked.json()["start_time"] == "03:00"
            body = (
                await client.get(
                    f"/api/v1/appointments/availability/{doctor['id']}",
                    params={"date": spring.isoformat()},
                )
            ).json()
            assert body["timezone"] == "America/New_York"
    finally:
        await lifespan.__aexit__(None, None, None)
