"""The agent interface at /mcp, driven by the official SDK's own client over HTTP on loopback,
against a real service process: the phone agent's whole conversation and its failure paths."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY
from tests.factories import booking_payload, doctor_payload, next_weekday
from tests.servers import service_processes

TOOLS = {
    "clinic_info",
    "find_doctors",
    "find_earliest_slots",
    "get_availability",
    "hold_slot",
    "release_hold",
    "book_appointment",
    "book_series",
    "find_patient",
    "list_patient_appointments",
    "update_patient",
    "reschedule_appointment",
    "cancel_appointment",
    "confirm_appointment",
    "list_unconfirmed_appointments",
    "join_waitlist",
    "accept_waitlist_offer",
    "decline_waitlist_offer",
}


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    with service_processes(
        database_url, 1, API_KEY, {"CLINIC_TIMEZONE": "Asia/Kolkata", "DEFAULT_PHONE_REGION": "IN"}
    ) as urls:
        yield urls[0]


@asynccontextmanager
async def agent(base: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> CallToolResult:
    result = await session.call_tool(tool, arguments)
    assert isinstance(result.content[0], TextContent)
    return result


def said(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_the_agent_books_a_caller_from_first_call_to_cancel(
    db: AsyncEngine, service: str
) -> None:
    async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as rest:
        doctor = (
            await rest.post("/api/v1/doctors/", json=doctor_payload(name="Dr Asha Rao"))
        ).json()
    day = next_weekday(1)

    async with agent(service, {"Authorization": f"Bearer {API_KEY}"}) as session:
        listed = await session.list_tools()
        assert {t.name for t in listed.tools} == TOOLS
        hold_tool = next(t for t in listed.tools if t.name == "hold_slot")
        properties = hold_tool.input_schema["properties"]
        assert {"doctor_id", "date", "start_time"} <= set(hold_tool.input_schema["required"])
        assert all(p.get("description") for p in properties.values()), properties

        info = ok(await call(session, "clinic_info"))
        assert info["timezone"] == "Asia/Kolkata"
        assert dt.datetime.fromisoformat(info["now"]).utcoffset() == dt.timedelta(
            hours=5, minutes=30
        )

        found = ok(await call(session, "find_doctors", name="asha"))
        assert [d["id"] for d in found["items"]] == [doctor["id"]]

        slots = await call(
            session,
            "find_earliest_slots",
            doctor_id=doctor["id"],
            start_date=day.isoformat(),
            limit=3,
        )
        first = ok(slots)["items"][0]
        assert (first["date"], first["start_time"]) == (day.isoformat(), "09:00")
        assert said(slots).startswith(
            f"Dr Asha Rao is free on {day:%A} {day.day} {day:%B} at 09:00"
        )

        day_view = ok(
            await call(
                session, "get_availability", doctor_id=doctor["id"], start_date=day.isoformat()
            )
        )
        assert day_view["days"][0]["slots"][0]["start_time"] == "09:00"

        held = await call(
            session,
            "hold_slot",
            doctor_id=doctor["id"],
            date=day.isoformat(),
            start_time="09:00",
            call_id="call-7",
        )
        hold = ok(held)
        assert hold["status"] == "active" and "held until" in said(held)
        again = await call(
            session, "hold_slot", doctor_id=doctor["id"], date=day.isoformat(), start_time="09:00"
        )
        assert again.is_error and again.structured_content is not None
        assert (again.structured_content["code"], again.structured_content["reason"]) == (
            "slot_unavailable",
            "held",
        )
        assert again.structured_content["alternatives"]
        assert "nearest free slot" in said(again)

        patient = {"name": "Ravi Kumar", "mobile_number": "+91 98765 43210"}
        booked = await call(
            session,
            "book_appointment",
            hold_id=hold["id"],
            patient=patient,
            idempotency_key="call-7-book",
            call_id="call-7",
        )
        appointment = ok(booked)
        assert said(booked) == f"Booked with Dr Asha Rao on {day:%A} {day.day} {day:%B} at 09:00."
        retried = ok(
            await call(
                session,
                "book_appointment",
                hold_id=hold["id"],
                patient=patient,
                idempotency_key="call-7-book",
            )
        )
        assert retried["id"] == appointment["id"]

        known = ok(await call(session, "find_patient", mobile_number="098765 43210"))
        assert known["id"] == appointment["patient_id"]
        async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as rest:
            log = await rest.get(f"/api/v1/patients/{known['id']}/access-log")
        newest = log.json()[0]
        assert (newest["actor"], newest["what"], newest["via"]) == (
            "agent",
            "record",
            "mcp find_patient",
        )
        upcoming = await call(session, "list_patient_appointments", mobile_number="9876543210")
        assert [a["id"] for a in ok(upcoming)["items"]] == [appointment["id"]]
        assert "Ravi Kumar has 1 appointment" in said(upcoming)

        moved = ok(
            await call(
                session,
                "reschedule_appointment",
                appointment_id=appointment["id"],
                date=day.isoformat(),
                start_time="11:00",
                call_id="call-8",
            )
        )
        assert (moved["status"], moved["start_time"]) == ("RESCHEDULED", "11:00")
        cancelled = await call(session, "cancel_appointment", appointment_id=appointment["id"])
        assert ok(cancelled)["status"] == "CANCELLED" and "cancelled" in said(cancelled)

        # A second hold, let go.
        second = ok(
            await call(
                session,
                "hold_slot",
                doctor_id=doctor["id"],
                date=day.isoformat(),
                start_time="10:00",
            )
        )
        released = ok(await call(session, "release_hold", hold_id=second["id"]))
        assert released["status"] == "released"

    async with db.connect() as conn:
        trail = (
            await conn.execute(
                text(
                    "SELECT action, actor, correlation_id FROM appointment_events"
                    " WHERE appointment_id = :id ORDER BY id"
                ),
                {"id": uuid.UUID(appointment["id"])},
            )
        ).all()
    assert [tuple(row) for row in trail] == [
        ("created", "agent", "call-7"),
        ("rescheduled", "agent", "call-8"),
        ("cancelled", "agent", None),
    ]


async def test_failures_carry_the_rest_error_bodies(db: AsyncEngine, service: str) -> None:
    async with agent(service, {"X-API-Key": API_KEY}) as session:
        unknown = await call(session, "get_availability", doctor_id=str(uuid.uuid4()))
        assert unknown.is_error and unknown.structured_content["code"] == "not_found"
        bad = await call(
            session, "hold_slot", doctor_id="nope", date="tomorrow", start_time="10:00"
        )
        assert bad.is_error and bad.structured_content["code"] == "validation_error"
        assert {e["field"] for e in bad.structured_content["errors"]} == {"doctor_id", "date"}
        nobody = await call(session, "find_patient", mobile_number="+91 90000 00000")
        assert nobody.is_error and nobody.structured_content["code"] == "not_found"
        neither = await call(
            session, "book_appointment", patient={"name": "X", "mobile_number": "+919000000001"}
        )
        assert neither.is_error
        assert {e["field"] for e in neither.structured_content["errors"]} == {
            "doctor_id",
            "date",
            "start_time",
        }


async def test_the_agent_calls_its_unconfirmed_patients_and_confirms_one(
    db: AsyncEngine, service: str
) -> None:
    async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as rest:
        doctor = (await rest.post("/api/v1/doctors/", json=doctor_payload())).json()
        day = next_weekday(3)
        booked = [
            (
                await rest.post("/api/v1/appointments/", json=booking_payload(doctor["id"], day, t))
            ).json()
            for t in ("10:00", "09:00")
        ]
    async with agent(service, {"X-API-Key": API_KEY}) as session:
        listed = await call(session, "list_unconfirmed_appointments", date=day.isoformat())
        items = ok(listed)["items"]
        assert [i["id"] for i in items] == [booked[1]["id"], booked[0]["id"]]
        assert set(items[0]["patient"]) == {"id", "name", "mobile_number"}
        confirmed = await call(
            session, "confirm_appointment", appointment_id=booked[1]["id"], call_id="call-3"
        )
        assert ok(confirmed)["confirmation_status"] == "confirmed"
        again = ok(await call(session, "list_unconfirmed_appointments", date=day.isoformat()))
        assert [i["id"] for i in again["items"]] == [booked[0]["id"]]


async def test_mcp_needs_a_key(service: str) -> None:
    async with httpx.AsyncClient(base_url=service) as client:
        request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"Accept": "application/json, text/event-stream"}
        for sent in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            response = await client.post("/mcp", json=request, headers={**headers, **sent})
            assert response.status_code == 401
            assert response.json()["code"] == "unauthorized"
            assert "x-request-id" in response.headers
        # Stateless: nothing to stream to or to end, so only POST is served.
        for method in ("GET", "DELETE"):
            refused = await client.request(method, "/mcp", headers={"X-API-Key": API_KEY})
            assert refused.status_code == 405 and refused.json()["code"] == "method_not_allowed"


def counted(metrics_text: str) -> Counter[str]:
    """Every counter and histogram sample of the service's own metrics, by name and labels;
    not the HTTP ones, which count by route (all of MCP is one route, `/mcp`)."""
    kinds: dict[str, str] = {}
    found: Counter[str] = Counter()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            kinds[family] = kind
            continue
        match = re.match(r"^([a-z_]+)(\{.*\})? (\S+)$", line)
        if match is None:
            continue
        name = match.group(1)
        family = re.sub(r"_(total|bucket|count|sum|created)$", "", name)
        if (
            kinds.get(family, kinds.get(name)) in {"counter", "histogram"}
            and not name.endswith("_created")  # when a label was first seen, not a count
            and not name.startswith(("http_", "process_", "python_"))
        ):
            found[name + (match.group(2) or "")] += float(match.group(3))
    return found


async def test_changes_through_mcp_move_the_metrics_rest_moves(
    db: AsyncEngine, service: str
) -> None:
    """A booking, a refused booking, a move and a cancel, once over REST and once through the
    tools: every counter moves by the same amount either way."""
    day = next_weekday(2)
    async with httpx.AsyncClient(base_url=service, headers={"X-API-Key": API_KEY}) as rest:
        doctor = (await rest.post("/api/v1/doctors/", json=doctor_payload())).json()

        async def moved(changes: Callable[[], Awaitable[None]]) -> Counter[str]:
            before = counted((await rest.get("/metrics")).text)
            await changes()
            after = counted((await rest.get("/metrics")).text)
            after.subtract(before)
            return +after  # only what moved

        async def over_rest() -> None:
            booked = await rest.post(
                "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "09:00")
            )
            assert booked.status_code == 201, booked.text
            taken = await rest.post(
                "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "09:00")
            )
            assert taken.json()["code"] == "slot_unavailable"
            url = f"/api/v1/appointments/{booked.json()['id']}"
            move = {"date": day.isoformat(), "start_time": "10:00"}
            assert (await rest.put(f"{url}/reschedule", json=move)).status_code == 200
            assert (await rest.delete(url)).status_code == 200

        async def over_mcp() -> None:
            async with agent(service, {"X-API-Key": API_KEY}) as session:
                slot = {"doctor_id": doctor["id"], "date": day.isoformat(), "start_time": "11:00"}
                caller = booking_payload(doctor["id"], day, "11:00")["patient"]
                booked = ok(await call(session, "book_appointment", **slot, patient=caller))
                taken = await call(session, "book_appointment", **slot, patient=caller)
                assert taken.is_error and taken.structured_content is not None
                assert taken.structured_content["code"] == "slot_unavailable"
                move = {"date": day.isoformat(), "start_time": "12:00"}
                ok(
                    await call(
                        session, "reschedule_appointment", appointment_id=booked["id"], **move
                    )
                )
                ok(await call(session, "cancel_appointment", appointment_id=booked["id"]))

        through_rest = await moved(over_rest)
        through_mcp = await moved(over_mcp)

    for action in ("booked", "rescheduled", "cancelled"):
        assert through_mcp[f'appointment_changes_total{{action="{action}"}}'] == 1
    assert through_mcp['conflicts_total{code="slot_unavailable"}'] == 1
    assert through_mcp == through_rest
