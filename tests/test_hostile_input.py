"""Hostile input (spec: "Access roles and patient privacy", "HTTP conventions"): control
characters refused in every text (tab and newline only in free text), bodies over 64 KiB
refused with 413 before they are parsed, unknown fields refused naming them; a refused request
writes nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.conftest import API_KEY
from tests.factories import (
    booking_payload,
    create_doctor,
    create_patient,
    doctor_payload,
    next_weekday,
    patient_payload,
)
from tests.servers import service_processes

LIMIT = 64 * 1024


async def count(connection: AsyncConnection, table: str) -> int:
    value = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
    assert isinstance(value, int)
    return value


def refused_field(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert any(field in e["field"] for e in body["errors"]), body


@pytest.mark.parametrize(
    "name", ["Asha\x00Rao", "Asha\x07Rao", "Asha\nRao", "Asha\tRao", "Asha\rRao", "Asha\x9bRao"]
)
async def test_control_characters_are_refused_in_one_line_text(
    client: httpx.AsyncClient, connection: AsyncConnection, name: str
) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(1)
    refused_field(await client.post("/api/v1/patients/", json=patient_payload(name=name)), "name")
    booking = booking_payload(doctor["id"], day, "09:00", patient=patient_payload(name=name))
    refused_field(await client.post("/api/v1/appointments/", json=booking), "name")
    refused_field(await client.post("/api/v1/doctors/", json=doctor_payload(name=name)), "name")
    languages = doctor_payload(languages=["English", f"Hin{name}di"])
    refused_field(await client.post("/api/v1/doctors/", json=languages), "languages")
    renamed = await client.put(f"/api/v1/doctors/{doctor['id']}", json={"specialization": name})
    refused_field(renamed, "specialization")
    assert await count(connection, "patients") == 0
    assert await count(connection, "appointments") == 0
    assert await count(connection, "doctors") == 1
    names = await connection.execute(text("SELECT specialization FROM doctors"))
    assert [r.specialization for r in names] == [doctor["specialization"]]


async def test_free_text_keeps_tabs_and_line_breaks_and_nothing_else(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    patient = await create_patient(client)
    history = f"/api/v1/patients/{patient['id']}/history"
    kept = await client.post(
        history, json={"symptoms": "cough\n\tdry, 3 days", "notes": "line one\nline two"}
    )
    assert kept.status_code == 201, kept.text
    assert kept.json()["symptoms"] == "cough\n\tdry, 3 days"
    for bad in ("cough\r\n", "cough\x00", "cough\x1b[31m", "cough\x7f"):
        refused_field(await client.post(history, json={"symptoms": bad}), "symptoms")
    assert await count(connection, "patient_history") == 1

    doctor = await create_doctor(client)
    leave = await client.post(
        f"/api/v1/doctors/{doctor['id']}/leaves",
        json={"date": next_weekday(2).isoformat(), "reason": "Conference\nin Pune"},
    )
    assert leave.status_code == 201, leave.text
    described = await client.post(
        "/api/v1/visit-types/",
        json={"name": "Review", "duration_minutes": 20, "description": "Follow-up\n\tshort"},
    )
    assert described.status_code == 201, described.text
    refused = await client.post(
        "/api/v1/visit-types/",
        json={"name": "Review\n2", "duration_minutes": 20, "description": "ok"},
    )
    refused_field(refused, "name")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/doctors/?name=Rao%00", "name"),
        ("/api/v1/doctors/?limit=5&specialization=Cardio%0Alogy", "specialization"),
        ("/api/v1/doctors/?name=a%09b", "name"),
        ("/api/v1/doctors/?name=Rao%0D", "name"),
        ("/api/v1/doctors/?language=Hindi%C2%85", "language"),  # U+0085, a C1 control
        ("/api/v1/doctors/?na%1Fme=Rao", "query"),
        ("/api/v1/appointments/availability?specialization=cardiology%1F", "specialization"),
        ("/api/v1/patients/mobile/%2B14155552671%0A", "path"),
    ],
)
async def test_control_characters_outside_the_body_are_refused(
    client: httpx.AsyncClient, path: str, field: str
) -> None:
    response = await client.get(path)
    refused_field(response, field)
    assert response.json()["errors"][0]["field"] == field
    assert response.headers["X-Request-ID"]


async def test_plain_query_strings_and_paths_still_work(client: httpx.AsyncClient) -> None:
    patient = await create_patient(client, mobile_number="+14155552671")
    assert (
        await client.get("/api/v1/doctors/?name=Asha%20Rao+x&language=Espa%C3%B1ol")
    ).json() == []
    found = await client.get("/api/v1/patients/mobile/%2B1%20415%20555%202671")
    assert found.status_code == 200 and found.json()["id"] == patient["id"]


async def test_control_characters_in_kept_headers_are_refused_and_nothing_is_booked(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    booking = booking_payload(doctor["id"], next_weekday(1), "09:00")
    for name, value in (
        ("X-Correlation-ID", b"call\t7"),
        ("X-Correlation-ID", b"call\x857"),  # Latin-1 on the wire, U+0085 once decoded
        ("Idempotency-Key", b"key\t1"),
    ):
        response = await client.post("/api/v1/appointments/", json=booking, headers={name: value})
        refused_field(response, name.lower())
    assert await count(connection, "appointments") == 0
    assert await count(connection, "patients") == 0


async def test_times_in_a_week_refuse_control_characters(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    for start in ("09:00\n", "09:00\t", "\x0009:00"):
        week = {"monday": [{"start": start, "end": "17:00"}]}
        response = await client.post("/api/v1/doctors/", json=doctor_payload(weekly_hours=week))
        refused_field(response, "weekly_hours.monday.0.start")
    assert await count(connection, "doctors") == 0
    spaced = {"monday": [{"start": " 09:00 ", "end": "17:00"}]}
    response = await client.post("/api/v1/doctors/", json=doctor_payload(weekly_hours=spaced))
    assert response.status_code == 201, response.text


async def test_unknown_fields_are_refused_by_name_and_nothing_is_booked(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(1)
    misspelt = booking_payload(doctor["id"], day, "09:00", visit_typeid="abc")
    refused_field(await client.post("/api/v1/appointments/", json=misspelt), "visit_typeid")
    nested = booking_payload(
        doctor["id"], day, "09:00", patient={**patient_payload(), "mobile": "+14155550199"}
    )
    refused_field(await client.post("/api/v1/appointments/", json=nested), "mobile")
    assert await count(connection, "appointments") == 0
    assert await count(connection, "patients") == 0
    created = await client.post("/api/v1/doctors/", json={**doctor_payload(), "rank": "senior"})
    refused_field(created, "rank")
    updated = await client.put(f"/api/v1/doctors/{doctor['id']}", json={"nmae": "Dr X"})
    refused_field(updated, "nmae")
    assert await count(connection, "doctors") == 1


def body_of(payload: dict[str, Any], size: int) -> bytes:
    """`payload` as a JSON body of exactly `size` bytes (JSON allows trailing whitespace)."""
    raw = json.dumps(payload).encode()
    return raw + b" " * (size - len(raw))


def too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {
        "detail": "The request body is larger than 64 KiB.",
        "code": "payload_too_large",
    }
    assert response.headers["X-Request-ID"]


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    with service_processes(database_url, 1, API_KEY) as (url,):
        yield url


@pytest.fixture
async def http(committed: AsyncEngine, service: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=service, headers=headers, timeout=30) as client:
        yield client


async def test_bodies_over_64_kib_are_refused_before_parsing(
    http: httpx.AsyncClient, committed: AsyncEngine
) -> None:
    big = b'{"name": "' + b"x" * (LIMIT + 10) + b'"}'
    too_large(await http.post("/api/v1/doctors/", content=big))
    # The booking lane reads its body itself, as /mcp does (app/agent/exchange.py).
    too_large(await http.post("/api/v1/appointments/", content=big))
    too_large(
        await http.post(
            "/mcp", content=big, headers={"Accept": "application/json, text/event-stream"}
        )
    )

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 1024 + 8):
            yield b" " * 1024

    # No Content-Length (chunked): refused once the count passes the limit.
    too_large(await http.post("/api/v1/doctors/", content=chunks()))

    # Exactly 64 KiB is read and validated as usual: the doctor is created, once.
    at_limit = await http.post("/api/v1/doctors/", content=body_of(doctor_payload(), LIMIT))
    assert at_limit.status_code == 201, at_limit.text
    async with committed.connect() as conn:
        assert (await conn.scalar(text("SELECT count(*) FROM doctors"))) == 1


async def call_tool(client: httpx.AsyncClient, tool: str, **arguments: object) -> dict[str, object]:
    """One tool call over /mcp (stateless JSON, as the phone agent's client sends it)."""
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    response = await client.post("/mcp", json=request, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()["result"]
    return result


async def test_tool_arguments_refuse_control_characters_with_the_rest_body(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client, name="Dr Asha Rao", specialization="Cardiology")
    patient = await create_patient(client, mobile_number="+14155552671")
    day = next_weekday(1).isoformat()
    slot = {"doctor_id": doctor["id"], "date": day, "start_time": "09:00"}
    new_caller = {"name": "Ravi Kumar", "mobile_number": "+14155550142"}
    for tool, arguments, field in [
        ("find_doctors", {"name": "As\x01ha"}, "name"),
        ("find_doctors", {"specialization": "cardiology\x1f"}, "specialization"),
        ("find_earliest_slots", {"language": "english\x00"}, "language"),
        ("find_patient", {"mobile_number": "+14155552671\n"}, "mobile_number"),
        ("list_patient_appointments", {"mobile_number": "+1415555\t2671"}, "mobile_number"),
        ("get_availability", {"doctor_id": doctor["id"], "start_date": f"{day}\n"}, "start_date"),
        ("hold_slot", {**slot, "call_id": "call\n1\x1b[31m"}, "call_id"),
        ("hold_slot", {**slot, "start_time": "09:00\n"}, "start_time"),
        ("book_appointment", {**slot, "patient": {**new_caller, "name": "R\x07"}}, "patient.name"),
        (
            "book_appointment",
            {**slot, "patient": new_caller, "idempotency_key": "k\x01"},
            "idempotency_key",
        ),
    ]:
        result = await call_tool(client, tool, **arguments)
        assert result["isError"], (tool, arguments, result)
        body = result["structuredContent"]
        assert isinstance(body, dict) and body["code"] == "validation_error", body
        assert [e["field"] for e in body["errors"]] == [field], body
    for table in ("holds", "appointments", "idempotency_keys", "appointment_events"):
        assert await count(connection, table) == 0, table
    assert await count(connection, "patients") == 1
    # The same arguments without the control characters are answered.
    found = await call_tool(client, "find_patient", mobile_number="+1 415 555 2671")
    assert not found["isError"], found
    assert found["structuredContent"] == {**patient, **found["structuredContent"]}


def chunked(size: int, first: bytes = b"") -> AsyncIterator[bytes]:
    """`size` bytes in 1 KiB chunks (`first`, then spaces), sent without a Content-Length."""

    async def chunks() -> AsyncIterator[bytes]:
        rest = first + b" " * (size - len(first))
        for start in range(0, len(rest), 1024):
            yield rest[start : start + 1024]

    return chunks()


@pytest.mark.parametrize("path", ["/api/v1/doctors/", "/api/v1/appointments/", "/mcp"])
async def test_a_chunked_body_over_64_kib_is_refused_as_it_arrives(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    with caplog.at_level(logging.WARNING):
        response = await client.post(path, content=chunked(LIMIT + 1), headers=headers)
    too_large(response)
    assert "content-length" not in response.request.headers
    # Refused before the app saw any of it: nothing it would log as a client gone away.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_chunked_body_of_exactly_64_kib_is_read_as_usual(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    booking = json.dumps(booking_payload(doctor["id"], next_weekday(1), "09:00")).encode()
    headers = {"Content-Type": "application/json"}
    sent = await client.post(
        "/api/v1/appointments/", content=chunked(LIMIT, booking), headers=headers
    )
    assert sent.status_code == 201, sent.text
    assert "content-length" not in sent.request.headers
    padded = booking_payload(doctor["id"], next_weekday(1), "09:30")
    exact = await client.post(
        "/api/v1/appointments/", content=body_of(padded, LIMIT), headers=headers
    )
    assert exact.status_code == 201, exact.text
    assert await count(connection, "appointments") == 2
