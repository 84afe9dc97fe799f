"""The patient access log (spec: "Access roles and patient privacy"): every answer that showed
a patient's record or history is logged with its time, actor, what and correlation id, in the
read's own transaction; admins read it newest first; the database refuses to alter it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.conftest import client_for, make_settings, started_app
from tests.factories import create_patient

ADMIN, AGENT, READONLY = "admin-secret-1", "agent-secret-1", "readonly-secret-1"
KEYS = f"desk:{ADMIN}:admin,phone:{AGENT}:agent,dashboard:{READONLY}:readonly"


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    app, lifespan = await started_app(
        make_settings(service_api_key=KEYS, default_phone_region="GB"), database_url, connection
    )
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def desk(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, ADMIN) as client:
        yield client


def call(correlation_id: str) -> dict[str, str]:
    return {"X-Correlation-ID": correlation_id}


async def access_log(desk: httpx.AsyncClient, patient_id: str) -> list[dict[str, str]]:
    response = await desk.get(f"/api/v1/patients/{patient_id}/access-log")
    assert response.status_code == 200, response.text
    entries: list[dict[str, str]] = response.json()
    return entries


async def test_reads_of_a_record_and_its_history_are_logged_newest_first(
    app: FastAPI, desk: httpx.AsyncClient
) -> None:
    patient = await create_patient(desk, mobile_number="+447700900123")
    pid = patient["id"]
    added = await desk.post(
        f"/api/v1/patients/{pid}/history", json={"symptoms": "cough"}, headers=call("c-add")
    )
    assert added.status_code == 201
    async with client_for(app, AGENT) as phone, client_for(app, READONLY) as dashboard:
        assert (await phone.get(f"/api/v1/patients/{pid}", headers=call("c-1"))).status_code == 200
        by_mobile = await phone.get("/api/v1/patients/mobile/07700 900123", headers=call("c-2"))
        assert by_mobile.status_code == 200
        assert (await dashboard.get(f"/api/v1/patients/{pid}")).status_code == 200
        # Refused reads show nothing, so log nothing.
        assert (await phone.get(f"/api/v1/patients/{pid}/history")).status_code == 403
    history = await desk.get(f"/api/v1/patients/{pid}/history", headers=call("c-3"))
    assert history.status_code == 200

    entries = await access_log(desk, pid)
    assert [(e["actor"], e["what"], e["via"], e["correlation_id"]) for e in entries] == [
        ("desk", "history", "list_history", "c-3"),
        ("dashboard", "record", "get_patient", None),
        ("phone", "record", "get_patient_by_mobile", "c-2"),
        ("phone", "record", "get_patient", "c-1"),
        ("desk", "history", "add_history", "c-add"),
        ("desk", "record", "create_patient", None),
    ]
    assert all(e["patient_id"] == pid for e in entries)
    assert all(e["request_id"] for e in entries)
    # Reading the log is not itself a read of the record.
    assert len(await access_log(desk, pid)) == len(entries)


async def test_the_request_id_of_the_answer_is_the_one_logged(desk: httpx.AsyncClient) -> None:
    patient = await create_patient(desk)
    response = await desk.get(f"/api/v1/patients/{patient['id']}")
    entries = await access_log(desk, patient["id"])
    assert entries[0]["request_id"] == response.headers["X-Request-ID"]


async def test_only_admins_read_the_log_and_unknown_patients_are_404(
    app: FastAPI, desk: httpx.AsyncClient
) -> None:
    patient = await create_patient(desk)
    for key in (AGENT, READONLY):
        async with client_for(app, key) as client:
            refused = await client.get(f"/api/v1/patients/{patient['id']}/access-log")
            assert refused.status_code == 403
            assert refused.json()["code"] == "forbidden"
    unknown = await desk.get("/api/v1/patients/00000000-0000-4000-8000-000000000000/access-log")
    assert unknown.status_code == 404


async def test_a_read_that_finds_nobody_logs_nothing(
    desk: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    assert (await desk.get("/api/v1/patients/mobile/+447700900999")).status_code == 404
    missing = "/api/v1/patients/00000000-0000-4000-8000-000000000000"
    assert (await desk.get(missing)).status_code == 404
    assert (await connection.scalar(text("SELECT count(*) FROM patient_access_log"))) == 0


async def test_the_log_cannot_be_altered_in_sql(committed: AsyncEngine, database_url: str) -> None:
    app, lifespan = await started_app(make_settings(service_api_key=KEYS), database_url)
    try:
        async with client_for(app, ADMIN) as desk:
            patient = await create_patient(desk)
            assert (await desk.get(f"/api/v1/patients/{patient['id']}")).status_code == 200
    finally:
        await lifespan.__aexit__(None, None, None)
    for statement in (
        "UPDATE patient_access_log SET actor = 'someone else'",
        "DELETE FROM patient_access_log",
    ):
        async with committed.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(statement))
    async with committed.connect() as conn:
        actors = (await conn.execute(text("SELECT actor FROM patient_access_log"))).scalars()
        assert list(actors) == ["desk", "desk"]
