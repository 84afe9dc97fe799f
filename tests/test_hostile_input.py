"""Hostile input (spec: "Access roles and patient privacy", "HTTP conventions"): control
characters refused in every text (tab and newline only in free text), bodies over 64 KiB
refused with 413 before they are parsed, unknown fields refused naming them; a refused request
writes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

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


async def test_control_characters_in_a_query_string_are_refused(
    client: httpx.AsyncClient,
) -> None:
    for query in ("name=Rao%00", "specialization=Cardio%0Alogy", "name=a%09b"):
        response = await client.get(f"/api/v1/doctors/?{query}")
        refused_field(response, "query")
    assert (await client.get("/api/v1/doctors/?name=Asha%20Rao")).status_code == 200


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


def doctor_body_of(size: int) -> bytes:
    """A valid doctor body of exactly `size` bytes (JSON allows trailing whitespace)."""
    raw = json.dumps(doctor_payload()).encode()
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
    # The booking lane reads its body itself; /mcp is the SDK's.
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
    at_limit = await http.post("/api/v1/doctors/", content=doctor_body_of(LIMIT))
    assert at_limit.status_code == 201, at_limit.text
    async with committed.connect() as conn:
        assert (await conn.scalar(text("SELECT count(*) FROM doctors"))) == 1
