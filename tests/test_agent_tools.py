"""Each MCP tool is a plain function: imported and called here directly, with the `Agent` the
SDK would resolve for it, on the rollback-mode app (no SDK, no HTTP for the tools). What MCP
adds on top (the listing, arguments over JSON-RPC, the key) is tests/test_mcp.py's."""

from __future__ import annotations

import ast
import datetime as dt
import gc
import importlib
import importlib.util
import pkgutil
import re
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from mcp.server.mcpserver import AcceptedElicitation, MCPServer
from mcp.types import CallToolResult, TextContent
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

import app.agent
from app import metrics
from app.agent import tools
from app.agent.answers import ACCEPTED_AGENT, Agent
from app.agent.tools.appointments import (
    book_appointment,
    cancel_appointment,
    reschedule_appointment,
)
from app.agent.tools.clinic import clinic_info, find_doctors
from app.agent.tools.patients import find_patient, list_patient_appointments
from app.agent.tools.slots import find_earliest_slots, get_availability, hold_slot, release_hold
from app.services import visit_type_service
from tests.factories import create_doctor, next_weekday

# The descriptions the model has always read (they were strings before they were docstrings).
DESCRIPTIONS = {
    "clinic_info": "The clinic's time zone, today's date, the time now and the visit types it "
    "offers (with their ids and lengths). Call it first.",
    "find_doctors": "Doctors taking appointments, filtered by any of the arguments.",
    "find_earliest_slots": "The earliest free slots across matching doctors (or one doctor), "
    "earliest first. Default range: today and the next 13 days. earliest_time and latest_time "
    "keep to a part of each day.",
    "get_availability": "One doctor's free slots, day by day (default: today). With none free, "
    "the sentence says why and names the doctor's first free slot after those days.",
    "hold_slot": "Keep a slot for this caller while you take their details (default 300 "
    "seconds, at most 900); then book it with book_appointment(hold_id=...).",
    "release_hold": "Let a held slot go at once, for a caller who does not book it.",
    "book_appointment": "Book an appointment: the slot a hold keeps (hold_id), or doctor_id, "
    "date and start_time. Give patient_id for a known patient, else patient {name, "
    "mobile_number, email?, gender?, date_of_birth?}. Retrying with the same idempotency_key "
    "never books twice.",
    "book_series": "Book a course of visits (physiotherapy, therapy) at the same time every "
    "day or week: every visit or none. If any cannot be booked, nothing is booked and each such "
    "visit is listed in conflicts with its reason and nearby free slots. Give patient_id for a "
    "known patient, else patient {name, mobile_number, ...}. Retrying with the same "
    "idempotency_key never books twice.",
    "find_patient": "The patient with this mobile number, if the clinic knows them.",
    "list_patient_appointments": "A patient's appointments starting after now (any status); "
    "include_past adds the earlier ones. Give mobile_number or patient_id.",
    "update_patient": "Correct a known patient's details: only the arguments given change.",
    "reschedule_appointment": "Move an appointment to another slot, of the same doctor or, with "
    "doctor_id, of another doctor. The visit keeps its length and visit type.",
    "cancel_appointment": "Cancel an appointment (cancelling it again changes nothing).",
    "confirm_appointment": "Record that the patient confirmed they will come at the "
    "appointment's time (confirming again changes nothing).",
    "list_unconfirmed_appointments": "The day's booked appointments whose patients have not "
    "confirmed yet, by time, each with the patient's id, name and mobile number to call.",
    "join_waitlist": "Put a caller on the waiting list for a slot that comes free: a doctor or "
    "criteria, dates, and optionally weekdays and times; or an earlier slot for their "
    "appointment (appointment_id). The caller is known by patient_id, or by mobile_number (with "
    "name if new). When a matching slot frees, it is held for them and the clinic is told to "
    "call.",
    "accept_waitlist_offer": "The caller takes the slot held for them: it is booked (or their "
    "appointment moved to it). If it was taken meanwhile, the entry waits again and the nearest "
    "free slots are given.",
    "decline_waitlist_offer": "The caller does not want the slot held for them: it goes to the "
    "next patient waiting, and they stay on the list for another.",
}


