"""The front desk over REST (spec: "Front desk"): check-in, completion and no-shows, their
refusals and repeats, the audit trail, the slot they keep or free, and the desk's day view."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.clock import Clock
from tests.factories import book, create_doctor, next_weekday

APPOINTMENTS = "/api/v1/appointments"


async def booked(
    client: httpx.AsyncClient, doctor: str, day: dt.date, start: str
) -> dict[str, Any]:
    response = await book(client, doctor, day, start)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def step(client: httpx.AsyncClient, appointment: str, name: str) -> httpx.Response:
    return await client.post(f"{APPOINTMENTS}/{appointment}/{name}")


def refused(response: httpx.Response, sentence: str) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "invalid_state"
    assert sentence in body["detail"]


async def offered(client: httpx.AsyncClient, doctor: str, day: dt.date) -> list[str]:
    response = await client.get(
        f"{APPOINTMENTS}/availability/{doctor}", params={"date": day.isoformat()}
    )
    assert response.status_code == 200, response.text
    return [s["start_time"] for s in response.json()["days"][0]["slots"]]


async def test_a_visit_is_checked_in_then_completed_and_keeps_its_slot(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(0)
    visit = await booked(client, doctor, day, "10:00")

    refused(await step(client, visit["id"], "check-in"), "only on its date")
    refused(await step(client, visit["id"], "complete"), "A booked appointment cannot be completed")

    clock.set(day, "09:40")
    checked_in = await step(client, visit["id"], "check-in")
    assert checked_in.status_code == 200, checked_in.text
    assert checked_in.json()["status"] == "CHECKED_IN"
    again = await step(client, visit["id"], "check-in")
    assert again.status_code == 200 and again.json() == checked_in.json()

    # A checked-in visit still holds its time: not offered, not bookable, not movable.
    assert "10:00" not in await offered(client, doctor, day)
    taken = await book(client, doctor, day, "10:00")
    assert taken.status_code == 409 and taken.json()["reason"] == "taken"
    refused(await client.delete(f"{APPOINTMENTS}/{visit['id']}"), "checked-in appointment")
    moved = await client.put(
        f"{APPOINTMENTS}/{visit['id']}/reschedule",
        json={"date": day.isoformat(), "start_time": "15:00"},
    )
    refused(moved, "A checked-in appointment cannot be rescheduled")
    refused(await step(client, visit["id"], "no-show"), "checked-in appointment")

    clock.set(day, "10:35")
    completed = await step(client, visit["id"], "complete")
    assert completed.status_code == 200 and completed.json()["status"] == "COMPLETED"
    assert (await step(client, visit["id"], "complete")).json()["status"] == "COMPLETED"
    refused(
        await step(client, visit["id"], "check-in"), "A completed appointment cannot be checked in"
    )
    refused(await client.delete(f"{APPOINTMENTS}/{visit['id']}"), "completed appointment")

    events = (await client.get(f"{APPOINTMENTS}/{visit['id']}/events")).json()
    assert [e["action"] for e in events] == ["created", "checked_in", "completed"]
    assert [(e["before"]["status"], e["after"]["status"]) for e in events[1:]] == [
        ("BOOKED", "CHECKED_IN"),
        ("CHECKED_IN", "COMPLETED"),
    ]
    assert all(e["actor"] == "agent" for e in events)

    listed = await client.get(f"{APPOINTMENTS}/doctor/{doctor}", params={"status": "COMPLETED"})
    assert [a["id"] for a in listed.json()] == [visit["id"]]
    none_booked = await client.get(f"{APPOINTMENTS}/doctor/{doctor}", params={"status": "BOOKED"})
    assert none_booked.json() == []


async def test_a_late_arrival_checks_in_any_time_that_day_and_a_moved_visit_too(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(1)
    visit = await booked(client, doctor, day, "09:00")
    moved = await client.put(
        f"{APPOINTMENTS}/{visit['id']}/reschedule",
        json={"date": day.isoformat(), "start_time": "11:00"},
    )
    assert moved.json()["status"] == "RESCHEDULED"

    clock.set(day, "16:50")  # hours after the visit was due
    late = await step(client, visit["id"], "check-in")
    assert late.status_code == 200 and late.json()["status"] == "CHECKED_IN"

    other = await booked(client, doctor, next_weekday(2), "09:00")
    clock.set(next_weekday(2) + dt.timedelta(days=1), "00:01")
    refused(await step(client, other["id"], "check-in"), "only on its date")


async def test_a_no_show_only_once_the_start_has_passed_and_it_frees_the_time(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(client, buffer_minutes=30))["id"]
    day = next_weekday(2)
    visit = await booked(client, doctor, day, "10:00")

    clock.set(day, "09:30")
    refused(await step(client, visit["id"], "no-show"), "once its start time has passed")
    # The buffer keeps 10:30 away from the booked visit.
    assert "10:30" not in await offered(client, doctor, day)

    clock.set(day, "10:05")
    no_show = await step(client, visit["id"], "no-show")
    assert no_show.status_code == 200 and no_show.json()["status"] == "NO_SHOW"
    assert (await step(client, visit["id"], "no-show")).json()["status"] == "NO_SHOW"
    # A no-show no longer occupies anything: 10:30 is offered and bookable.
    assert "10:30" in await offered(client, doctor, day)
    assert (await book(client, doctor, day, "10:30")).status_code == 201

    refused(
        await step(client, visit["id"], "check-in"), "A no-show appointment cannot be checked in"
    )
    refused(await step(client, visit["id"], "complete"), "no-show appointment")
    refused(await client.delete(f"{APPOINTMENTS}/{visit['id']}"), "no-show appointment")
    listed = await client.get(f"{APPOINTMENTS}/doctor/{doctor}", params={"status": "NO_SHOW"})
    assert [a["id"] for a in listed.json()] == [visit["id"]]
    events = (await client.get(f"{APPOINTMENTS}/{visit['id']}/events")).json()
    assert [e["action"] for e in events] == ["created", "no_show"]


async def test_cancelled_visits_take_no_desk_step_and_unknown_ids_are_404(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(3)
    visit = await booked(client, doctor, day, "10:00")
    assert (await client.delete(f"{APPOINTMENTS}/{visit['id']}")).status_code == 200
    clock.set(day, "10:30")
    for name in ("check-in", "complete", "no-show"):
        refused(await step(client, visit["id"], name), "A cancelled appointment cannot be")
    missing = await step(client, "00000000-0000-4000-8000-000000000000", "check-in")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    malformed = await step(client, "not-an-id", "complete")
    assert malformed.status_code == 400
    assert (
        await client.get(f"{APPOINTMENTS}/doctor/{doctor}", params={"status": "ARRIVED"})
    ).status_code == 400


async def test_check_in_racing_a_cancellation_lets_exactly_one_happen(
    committed: AsyncEngine, committed_client: httpx.AsyncClient, clock: Clock
) -> None:
    client = committed_client
    doctor = (await create_doctor(client))["id"]
    day = next_weekday(4)
    visits = [await booked(client, doctor, day, start) for start in ("09:00", "10:00", "11:00")]
    clock.set(day, "08:30")
    for visit in visits:
        answers = await asyncio.gather(
            *(
                step(client, visit["id"], "check-in")
                if i % 2
                else client.delete(f"{APPOINTMENTS}/{visit['id']}")
                for i in range(8)
            )
        )
        codes = sorted({a.status_code for a in answers})
        final = (await client.get(f"{APPOINTMENTS}/{visit['id']}")).json()["status"]
        assert final in ("CHECKED_IN", "CANCELLED")
        winners = [a for a in answers if a.status_code == 200]
        assert {a.json()["status"] for a in winners} == {final}, codes
        assert all(a.status_code == 409 for a in answers if a not in winners)
        async with committed.connect() as conn:
            actions = (
                (
                    await conn.execute(
                        text(
                            "SELECT action FROM appointment_events WHERE appointment_id = :id "
                            "AND action <> 'created'"
                        ),
                        {"id": visit["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert actions == ["checked_in" if final == "CHECKED_IN" else "cancelled"]


async def test_the_desk_day_shows_each_active_doctor_with_visits_and_free_slots(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    day = next_weekday(0)
    clock.set(day, "08:00")
    rao = await create_doctor(client, name="Dr Zoe Rao")
    adams = await create_doctor(client, name="Dr Ann Adams")
    away = await create_doctor(client, name="Dr Away")
    assert (
        await client.put(f"/api/v1/doctors/{away['id']}", json={"is_active": False})
    ).status_code == 200
    first = await booked(client, rao["id"], day, "10:00")
    second = await booked(client, rao["id"], day, "09:00")
    gone = await booked(client, adams["id"], day, "09:30")
    await client.delete(f"{APPOINTMENTS}/{gone['id']}")

    response = await client.get("/api/v1/desk/day")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["date"], body["today"], body["now"], body["timezone"]) == (
        day.isoformat(),
        day.isoformat(),
        "08:00",
        "UTC",
    )
    names = [d["doctor_name"] for d in body["doctors"]]
    assert "Dr Away" not in names
    ours = [d for d in body["doctors"] if d["doctor_id"] in (rao["id"], adams["id"])]
    assert [d["doctor_name"] for d in ours] == ["Dr Ann Adams", "Dr Zoe Rao"]
    adams_day, rao_day = ours
    assert [(a["start_time"], a["id"]) for a in rao_day["appointments"]] == [
        ("09:00", second["id"]),
        ("10:00", first["id"]),
    ]
    assert rao_day["appointments"][0]["patient_name"].startswith("Patient ")
    assert [a["status"] for a in adams_day["appointments"]] == ["CANCELLED"]
    rao_free = [s["start_time"] for s in rao_day["free_slots"]]
    assert rao_free == await offered(client, rao["id"], day)
    assert "09:00" not in rao_free and "09:30" in rao_free
    assert "09:30" in [s["start_time"] for s in adams_day["free_slots"]]

    sunday = await client.get(
        "/api/v1/desk/day", params={"date": (day - dt.timedelta(days=1)).isoformat()}
    )
    rao_sunday = next(d for d in sunday.json()["doctors"] if d["doctor_id"] == rao["id"])
    assert rao_sunday["free_slots"] == [] and rao_sunday["unavailable_reason"] == "past"
    bad = await client.get("/api/v1/desk/day", params={"date": "2026-02-30"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "date"
    assert (await client.get("/api/v1/desk/day", headers={"X-API-Key": "wrong"})).status_code == 401


async def test_the_desk_page_and_its_files_are_served_with_a_same_origin_policy(
    client: httpx.AsyncClient,
) -> None:
    for path, kind in (
        ("/desk", "text/html"),
        ("/desk/desk.js", "text/javascript"),
        ("/desk/desk.css", "text/css"),
    ):
        response = await client.get(path, headers={"X-API-Key": ""})
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(kind)
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert "http" not in policy and "unsafe" not in policy
    page = (await client.get("/desk")).text
    assert 'src="/desk/desk.js"' in page and "<script>" not in page
