from __future__ import annotations

import urllib.parse
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import client_for, make_settings, started_app
from tests.factories import create_patient, patient_payload


async def test_create_normalises_mobile_and_finds_any_spelling(client: httpx.AsyncClient) -> None:
    patient = await create_patient(client, mobile_number="+1 (415) 555-2671")
    assert patient["mobile_number"] == "+14155552671"
    for spelling in ("+14155552671", "+1 415 555 2671", "+1-415-555-2671", "0014155552671"):
        path = "/api/v1/patients/mobile/" + urllib.parse.quote(spelling, safe="")
        response = await client.get(path)
        assert response.status_code == 200, (spelling, response.text)
        assert response.json()["id"] == patient["id"]
    unknown = await client.get("/api/v1/patients/mobile/%2B14155550000")
    assert unknown.status_code == 404
    garbage = await client.get("/api/v1/patients/mobile/abc")
    assert garbage.status_code == 400


async def test_duplicate_mobile_in_another_spelling_is_409(client: httpx.AsyncClient) -> None:
    await create_patient(client, mobile_number="+919876543210")
    again = await client.post(
        "/api/v1/patients/", json=patient_payload(mobile_number="+91 98765-43210")
    )
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_mobile"


@pytest.mark.parametrize(
    "override",
    [
        {"mobile_number": "4155552671"},
        {"mobile_number": "12"},
        {"mobile_number": "call me"},
        {"email": "nope"},
        {"date_of_birth": "2999-01-01"},
        {"date_of_birth": "01/02/1990"},
        {"name": ""},
    ],
)
async def test_invalid_patient_is_400(client: httpx.AsyncClient, override: dict[str, str]) -> None:
    response = await client.post("/api/v1/patients/", json=patient_payload(**override))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"


async def test_default_region_applies_to_local_numbers(
    connection: AsyncConnection, database_url: str
) -> None:
    app, lifespan = await started_app(
        make_settings(default_phone_region="IN"), database_url, connection
    )
    try:
        async with client_for(app) as client:
            patient = await create_patient(client, mobile_number="098765 43210")
            assert patient["mobile_number"] == "+919876543210"
            found = await client.get("/api/v1/patients/mobile/9876543210")
            assert found.json()["id"] == patient["id"]
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_partial_update_and_conflict(client: httpx.AsyncClient) -> None:
    first = await create_patient(client)
    second = await create_patient(client)
    updated = await client.put(f"/api/v1/patients/{first['id']}", json={"gender": "female"})
    assert updated.status_code == 200
    assert updated.json()["gender"] == "female"
    assert updated.json()["name"] == first["name"]
    clash = await client.put(
        f"/api/v1/patients/{first['id']}", json={"mobile_number": second["mobile_number"]}
    )
    assert clash.status_code == 409
    assert (await client.put(f"/api/v1/patients/{uuid.uuid4()}", json={})).status_code == 404


# Committed mode: newest-first is by created_at, which is frozen within one transaction.
async def test_history_newest_first(committed_client: httpx.AsyncClient) -> None:
    client = committed_client
    patient = await create_patient(client)
    url = f"/api/v1/patients/{patient['id']}/history"
    for symptom in ("cough", "fever", "headache"):
        response = await client.post(
            url, json={"symptoms": symptom, "allergies": ["penicillin"], "medical_conditions": []}
        )
        assert response.status_code == 201
    history = (await client.get(url)).json()
    assert [h["symptoms"] for h in history] == ["headache", "fever", "cough"]
    assert history[0]["allergies"] == ["penicillin"]
    assert (await client.get(f"/api/v1/patients/{uuid.uuid4()}/history")).status_code == 404
