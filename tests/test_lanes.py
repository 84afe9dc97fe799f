"""The plain routes in front of availability and booking (app/routes/lanes.py) answer exactly
as the documented operations do, failures included."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import client_for
from tests.factories import booking_payload, create_doctor, next_weekday


def _field_errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    return {e["field"]: e["message"] for e in body["errors"]}


async def test_booking_failures_have_the_spec_shape(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(0)
    url = "/api/v1/appointments/"
    assert "body" in _field_errors(await client.post(url, content=b""))
    assert "body" in _field_errors(
        await client.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    )
    misspelt = booking_payload(doctor["id"], day, "10:00", visit_typ_id="x")
    assert "visit_typ_id" in _field_errors(await client.post(url, json=misspelt))
    assert "doctor_id" in _field_errors(
        await client.post(url, json=booking_payload("not-a-uuid", day, "10:00"))
    )
    good = booking_payload(doctor["id"], day, "10:00")
    long_key = {"Idempotency-Key": "k" * 256}
    assert "idempotency-key" in _field_errors(await client.post(url, json=good, headers=long_key))
    long_call = {"X-Correlation-ID": "c" * 201}
    assert "x-correlation-id" in _field_errors(await client.post(url, json=good, headers=long_call))
    # Without the trailing slash too, and the refusals changed nothing.
    booked = await client.post("/api/v1/appointments", json=good)
    assert booked.status_code == 201, booked.text
    assert len((await client.get(f"/api/v1/appointments/doctor/{doctor['id']}")).json()) == 1


async def test_availability_failures_have_the_spec_shape(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    doctor = await create_doctor(client)
    url = f"/api/v1/appointments/availability/{doctor['id']}"
    assert "doctor_id" in _field_errors(await client.get("/api/v1/appointments/availability/x"))
    assert "date" in _field_errors(await client.get(url, params={"date": "2026-02-30"}))
    assert "visit_type_id" in _field_errors(await client.get(url, params={"visit_type_id": "7"}))
    missing = await client.get(
        "/api/v1/appointments/availability/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12
    )
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    async with client_for(app, None) as anonymous:
        for response in (
            await anonymous.get(url),
            await anonymous.post("/api/v1/appointments/", json={}),
        ):
            assert response.status_code == 401
            assert response.json()["code"] == "unauthorized"


async def test_the_openapi_document_still_describes_both(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    read = document["paths"]["/api/v1/appointments/availability/{doctor_id}"]["get"]
    names = {p["name"] for p in read["parameters"]}
    assert names == {"doctor_id", "date", "start_date", "end_date", "visit_type_id"}
    book = document["paths"]["/api/v1/appointments/"]["post"]
    assert book["requestBody"]["content"]["application/json"]["schema"]
    assert {"201", "400", "409"} <= set(book["responses"])
