"""Visit types, booking rules and the `reason` of a refused booking over HTTP (SPEC: Visit types,
Booking rules, Resources: Availability/Booking/Reschedule)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from tests.factories import book, create_doctor, doctor_payload, next_weekday
from tests.test_schedules_api import (
    API,
    LUNCH_BREAK,
    WEEKDAYS,
    assert_invalid,
    assert_refused,
    day_of,
    grid,
    reason_on,
    starts_on,
    today,
    w,
    weekly_payload,
)

MONDAY, TUESDAY, SATURDAY = 0, 1, 5
MORNING = w("09:00", "12:00")
UNKNOWN_ID = "00000000-0000-4000-8000-00000000abcd"


async def create_visit_type(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    payload = {"name": f"Visit {uuid.uuid4().hex[:10]}", "duration_minutes": 60, **fields}
    response = await client.post(f"{API}/visit-types/", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def move(
    client: httpx.AsyncClient, appointment_id: str, day: dt.date, start: str
) -> httpx.Response:
    return await client.put(
        f"{API}/appointments/{appointment_id}/reschedule",
        json={"date": day.isoformat(), "start_time": start},
    )


def assert_bad_visit_type(response: httpx.Response) -> None:
    assert_invalid(response)
    assert "visit_type_id" in {e["field"] for e in response.json()["errors"]}, response.text


# -- visit types -------------------------------------------------------------------------------


async def test_create_and_get_a_visit_type(client: httpx.AsyncClient) -> None:
    name = f"Long consultation {uuid.uuid4().hex[:8]}"
    created = await create_visit_type(client, name=name, description="An hour with the doctor")
    assert {"id", "name", "duration_minutes", "description", "is_active", "created_at"} <= set(
        created
    )
    assert (created["name"], created["duration_minutes"]) == (name, 60)
    assert (created["description"], created["is_active"]) == ("An hour with the doctor", True)
    fetched = await client.get(f"{API}/visit-types/{created['id']}")
    assert fetched.status_code == 200 and fetched.json() == created
    plain = await create_visit_type(client, duration_minutes=5, is_active=False)
    assert (plain["description"], plain["is_active"]) == (None, False)
    assert (await client.get(f"{API}/visit-types/{UNKNOWN_ID}")).status_code == 404


async def test_duplicate_name_ignoring_case_is_409(client: httpx.AsyncClient) -> None:
    name = f"Check-up {uuid.uuid4().hex[:8]}"
    await create_visit_type(client, name=name)
    again = await client.post(
        f"{API}/visit-types/", json={"name": name.upper(), "duration_minutes": 15}
    )
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "duplicate_name"
    other = await create_visit_type(client)
    rename = await client.patch(f"{API}/visit-types/{other['id']}", json={"name": name.lower()})
    assert rename.status_code == 409 and rename.json()["code"] == "duplicate_name"


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "Too short", "duration_minutes": 4},
        {"name": "Too long", "duration_minutes": 481},
        {"name": "Not a number", "duration_minutes": "sixty"},
        {"duration_minutes": 30},
        {"name": "No length"},
        {"name": "Extra", "duration_minutes": 30, "colour": "red"},
    ],
    ids=["4-minutes", "481-minutes", "not-a-number", "no-name", "no-duration", "unknown-field"],
)
async def test_invalid_visit_type_is_400(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    assert_invalid(await client.post(f"{API}/visit-types/", json=payload))


async def test_list_by_name_with_is_active_filter(client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = {
        (await create_visit_type(client, name=f"{tag} {suffix}", is_active=active))["id"]
        for suffix, active in (("Beta", True), ("Gamma", False), ("Alpha", True))
    }

    async def names(**params: str) -> list[str]:
        response = await client.get(f"{API}/visit-types/", params={"limit": "500", **params})
        assert response.status_code == 200, response.text
        return [v["name"] for v in response.json() if v["id"] in ids]

    assert await names() == [f"{tag} Alpha", f"{tag} Beta", f"{tag} Gamma"]
    assert await names(is_active="true") == [f"{tag} Alpha", f"{tag} Beta"]
    assert await names(is_active="false") == [f"{tag} Gamma"]


async def test_patch_and_put_are_partial(client: httpx.AsyncClient) -> None:
    created = await create_visit_type(client, description="old")
    url = f"{API}/visit-types/{created['id']}"
    patched = await client.patch(url, json={"description": "new"})
    assert patched.status_code == 200, patched.text
    assert patched.json() == {**created, "description": "new"}
    put = await client.put(url, json={"duration_minutes": 45})
    assert put.status_code == 200, put.text
    assert put.json() == {**created, "description": "new", "duration_minutes": 45}
    off = await client.patch(url, json={"is_active": False})
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert (await client.get(url)).json() == off.json()
    assert_invalid(await client.patch(url, json={"duration_minutes": 481}))
    assert (await client.patch(f"{API}/visit-types/{UNKNOWN_ID}", json={})).status_code == 404


async def test_doctor_visit_type_ids(client: httpx.AsyncClient) -> None:
    a, b = await create_visit_type(client), await create_visit_type(client)
    assert (await create_doctor(client))["visit_type_ids"] == []
    doctor = await create_doctor(client, visit_type_ids=[a["id"], b["id"]])
    assert sorted(doctor["visit_type_ids"]) == sorted([a["id"], b["id"]])
    url = f"{API}/doctors/{doctor['id']}"
    narrowed = await client.put(url, json={"visit_type_ids": [b["id"]]})
    assert narrowed.status_code == 200 and narrowed.json()["visit_type_ids"] == [b["id"]]
    unknown = [a["id"], UNKNOWN_ID]
    body = doctor_payload(visit_type_ids=unknown)
    assert_invalid(await client.post(f"{API}/doctors/", json=body))
    assert_invalid(await client.put(url, json={"visit_type_ids": unknown}))
    assert (await client.get(url)).json()["visit_type_ids"] == [b["id"]]


async def doctor_offering(
    client: httpx.AsyncClient, visit_type: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    fields.setdefault("working_hours", MORNING)
    return await create_doctor(client, visit_type_ids=[visit_type["id"]], **fields)


async def test_availability_with_a_longer_visit_type(client: httpx.AsyncClient) -> None:
    hour = await create_visit_type(client)
    doctor = await doctor_offering(client, hour)  # 09:00-12:00 on a 30-minute grid
    monday = next_weekday(MONDAY)
    response = await client.get(
        f"{API}/appointments/availability/{doctor['id']}",
        params={"date": monday.isoformat(), "visit_type_id": hour["id"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["slot_duration_minutes"] == 30
    (day,) = response.json()["days"]
    assert day["slots"] == [
        {"start_time": s, "end_time": e}
        for s, e in zip(grid("09:00", "11:00"), grid("10:00", "12:00"), strict=True)
    ]


async def test_visit_type_not_offered_or_inactive_is_400(client: httpx.AsyncClient) -> None:
    offered, retired, foreign = [await create_visit_type(client) for _ in range(3)]
    doctor = await create_doctor(client, visit_type_ids=[offered["id"], retired["id"]])
    await client.patch(f"{API}/visit-types/{retired['id']}", json={"is_active": False})
    monday = next_weekday(MONDAY)
    url = f"{API}/appointments/availability/{doctor['id']}"
    for bad in (foreign["id"], retired["id"], UNKNOWN_ID):
        params = {"date": monday.isoformat(), "visit_type_id": bad}
        assert_bad_visit_type(await client.get(url, params=params))
        assert_bad_visit_type(await book(client, doctor["id"], monday, "10:00", visit_type_id=bad))
    listed = await client.get(f"{API}/appointments/doctor/{doctor['id']}")
    assert listed.json() == []


async def test_booking_with_a_visit_type_lasts_its_duration(client: httpx.AsyncClient) -> None:
    hour = await create_visit_type(client)
    doctor = await doctor_offering(client, hour)
    monday = next_weekday(MONDAY)
    booked = await book(client, doctor["id"], monday, "10:00", visit_type_id=hour["id"])
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert (body["start_time"], body["end_time"], body["visit_type_id"]) == (
        "10:00",
        "11:00",
        hour["id"],
    )
    assert await starts_on(client, doctor["id"], monday) == ["09:00", "09:30", "11:00", "11:30"]
    assert await starts_on(client, doctor["id"], monday, visit_type_id=hour["id"]) == [
        "09:00",
        "11:00",
    ]
    assert_refused(await book(client, doctor["id"], monday, "10:30"), "taken")
    plain = (await book(client, doctor["id"], monday, "09:30")).json()
    assert (plain["end_time"], plain["visit_type_id"]) == ("10:00", None)
    too_long = await book(client, doctor["id"], monday, "11:30", visit_type_id=hour["id"])
    assert too_long.status_code == 409 and too_long.json()["code"] == "slot_unavailable"


async def test_reschedule_keeps_length_and_visit_type(client: httpx.AsyncClient) -> None:
    hour = await create_visit_type(client)
    doctor = await doctor_offering(client, hour)
    monday = next_weekday(MONDAY)
    booked = await book(client, doctor["id"], monday, "09:00", visit_type_id=hour["id"])
    moved = await move(client, booked.json()["id"], monday, "10:30")
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["id"], body["status"]) == (booked.json()["id"], "RESCHEDULED")
    assert (body["start_time"], body["end_time"], body["visit_type_id"]) == (
        "10:30",
        "11:30",
        hour["id"],
    )
    assert await starts_on(client, doctor["id"], monday) == ["09:00", "09:30", "10:00", "11:30"]


async def test_search_with_a_visit_type(client: httpx.AsyncClient) -> None:
    hour = await create_visit_type(client)
    specialization = f"Speciality {uuid.uuid4().hex[:8]}"
    offers = await doctor_offering(client, hour, specialization=specialization)
    other = await create_doctor(client, specialization=specialization, working_hours=MORNING)
    monday = next_weekday(MONDAY).isoformat()
    params = {"specialization": specialization, "start_date": monday, "end_date": monday}
    url = f"{API}/appointments/availability"
    found = await client.get(url, params={**params, "limit": "50", "visit_type_id": hour["id"]})
    assert found.status_code == 200, found.text
    assert {s["doctor_id"] for s in found.json()} == {offers["id"]}
    assert [(s["start_time"], s["end_time"]) for s in found.json()] == list(
        zip(grid("09:00", "11:00"), grid("10:00", "12:00"), strict=True)
    )
    everyone = (await client.get(url, params={**params, "limit": "50"})).json()
    assert {s["doctor_id"] for s in everyone} == {offers["id"], other["id"]}


# -- booking rules -----------------------------------------------------------------------------


async def test_rule_defaults_and_limits(client: httpx.AsyncClient) -> None:
    defaults = await create_doctor(client)
    assert [defaults[k] for k in ("min_notice_minutes", "booking_horizon_days")] == [0, None]
    assert [defaults[k] for k in ("buffer_minutes", "max_appointments_per_day")] == [0, None]
    limits = {
        "min_notice_minutes": 43200,
        "booking_horizon_days": 730,
        "buffer_minutes": 240,
        "max_appointments_per_day": 500,
    }
    doctor = await create_doctor(client, **limits)
    assert {k: doctor[k] for k in limits} == limits


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("buffer_minutes", 241),
        ("buffer_minutes", -1),
        ("min_notice_minutes", -1),
        ("min_notice_minutes", 43201),
        ("booking_horizon_days", 0),
        ("booking_horizon_days", 731),
        ("max_appointments_per_day", 0),
        ("max_appointments_per_day", 501),
    ],
)
async def test_invalid_rule_values_are_400(
    client: httpx.AsyncClient, field: str, value: int
) -> None:
    assert_invalid(await client.post(f"{API}/doctors/", json=doctor_payload(**{field: value})))
    doctor = await create_doctor(client)
    assert_invalid(await client.put(f"{API}/doctors/{doctor['id']}", json={field: value}))


async def test_buffer_minutes(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, working_hours=MORNING, buffer_minutes=15)
    monday = next_weekday(MONDAY)
    assert (await book(client, doctor["id"], monday, "10:00")).status_code == 201
    assert await starts_on(client, doctor["id"], monday) == ["09:00", "11:00", "11:30"]
    assert_refused(await book(client, doctor["id"], monday, "10:30"), "taken")
    assert_refused(await book(client, doctor["id"], monday, "09:30"), "taken")
    assert (await book(client, doctor["id"], monday, "11:00")).status_code == 201


async def test_reschedule_ignores_its_own_buffer(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, working_hours=MORNING, buffer_minutes=15)
    monday = next_weekday(MONDAY)
    booked = (await book(client, doctor["id"], monday, "10:00")).json()
    moved = await move(client, booked["id"], monday, "10:30")
    assert moved.status_code == 200, moved.text
    assert (moved.json()["start_time"], moved.json()["end_time"]) == ("10:30", "11:00")


async def test_max_appointments_per_day(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, max_appointments_per_day=2)
    monday = next_weekday(MONDAY)
    tuesday = monday + dt.timedelta(days=1)
    first = (await book(client, doctor["id"], monday, "09:00")).json()
    second = (await book(client, doctor["id"], monday, "10:00")).json()
    day = await day_of(client, doctor["id"], monday)
    assert (day["unavailable_reason"], day["slots"]) == ("daily_limit", [])
    assert_refused(await book(client, doctor["id"], monday, "11:00"), "daily_limit")
    within = await move(client, first["id"], monday, "11:00")
    assert within.status_code == 200, within.text
    assert await reason_on(client, doctor["id"], monday) == "daily_limit"
    away = await move(client, second["id"], tuesday, "10:00")
    assert away.status_code == 200, away.text
    assert await reason_on(client, doctor["id"], monday) is None
    assert "10:00" in await starts_on(client, doctor["id"], monday)


async def test_booking_horizon_days(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, working_days=list(WEEKDAYS), booking_horizon_days=10)
    last, beyond = today() + dt.timedelta(days=10), today() + dt.timedelta(days=11)
    response = await client.get(
        f"{API}/appointments/availability/{doctor['id']}",
        params={"start_date": last.isoformat(), "end_date": beyond.isoformat()},
    )
    assert response.status_code == 200, response.text
    days = response.json()["days"]
    assert [d["unavailable_reason"] for d in days] == [None, "beyond_horizon"]
    assert days[0]["slots"] and days[1]["slots"] == []
    assert_refused(await book(client, doctor["id"], beyond, "10:00"), "beyond_horizon")
    assert (await book(client, doctor["id"], last, "10:00")).status_code == 201


async def test_min_notice_minutes(client: httpx.AsyncClient) -> None:
    now = dt.datetime.now(dt.UTC)
    if now.hour >= 21:
        pytest.skip("needs two hours of today left after the notice (UTC time is after 21:00)")
    doctor = await create_doctor(
        client,
        working_days=list(WEEKDAYS),
        working_hours=w("00:00", "23:55"),
        slot_duration_minutes=5,
        min_notice_minutes=120,
    )
    day = await day_of(client, doctor["id"], now.date())
    assert day["unavailable_reason"] is None
    starts = [
        dt.datetime.combine(now.date(), dt.time.fromisoformat(s["start_time"]), dt.UTC)
        for s in day["slots"]
    ]
    notice = now + dt.timedelta(minutes=120)
    # The first slot is the first 5-minute step after now + notice (a minute's leeway for a
    # server clock read at the start of the test's transaction).
    assert notice - dt.timedelta(minutes=1) <= starts[0] <= notice + dt.timedelta(minutes=6)
    inside = (starts[0] - dt.timedelta(minutes=10)).strftime("%H:%M")
    assert_refused(await book(client, doctor["id"], now.date(), inside), "too_soon")
    outside = (starts[0] + dt.timedelta(minutes=30)).strftime("%H:%M")
    assert (await book(client, doctor["id"], now.date(), outside)).status_code == 201


# -- the reason of a refused booking -----------------------------------------------------------


async def test_reason_past(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, working_days=list(WEEKDAYS))
    yesterday = today() - dt.timedelta(days=1)
    assert_refused(await book(client, doctor["id"], yesterday, "10:00"), "past")


async def test_reason_doctor_inactive(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, is_active=False)
    assert_refused(
        await book(client, doctor["id"], next_weekday(MONDAY), "10:00"), "doctor_inactive"
    )
    # First of the reasons that apply: inactive comes before non_working_day.
    saturday = next_weekday(SATURDAY)
    assert_refused(await book(client, doctor["id"], saturday, "10:00"), "doctor_inactive")


async def test_reason_non_working_day(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)  # Monday to Friday
    refused = await book(client, doctor["id"], next_weekday(SATURDAY), "10:00")
    assert_refused(refused, "non_working_day")
    assert refused.json()["alternatives"], "a working doctor has free slots nearby"


async def test_reason_leave(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    monday = next_weekday(MONDAY)
    leave = {"date": monday.isoformat(), "start_time": "10:00", "end_time": "11:00"}
    assert (
        await client.post(f"{API}/doctors/{doctor['id']}/leaves", json=leave)
    ).status_code == 201
    assert_refused(await book(client, doctor["id"], monday, "10:30"), "leave")
    assert (await book(client, doctor["id"], monday, "11:00")).status_code == 201


async def test_reason_outside_hours(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    monday = next_weekday(MONDAY)
    for start in ("10:15", "08:30", "17:00"):
        assert_refused(await book(client, doctor["id"], monday, start), "outside_hours")
    created = await client.post(f"{API}/doctors/", json=weekly_payload({"monday": LUNCH_BREAK}))
    assert created.status_code == 201, created.text
    lunch = await book(client, created.json()["id"], monday, "13:00")
    assert_refused(lunch, "outside_hours")


async def test_reason_taken(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    monday = next_weekday(MONDAY)
    assert (await book(client, doctor["id"], monday, "10:00")).status_code == 201
    clash = await book(client, doctor["id"], monday, "10:00")
    assert_refused(clash, "taken")
    alternatives = clash.json()["alternatives"]
    assert {"date", "start_time", "end_time"} <= set(alternatives[0])
    # The nearest five, in time order.
    assert [(a["date"], a["start_time"]) for a in alternatives] == [
        (monday.isoformat(), start) for start in ("09:00", "09:30", "10:30", "11:00", "11:30")
    ]
