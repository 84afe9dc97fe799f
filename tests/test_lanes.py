"""The plain routes in front of availability, the search and booking (app/routes/lanes.py)
answer exactly as the documented operations do, failures included."""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi import FastAPI

from tests.conftest import client_for, make_settings, started_app
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
    as_text = {"Content-Type": "text/plain"}
    assert "body" in _field_errors(
        await client.post(url, content=json.dumps(good), headers=as_text)
    )
    # Without the trailing slash too (and an empty call id is no call id), and the refusals
    # changed nothing.
    booked = await client.post("/api/v1/appointments", json=good, headers={"X-Correlation-ID": ""})
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
    assert (await client.head(url)).status_code == 405
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


async def test_search_failures_have_the_spec_shape(client: httpx.AsyncClient) -> None:
    url = "/api/v1/appointments/availability"
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"end_date": "tomorrow"}, "end_date"),
        ({"visit_type_id": "7"}, "visit_type_id"),
        ({"doctor_id": "x"}, "doctor_id"),
        ({"specialization": "s" * 201}, "specialization"),
        ({"language": "l" * 101}, "language"),
        ({"consultation_type": "c" * 101}, "consultation_type"),
    ):
        assert field in _field_errors(await client.get(url, params=params)), params
    doctor = await create_doctor(client, specialization="Cardiology")
    found = await client.get(
        url, params={"specialization": "CARDIOLOGY", "limit": "3", "start_date": next_weekday(1)}
    )
    assert found.status_code == 200, found.text
    assert [s["doctor_id"] for s in found.json()] == [doctor["id"]] * 3


async def test_the_openapi_document_still_describes_them(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    search = document["paths"]["/api/v1/appointments/availability"]["get"]
    assert {p["name"] for p in search["parameters"]} == {
        "specialization",
        "language",
        "consultation_type",
        "start_date",
        "end_date",
        "limit",
        "visit_type_id",
        "doctor_id",
        "earliest_time",
        "latest_time",
    }
    read = document["paths"]["/api/v1/appointments/availability/{doctor_id}"]["get"]
    names = {p["name"] for p in read["parameters"]}
    assert names == {"doctor_id", "date", "start_date", "end_date", "visit_type_id"}
    book = document["paths"]["/api/v1/appointments/"]["post"]
    assert book["requestBody"]["content"]["application/json"]["schema"]
    assert {"201", "400", "409"} <= set(book["responses"])


async def test_a_read_with_a_visit_type_holds_one_connection(db: object, database_url: str) -> None:
    """Committed mode, a pool of one: a read that checks a visit type must not ask for a
    second connection while it holds the first (it would wait for itself, then answer 503)."""
    settings = make_settings(db_pool_size=1, db_pool_timeout_seconds=2)
    app, lifespan = await started_app(settings, database_url)
    try:
        async with client_for(app) as client:
            created = await client.post(
                "/api/v1/visit-types/", json={"name": "One connection", "duration_minutes": 60}
            )
            visit_type = created.json()["id"]
            doctor = await create_doctor(client, visit_type_ids=[visit_type])
            day = next_weekday(1).isoformat()
            one = client.get(
                f"/api/v1/appointments/availability/{doctor['id']}",
                params={"date": day, "visit_type_id": visit_type},
            )
            search = client.get(
                "/api/v1/appointments/availability",
                params={"visit_type_id": visit_type, "start_date": day},
            )
            responses = await asyncio.gather(one, search)
            assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
            assert responses[1].json(), "the search found the doctor's slots"
    finally:
        await lifespan.__aexit__(None, None, None)


def test_the_lanes_run_every_dependency_of_the_api_routers(app: FastAPI) -> None:
    """The lanes call `require_api_key` and check the route's roles (`allow`) themselves; a
    dependency of another kind added to the /api/v1 routers must be added to them too, and
    this fails until it is."""
    from app.security import Allow, require_api_key

    found = set()
    for included in app.router.routes:
        context = getattr(included, "include_context", None)
        if context is None or not context.prefix.startswith("/api/v1"):
            continue
        router = context.included_router
        found |= {d.dependency for d in [*context.dependencies, *router.dependencies]}
        found |= {
            d.dependency
            for route in router.routes
            for d in getattr(route, "dependencies", ())
            if not isinstance(d.dependency, Allow)
        }
    assert found == {require_api_key}
