"""Key roles (spec: "Access roles and patient privacy"): every operation declares who may call
it, each role gets 403 `forbidden` exactly where the spec says, on the REST routes, the plain
lanes and `/mcp`, and a refused write changes nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import SettingsError, load_settings
from app.security import ApiKey, Role, parse_api_keys
from tests.conftest import client_for, make_settings, started_app
from tests.factories import book, create_doctor, next_weekday

KEYS = {
    "admin": "admin-secret-1",
    "agent": "agent-secret-1",
    "readonly": "readonly-secret-1",
}
# The two older spellings, both admins: `name:secret` and a bare secret.
NAMED_ADMIN, BARE_ADMIN = "named-admin-secret", "bare-admin-secret"
SERVICE_API_KEY = ",".join(
    [
        f"desk:{KEYS['admin']}:admin",
        f"phone:{KEYS['agent']}:agent",
        f"dashboard:{KEYS['readonly']}:readonly",
        f"ops:{NAMED_ADMIN}",
        BARE_ADMIN,
    ]
)

# What the spec lets the phone agent do, operation by operation.
AGENT_MAY = {
    ("get", "/api/v1/doctors/"),
    ("get", "/api/v1/doctors/{doctor_id}"),
    ("get", "/api/v1/doctors/{doctor_id}/leaves"),
    ("get", "/api/v1/doctors/{doctor_id}/overrides"),
    ("get", "/api/v1/visit-types/"),
    ("get", "/api/v1/visit-types/{visit_type_id}"),
    ("get", "/api/v1/clinic/holidays"),
    ("get", "/api/v1/appointments/availability"),
    ("get", "/api/v1/appointments/availability/{doctor_id}"),
    ("get", "/api/v1/appointments/doctor/{doctor_id}"),
    ("get", "/api/v1/appointments/patient/{patient_id}"),
    ("get", "/api/v1/appointments/{appointment_id}"),
    ("get", "/api/v1/appointments/{appointment_id}/events"),
    # The desk's day is doctors, their appointments and their free slots: all readable.
    ("get", "/api/v1/desk/day"),
    # Any key may ask who it is.
    ("get", "/api/v1/me"),
    ("post", "/api/v1/holds/"),
    ("get", "/api/v1/holds/{hold_id}"),
    ("delete", "/api/v1/holds/{hold_id}"),
    ("post", "/api/v1/appointments/"),
    ("put", "/api/v1/appointments/{appointment_id}/reschedule"),
    ("delete", "/api/v1/appointments/{appointment_id}"),
    ("post", "/api/v1/patients/"),
    ("get", "/api/v1/patients/{patient_id}"),
    ("get", "/api/v1/patients/mobile/{mobile_number}"),
    ("put", "/api/v1/patients/{patient_id}"),
    ("patch", "/api/v1/patients/{patient_id}"),
    ("post", "/api/v1/patients/{patient_id}/history"),
    # Series are booked and cancelled like bookings, and read by every role.
    ("post", "/api/v1/appointments/series"),
    ("get", "/api/v1/appointments/series/{series_id}"),
    ("delete", "/api/v1/appointments/series/{series_id}"),
    # Confirming is the agent's, like booking; reminders and the policy are readable by all.
    ("post", "/api/v1/appointments/{appointment_id}/confirm"),
    ("get", "/api/v1/appointments/{appointment_id}/reminders"),
    ("get", "/api/v1/reminder-policy"),
    # The waitlist: its reads are every role's, its writes the agent's, like bookings.
    ("get", "/api/v1/waitlist/"),
    ("get", "/api/v1/waitlist/{entry_id}"),
    ("post", "/api/v1/waitlist/"),
    ("delete", "/api/v1/waitlist/{entry_id}"),
    ("post", "/api/v1/waitlist/{entry_id}/accept"),
    ("post", "/api/v1/waitlist/{entry_id}/decline"),
}
READONLY_MAY_NOT = {
    ("get", "/api/v1/patients/{patient_id}/history"),
    ("get", "/api/v1/patients/{patient_id}/access-log"),
    # Webhooks are admin only, reads included.
    ("get", "/api/v1/webhooks/"),
    ("get", "/api/v1/webhooks/{webhook_id}"),
    ("get", "/api/v1/webhooks/{webhook_id}/deliveries"),
}


def spec_allows(role: Role, method: str, path: str) -> bool:
    if role is Role.ADMIN:
        return True
    if role is Role.AGENT:
        return (method, path) in AGENT_MAY
    return method == "get" and (method, path) not in READONLY_MAY_NOT


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(service_api_key=SERVICE_API_KEY)
    app, lifespan = await started_app(settings, database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def clients(app: FastAPI) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    made = {name: client_for(app, key) for name, key in KEYS.items()}
    yield made
    for client in made.values():
        await client.aclose()


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    schema = app.openapi()
    return [
        (method, path, operation)
        for path, methods in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in methods.items()
    ]


def test_every_operation_declares_the_roles_the_spec_gives_it(app: FastAPI) -> None:
    found = operations(app)
    assert len(found) > 40
    for method, path, operation in found:
        expected = [r.value for r in Role if spec_allows(r, method, path)]
        assert operation.get("x-roles") == expected, (method, path)
        assert ("403" in operation["responses"]) == (expected != list(Role)), (method, path)
        assert f"**Roles:** {', '.join(expected)}." in operation["description"]


def _concrete(path: str) -> str:
    """A path with every parameter filled: ids that exist nowhere, a date, a mobile number."""
    day = next_weekday(2).isoformat()
    path = path.replace("{date}", day).replace("{mobile_number}", "+14155550123")
    return re.sub(r"\{[a-z_]+_id\}", lambda _: str(uuid.uuid4()), path)


async def test_each_role_gets_403_exactly_where_the_spec_says(
    app: FastAPI, clients: dict[str, httpx.AsyncClient]
) -> None:
    for method, path, operation in operations(app):
        for role in Role:
            body = {"json": {}} if "requestBody" in operation else {}
            response = await clients[role].request(method.upper(), _concrete(path), **body)
            if spec_allows(role, method, path):
                assert response.status_code not in (401, 403), (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["code"] == "forbidden"
                assert role.value in response.json()["detail"]


async def test_keys_without_a_role_are_admins(app: FastAPI) -> None:
    for key in (NAMED_ADMIN, BARE_ADMIN):
        async with client_for(app, key) as client:
            response = await client.post("/api/v1/sync/retry")
            assert response.status_code == 200, response.text


async def test_refused_writes_change_nothing(
    clients: dict[str, httpx.AsyncClient], connection: AsyncConnection
) -> None:
    admin, agent, readonly = clients["admin"], clients["agent"], clients["readonly"]
    doctor = await create_doctor(admin, name="Dr Meera Iyer")
    day = next_weekday(1)

    renamed = await agent.put(f"/api/v1/doctors/{doctor['id']}", json={"name": "Dr Someone"})
    assert renamed.status_code == 403
    closed = await agent.put(f"/api/v1/clinic/holidays/{day.isoformat()}", json={"name": "Made up"})
    assert closed.status_code == 403
    # The booking lane (a plain route) checks the role its documented route declares.
    refused = await book(readonly, doctor["id"], day, "09:00")
    assert refused.status_code == 403, refused.text

    booked = await book(agent, doctor["id"], day, "09:00")
    assert booked.status_code == 201, booked.text
    appointment = booked.json()["id"]
    assert (await readonly.delete(f"/api/v1/appointments/{appointment}")).status_code == 403
    moved = await readonly.put(
        f"/api/v1/appointments/{appointment}/reschedule",
        json={"date": day.isoformat(), "start_time": "10:00"},
    )
    assert moved.status_code == 403
    checked_in = await agent.post(f"/api/v1/appointments/{appointment}/check-in")
    assert checked_in.status_code == 403

    rows = await connection.execute(text("SELECT name FROM doctors"))
    assert [r.name for r in rows] == ["Dr Meera Iyer"]
    assert (await connection.scalar(text("SELECT count(*) FROM clinic_holidays"))) == 0
    rows = await connection.execute(text("SELECT start_time, status FROM appointments"))
    assert [(str(r.start_time), r.status) for r in rows] == [("09:00:00", "BOOKED")]
    events = await connection.scalar(text("SELECT count(*) FROM appointment_events"))
    assert events == 1  # the booking alone


async def test_mcp_refuses_a_readonly_key(app: FastAPI) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    answers = {}
    for role, key in KEYS.items():
        async with client_for(app, key) as client:
            answers[role] = await client.post("/mcp", json=initialize, headers=headers)
    assert answers["readonly"].status_code == 403
    assert answers["readonly"].json()["code"] == "forbidden"
    assert answers["agent"].status_code == 200, answers["agent"].text
    assert answers["admin"].status_code == 200, answers["admin"].text


def test_key_entries_name_their_role() -> None:
    keys = parse_api_keys("a:secret-aaa:agent, b:secret-bbb , secret-ccc, d:secret-ddd:readonly")
    assert keys == {
        "secret-aaa": ApiKey("a", Role.AGENT),
        "secret-bbb": ApiKey("b", Role.ADMIN),
        "secret-ccc": ApiKey("default", Role.ADMIN),
        "secret-ddd": ApiKey("d", Role.READONLY),
    }
    for wrong in ("a:secret-aaa:root", "a:b:secret-aaa:agent", ":secret-aaa", "a:short"):
        with pytest.raises(ValueError):
            parse_api_keys(wrong)


def test_an_unknown_role_stops_the_service_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVICE_API_KEY", "phone:secret-aaa:superuser")
    with pytest.raises(SettingsError, match=r"SERVICE_API_KEY.*unknown role 'superuser'"):
        load_settings()