@pytest.fixture
def agent(app: FastAPI) -> Agent:
    return Agent.of(app.state, "agent")


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def refused(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def said(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def counts() -> dict[str, float]:
    """This process's change and conflict counters, by name and labels."""
    body, _ = metrics.render()
    found: dict[str, float] = {}
    for line in body.decode().splitlines():
        match = re.match(r"^((?:appointment_changes|conflicts)_total\{.*\}) (\S+)$", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def moved(before: dict[str, float]) -> dict[str, float]:
    after = counts()
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _agent_modules() -> Iterator[str]:
    yield app.agent.__name__
    for module in pkgutil.walk_packages(app.agent.__path__, f"{app.agent.__name__}."):
        yield module.name


async def test_each_tool_is_a_module_level_function_registered_in_one_place() -> None:
    assert [t.__name__ for t in tools.TOOLS] == list(DESCRIPTIONS)
    for tool in tools.TOOLS:
        assert "<locals>" not in tool.__qualname__
        assert getattr(importlib.import_module(tool.__module__), tool.__name__) is tool
    server = MCPServer(name="test")
    tools.register(server)
    listed = await server.list_tools()
    assert {t.name: t.description for t in listed} == DESCRIPTIONS
    # The agent is resolved by the SDK, never an argument the model is asked for.
    assert all("agent" not in t.input_schema["properties"] for t in listed)


def test_the_agent_reaches_the_services_below_the_routes() -> None:
    """Tools call services, schemas and `app.adapters`; never the REST layer."""
    for name in _agent_modules():
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        with open(spec.origin) as source:
            tree = ast.parse(source.read())
        imported = [
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        ] + [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        ]
        assert not [m for m in imported if m.startswith(("app.routes", "app.error_handlers"))], name


async def test_clinic_info(agent: Agent) -> None:
    result = await clinic_info(agent)
    info = ok(result)
    assert info["timezone"] == "UTC" and info["visit_types"] == []
    assert dt.date.fromisoformat(info["today"]) == dt.datetime.now(dt.UTC).date()
    assert said(result).endswith("at the clinic.")


async def test_find_doctors(agent: Agent, client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, name="Dr Meera Iyer", specialization="Dermatology")
    await create_doctor(client, name="Dr Away", is_active=False)
    result = await find_doctors(agent, name="meera", language="hindi")
    assert [d["id"] for d in ok(result)["items"]] == [doctor["id"]]
    assert said(result) == "Found 1 doctor: Dr Meera Iyer (Dermatology)."
    assert ok(await find_doctors(agent, name="away"))["items"] == []  # active ones only
    bad = refused(await find_doctors(agent, visit_type_id="nope"))
    assert bad["errors"] == [{"field": "visit_type_id", "message": "visit_type_id must be a UUID"}]
    control = refused(await find_doctors(agent, specialization="Derma\ntology"))
    assert [e["field"] for e in control["errors"]] == ["specialization"]


async def test_slots_are_the_rest_answers(agent: Agent, client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, name="Dr Asha Rao")
    day = next_weekday(1)
    span = {"start_date": day.isoformat(), "end_date": (day + dt.timedelta(days=1)).isoformat()}

    earliest = await find_earliest_slots(agent, doctor_id=doctor["id"], limit=3, **span)
    rest = await client.get(
        "/api/v1/appointments/availability", params={"doctor_id": doctor["id"], "limit": 3, **span}
    )
    assert ok(earliest)["items"] == rest.json()
    assert (
        said(earliest)
        == f"Dr Asha Rao is free on {day:%A} {day.day} {day:%B} at 09:00; 2 more slots found."
    )

    days = await get_availability(agent, doctor["id"], **span)
    rest = await client.get(f"/api/v1/appointments/availability/{doctor['id']}", params=span)
    assert ok(days) == rest.json()
    assert said(days).startswith(
        f"Dr Asha Rao is free on {day:%A} {day.day} {day:%B} at 09:00, with"
    )

    unknown = refused(await get_availability(agent, str(uuid.uuid4())))
    assert unknown["code"] == "not_found"
    backwards = refused(
        await find_earliest_slots(agent, start_date=span["end_date"], end_date=span["start_date"])
    )
    assert [e["field"] for e in backwards["errors"]] == ["end_date"]


async def test_a_caller_held_booked_moved_and_cancelled(
    agent: Agent, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client, name="Dr Asha Rao")
    day = next_weekday(2)
    before = counts()

    held = await hold_slot(agent, doctor["id"], day.isoformat(), "09:00", call_id="call-1")
    hold = ok(held)
    assert hold["status"] == "active" and " with Dr Asha Rao is held until " in said(held)
    taken = refused(await hold_slot(agent, doctor["id"], day.isoformat(), "09:00"))
    assert (taken["code"], taken["reason"]) == ("slot_unavailable", "held")

    caller = {"name": "Ravi Kumar", "mobile_number": "+91 98765 43210"}
    booked = await book_appointment(
        agent, hold_id=hold["id"], patient=caller, idempotency_key="call-1-book", call_id="call-1"
    )
    appointment = ok(booked)
    assert said(booked) == f"Booked with Dr Asha Rao on {day:%A} {day.day} {day:%B} at 09:00."
    replayed = await book_appointment(
        agent, hold_id=hold["id"], patient=caller, idempotency_key="call-1-book"
    )
    assert ok(replayed)["id"] == appointment["id"]

    patient = ok(await find_patient(agent, "+919876543210"))
    assert patient["id"] == appointment["patient_id"]
    upcoming = await list_patient_appointments(agent, patient_id=patient["id"])
    assert [a["id"] for a in ok(upcoming)["items"]] == [appointment["id"]]
    assert said(upcoming).startswith("Ravi Kumar has 1 appointment; the first is ")

    moved_to = await reschedule_appointment(
        agent, appointment["id"], day.isoformat(), "11:00", call_id="call-2"
    )
    assert (ok(moved_to)["status"], ok(moved_to)["start_time"]) == ("RESCHEDULED", "11:00")
    cancelled = await cancel_appointment(agent, appointment["id"])
    assert ok(cancelled)["status"] == "CANCELLED" and said(cancelled).endswith("is cancelled.")

    second = ok(await hold_slot(agent, doctor["id"], day.isoformat(), "10:00"))
    assert ok(await release_hold(agent, second["id"]))["status"] == "released"

    # Counted as REST counts them: the replayed booking is not a second one.
    assert moved(before) == {
        'appointment_changes_total{action="booked"}': 1,
        'appointment_changes_total{action="rescheduled"}': 1,
        'appointment_changes_total{action="cancelled"}': 1,
        'conflicts_total{code="slot_unavailable"}': 1,
    }
    trail = await connection.execute(
        text(
            "SELECT action, actor, correlation_id FROM appointment_events"
            " WHERE appointment_id = :id ORDER BY id"
        ),
        {"id": uuid.UUID(appointment["id"])},
    )
    assert [tuple(row) for row in trail] == [
        ("created", "agent", "call-1"),
        ("rescheduled", "agent", "call-2"),
        ("cancelled", "agent", None),
    ]
    shown = await connection.execute(
        text("SELECT actor, via FROM patient_access_log WHERE patient_id = :id"),
        {"id": uuid.UUID(patient["id"])},
    )
    assert [tuple(row) for row in shown] == [("agent", "mcp find_patient")]


async def test_failures_are_the_rest_error_bodies(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = refused(await hold_slot(agent, "nope", "tomorrow", "10:00"))
    assert bad["code"] == "validation_error"
    assert {e["field"] for e in bad["errors"]} == {"doctor_id", "date"}
    neither = refused(await list_patient_appointments(agent))
    assert [e["field"] for e in neither["errors"]] == ["mobile_number"]
    control = refused(await find_patient(agent, "+91 90000\x0000000"))
    assert [e["field"] for e in control["errors"]] == ["mobile_number"]
    nobody = await find_patient(agent, "+91 90000 00000")
    assert refused(nobody)["code"] == "not_found" and said(nobody) == refused(nobody)["detail"]

    async def database_gone(*args: Any, **kwargs: Any) -> Any:
        raise asyncpg.InterfaceError("connection is closed")

    monkeypatch.setattr(visit_type_service, "list_all", database_gone)
    assert refused(await clinic_info(agent))["code"] == "database_unavailable"

    async def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(visit_type_service, "list_all", bug)
    assert refused(await clinic_info(agent)) == {
        "detail": "An unexpected error occurred; try again.",
        "code": "internal_error",
    }


def test_the_class_wrapping_a_resolved_agent_outlives_a_collection() -> None:
    """The SDK wraps each resolved `Agent` in `AcceptedElicitation[Any]`; pydantic caches that
    class weakly, and `answers` keeps it, so a collection does not make the next call build it
    again."""
    gc.collect()
    assert AcceptedElicitation[Any] is ACCEPTED_AGENT
