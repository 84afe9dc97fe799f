"""The phone agent's second round, through the official SDK's client over HTTP against a real
service process started with the default settings (no default phone region): misspelt
arguments refused, times of day, moves between doctors, patients corrected, empty days
explained, the server's version, and the metrics a tool's change moves."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from sqlalchemy.ext.asyncio import AsyncEngine

from app.services.patient_service import ASK_FOR_COUNTRY_CODE
from tests.conftest import API_KEY
from tests.factories import booking_payload, doctor_payload, next_weekday
from tests.servers import service_processes
from tests.test_mcp import ok, said

API = "/api/v1"


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    with service_processes(database_url, 1, API_KEY, {"CLINIC_TIMEZONE": "Asia/Kolkata"}) as urls:
        yield urls[0]


@pytest.fixture
async def rest(db: AsyncEngine, service: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as client:
        yield client


@asynccontextmanager
async def connected(base: str) -> AsyncIterator[tuple[ClientSession, Any]]:
    """An SDK client session, and what the server answered to `initialize`."""
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": API_KEY}, timeout=30) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        yield session, await session.initialize()


Call = Callable[..., Awaitable[CallToolResult]]


@asynccontextmanager
async def calling(base: str) -> AsyncIterator[Call]:
    """A tool caller on an SDK client session (entered and left in the test's own task, as
    the SDK's task groups need)."""
    async with connected(base) as (session, _):

        async def call(tool: str, **arguments: Any) -> CallToolResult:
            return await session.call_tool(tool, arguments)

        yield call


def refused(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def new_doctor(rest: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await rest.post(f"{API}/doctors/", json=doctor_payload(**fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def appointments_of(rest: httpx.AsyncClient, doctor_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await rest.get(f"{API}/appointments/doctor/{doctor_id}")).json()
    return found


def spoken(day: dt.date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


async def test_an_unknown_argument_is_refused_and_nothing_is_done(
    rest: httpx.AsyncClient, service: str
) -> None:
    async with calling(service) as call:
        doctor = await new_doctor(rest)
        day = next_weekday(1)
        patient = {"name": "Ravi Kumar", "mobile_number": "+91 98765 43210"}
        misspelt = await call(
            "book_appointment",
            doctor_id=doctor["id"],
            date=day.isoformat(),
            strat_time="10:00",
            patient=patient,
        )
        body = refused(misspelt)
        assert (body["code"], [e["field"] for e in body["errors"]]) == (
            "validation_error",
            ["strat_time"],
        )
        assert "strat_time" in said(misspelt)
        assert await appointments_of(rest, doctor["id"]) == []

        booked = ok(
            await call(
                "book_appointment",
                doctor_id=doctor["id"],
                date=day.isoformat(),
                start_time="10:00",
                patient=patient,
            )
        )
        # A required argument misspelt is named too (the SDK would only miss `start_time`).
        move = await call(
            "reschedule_appointment",
            appointment_id=booked["id"],
            date=day.isoformat(),
            strat_time="11:00",
            colour="blue",
        )
        assert [e["field"] for e in refused(move)["errors"]] == ["strat_time", "colour"]
        after = await appointments_of(rest, doctor["id"])
        assert [(a["start_time"], a["status"]) for a in after] == [("10:00", "BOOKED")]


async def test_the_server_names_the_services_version(rest: httpx.AsyncClient, service: str) -> None:
    version = (await rest.get("/openapi.json")).json()["info"]["version"]
    assert version
    async with connected(service) as (_, initialized):
        assert initialized.server_info.version == version


async def test_the_earliest_slots_within_a_part_of_the_day(
    rest: httpx.AsyncClient, service: str
) -> None:
    async with calling(service) as call:
        doctor = await new_doctor(rest, name="Dr Kavya Menon", specialization="Neurology")
        day = next_weekday(2)
        found = await call(
            "find_earliest_slots",
            specialization="Neurology",
            start_date=day.isoformat(),
            earliest_time="15:00",
            latest_time="16:00",
            limit=5,
        )
        items = ok(found)["items"]
        assert [(s["doctor_id"], s["start_time"]) for s in items] == [
            (doctor["id"], "15:00"),
            (doctor["id"], "15:30"),
            (doctor["id"], "15:00"),
            (doctor["id"], "15:30"),
            (doctor["id"], "15:00"),
        ]
        assert said(found).startswith(f"Dr Kavya Menon is free on {spoken(day)} at 15:00")
        backwards = await call(
            "find_earliest_slots",
            specialization="Neurology",
            earliest_time="16:00",
            latest_time="09:00",
        )
        assert [e["field"] for e in refused(backwards)["errors"]] == ["earliest_time"]


async def test_a_visit_moves_to_another_doctor(rest: httpx.AsyncClient, service: str) -> None:
    async with calling(service) as call:
        first = await new_doctor(rest, name="Dr Asha Rao")
        other = await new_doctor(rest, name="Dr Meera Iyer")
        day = next_weekday(3)
        booked = (
            await rest.post(f"{API}/appointments/", json=booking_payload(first["id"], day, "10:00"))
        ).json()
        moved = await call(
            "reschedule_appointment",
            appointment_id=booked["id"],
            date=day.isoformat(),
            start_time="12:00",
            doctor_id=other["id"],
            call_id="call-12",
        )
        assert (ok(moved)["doctor_id"], ok(moved)["start_time"]) == (other["id"], "12:00")
        assert said(moved) == f"Moved to {spoken(day)} at 12:00 with Dr Meera Iyer."
        events = (await rest.get(f"{API}/appointments/{booked['id']}/events")).json()
        assert (events[-1]["before"]["doctor_id"], events[-1]["after"]["doctor_id"]) == (
            first["id"],
            other["id"],
        )
        assert events[-1]["correlation_id"] == "call-12"

        nobody = await call(
            "reschedule_appointment",
            appointment_id=booked["id"],
            date=day.isoformat(),
            start_time="12:00",
            doctor_id=str(uuid.uuid4()),
        )
        assert refused(nobody)["code"] == "not_found"


async def test_update_patient_corrects_what_is_given(rest: httpx.AsyncClient, service: str) -> None:
    async with calling(service) as call:
        created = await rest.post(
            f"{API}/patients/",
            json={"name": "Ravi Kumaar", "mobile_number": "+91 98765 00001", "gender": "male"},
        )
        patient = created.json()
        updated = await call(
            "update_patient",
            patient_id=patient["id"],
            name="Ravi Kumar",
            email="Ravi.Kumar@Mail.example",
            call_id="call-5",
        )
        body = ok(updated)
        assert (body["name"], body["email"], body["gender"], body["mobile_number"]) == (
            "Ravi Kumar",
            "ravi.kumar@mail.example",
            "male",
            "+919876500001",
        )
        assert said(updated) == "Ravi Kumar's details are updated."
        assert (await rest.get(f"{API}/patients/{patient['id']}")).json()["name"] == "Ravi Kumar"
        log = (await rest.get(f"{API}/patients/{patient['id']}/access-log")).json()
        mcp_entry = next(e for e in log if e["via"] == "mcp update_patient")
        assert (mcp_entry["actor"], mcp_entry["correlation_id"]) == ("agent", "call-5")

        bad = await call("update_patient", patient_id=patient["id"], email="not an address")
        assert [e["field"] for e in refused(bad)["errors"]] == ["email"]
        nobody = await call("update_patient", patient_id=str(uuid.uuid4()), name="X")
        assert refused(nobody)["code"] == "not_found"
        other = await rest.post(
            f"{API}/patients/", json={"name": "Someone", "mobile_number": "+91 98765 00002"}
        )
        taken = await call(
            "update_patient", patient_id=other.json()["id"], mobile_number="+91 98765 00001"
        )
        assert refused(taken)["code"] == "duplicate_mobile"


async def test_an_empty_day_says_why_and_when_the_doctor_is_next_free(
    rest: httpx.AsyncClient, service: str
) -> None:
    async with calling(service) as call:
        doctor = await new_doctor(rest, name="Dr Asha Rao", max_appointments_per_day=1)
        saturday = next_weekday(5)
        monday = saturday + dt.timedelta(days=2)
        weekend = await call(
            "get_availability",
            doctor_id=doctor["id"],
            start_date=saturday.isoformat(),
            end_date=(saturday + dt.timedelta(days=1)).isoformat(),
        )
        assert said(weekend) == (
            f"Dr Asha Rao has no free slot from {spoken(saturday)} to "
            f"{spoken(saturday + dt.timedelta(days=1))}: the doctor does not work that day. "
            f"The first free slot after that is {spoken(monday)} at 09:00."
        )
        assert [d["unavailable_reason"] for d in ok(weekend)["days"]] == ["non_working_day"] * 2

        holiday = await rest.put(
            f"{API}/clinic/holidays/{monday.isoformat()}", json={"name": "Fair"}
        )
        assert holiday.status_code == 201
        tuesday = monday + dt.timedelta(days=1)
        assert (
            await rest.post(
                f"{API}/appointments/", json=booking_payload(doctor["id"], tuesday, "09:00")
            )
        ).status_code == 201
        mixed = await call(
            "get_availability",
            doctor_id=doctor["id"],
            start_date=monday.isoformat(),
            end_date=tuesday.isoformat(),
        )
        assert said(mixed) == (
            f"Dr Asha Rao has no free slot from {spoken(monday)} to {spoken(tuesday)}: it is a "
            "clinic holiday (1 day); the doctor's day is fully booked (1 day). "
            f"The first free slot after that is {spoken(tuesday + dt.timedelta(days=1))} at 09:00."
        )

        closed = await new_doctor(rest, name="Dr Retired", is_active=False)
        gone = await call("get_availability", doctor_id=closed["id"], start_date=monday.isoformat())
        assert said(gone) == (
            f"Dr Retired has no free slot on {spoken(monday)}: the doctor is not taking "
            "appointments. There is none in the 8 weeks after that either."
        )


async def test_a_number_without_its_country_code_is_a_sentence_to_say(
    rest: httpx.AsyncClient, service: str
) -> None:
    async with calling(service) as call:
        found = await call("find_patient", mobile_number="98765 43210")
        assert (
            said(found) == ASK_FOR_COUNTRY_CODE == "Please give the number with its country code."
        )
        body = refused(found)
        assert (body["code"], [e["field"] for e in body["errors"]]) == (
            "validation_error",
            ["mobile_number"],
        )
        doctor = await new_doctor(rest)
        booking = await call(
            "book_appointment",
            doctor_id=doctor["id"],
            date=next_weekday(1).isoformat(),
            start_time="10:00",
            patient={"name": "Ravi Kumar", "mobile_number": "98765 43210"},
        )
        assert said(booking) == ASK_FOR_COUNTRY_CODE
        assert [e["field"] for e in refused(booking)["errors"]] == ["patient.mobile_number"]
        # REST says the same to a person.
        response = await rest.post(
            f"{API}/patients/", json={"name": "Ravi Kumar", "mobile_number": "98765 43210"}
        )
        assert (response.status_code, response.json()["detail"]) == (400, ASK_FOR_COUNTRY_CODE)


_COUNTER = re.compile(r"^(appointment_changes_total|conflicts_total)\{(.*)\} (\S+)$")


async def counters(rest: httpx.AsyncClient) -> dict[str, float]:
    text = (await rest.get("/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if match := _COUNTER.match(line):
            found[f"{match[1]}{{{match[2]}}}"] = float(match[3])
    return found


async def moved_since(rest: httpx.AsyncClient, before: dict[str, float]) -> dict[str, float]:
    after = await counters(rest)
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


async def test_a_tools_changes_move_the_metrics_as_rest_does(
    rest: httpx.AsyncClient, service: str
) -> None:
    async with calling(service) as call:
        first = await new_doctor(rest)
        other = await new_doctor(rest)
        day = next_weekday(4)

        before = await counters(rest)
        booked = await rest.post(
            f"{API}/appointments/", json=booking_payload(first["id"], day, "09:00")
        )
        appointment = booked.json()["id"]
        taken = await rest.post(
            f"{API}/appointments/", json=booking_payload(first["id"], day, "09:00")
        )
        assert taken.status_code == 409
        await rest.put(
            f"{API}/appointments/{appointment}/reschedule",
            json={"date": day.isoformat(), "start_time": "10:00", "doctor_id": other["id"]},
        )
        await rest.delete(f"{API}/appointments/{appointment}")
        by_rest = await moved_since(rest, before)

        before = await counters(rest)
        patient = {"name": "Ravi Kumar", "mobile_number": "+91 98765 43299"}
        slot = {"doctor_id": first["id"], "date": day.isoformat(), "start_time": "11:00"}
        appointment = ok(await call("book_appointment", patient=patient, **slot))["id"]
        refused(await call("book_appointment", patient=patient, **slot))
        ok(
            await call(
                "reschedule_appointment",
                appointment_id=appointment,
                date=day.isoformat(),
                start_time="12:00",
                doctor_id=other["id"],
            )
        )
        ok(await call("cancel_appointment", appointment_id=appointment))
        by_mcp = await moved_since(rest, before)

        assert (
            by_rest
            == by_mcp
            == {
                'appointment_changes_total{action="booked"}': 1,
                'appointment_changes_total{action="rescheduled"}': 1,
                'appointment_changes_total{action="cancelled"}': 1,
                'conflicts_total{code="slot_unavailable"}': 1,
            }
        )
