"""Series racing each other and single bookings for the same slots, from two service processes
on separate connections: every request all or nothing, never two active appointments in one
slot; and `book_series` through the official MCP SDK client against the same processes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY
from tests.factories import booking_payload, next_weekday, patient_payload
from tests.servers import service_processes
from tests.test_mcp import agent, call, ok, said
from tests.test_races import OVERLAPS, _clients, _doctor

SERIES = "/api/v1/appointments/series"
TIMES = ("10:00", "10:30")


@pytest.fixture(scope="module")
def two_services(database_url: str) -> Iterator[list[str]]:
    with service_processes(database_url, 2, API_KEY) as urls:
        yield urls


def _series(doctor_id: str, start: dt.date, at: str, mobile: str) -> dict[str, Any]:
    return {
        "doctor_id": doctor_id,
        "start_date": start.isoformat(),
        "start_time": at,
        "source": "AI_CALLING_AGENT",
        "patient": patient_payload(mobile_number=mobile),
        "recurrence": {"frequency": "weekly", "count": 3},
    }


async def test_series_and_single_bookings_racing_are_each_all_or_nothing(
    db: AsyncEngine, two_services: list[str]
) -> None:
    """20 series of three Mondays and 20 single bookings, all at once, over six Mondays at two
    times (12 slots for 80 asked): each series books all three or none (and creates no
    patient then), each single booking one or none, and no slot is booked twice."""
    clients = _clients(two_services)
    try:
        doctor = await _doctor(clients[0])
        monday = next_weekday(0)
        asked: list[tuple[str, dict[str, Any]]] = []
        for i in range(20):
            start = monday + dt.timedelta(weeks=i % 4)
            asked.append(("series", _series(doctor["id"], start, TIMES[i % 2], f"+1415666{i:04d}")))
            single = booking_payload(
                doctor["id"], monday + dt.timedelta(weeks=i % 6), TIMES[(i // 6) % 2]
            )
            single["patient"]["mobile_number"] = f"+1415777{i:04d}"
            asked.append(("single", single))
        responses = await asyncio.gather(
            *[
                clients[n % 2].post(
                    SERIES if kind == "series" else "/api/v1/appointments/", json=body
                )
                for n, (kind, body) in enumerate(asked)
            ]
        )
        assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
        won = [
            (kind, body, r.json())
            for (kind, body), r in zip(asked, responses, strict=True)
            if r.status_code == 201
        ]
        lost = [
            (kind, body, r.json())
            for (kind, body), r in zip(asked, responses, strict=True)
            if r.status_code == 409
        ]
        assert won and lost
        async with db.connect() as conn:
            assert await conn.scalar(OVERLAPS) == 0
            active = await conn.scalar(
                text("SELECT count(*) FROM appointments WHERE status IN ('BOOKED', 'RESCHEDULED')")
            )
            by_series = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT series_id, count(*) FROM appointments"
                            " WHERE series_id IS NOT NULL GROUP BY series_id"
                        )
                    )
                ).all()
            )
            mobiles = set((await conn.scalars(text("SELECT mobile_number FROM patients"))).all())
        series_won = [answer for kind, _, answer in won if kind == "series"]
        singles_won = [answer for kind, _, answer in won if kind == "single"]
        assert active == 3 * len(series_won) + len(singles_won)
        assert {str(k): v for k, v in by_series.items()} == {
            answer["series_id"]: 3 for answer in series_won
        }
        for answer in series_won:
            assert [a["status"] for a in answer["appointments"]] == ["BOOKED"] * 3
        for kind, body, answer in lost:
            assert answer["code"] == "slot_unavailable"
            # A refused request created no patient: nothing of it was written.
            assert body["patient"]["mobile_number"] not in mobiles
            if kind == "series":
                assert answer["conflicts"] and {c["reason"] for c in answer["conflicts"]} == {
                    "taken"
                }
                assert answer["reason"] == answer["conflicts"][0]["reason"]
        for _, body, _ in won:
            assert body["patient"]["mobile_number"] in mobiles
    finally:
        for client in clients:
            await client.aclose()


async def test_the_agent_books_a_series_through_the_sdk_client(
    db: AsyncEngine, two_services: list[str]
) -> None:
    async with httpx.AsyncClient(base_url=two_services[0], headers={"X-API-Key": API_KEY}) as rest:
        doctor = await _doctor(rest)
    monday = next_weekday(0)
    arguments = {
        "doctor_id": doctor["id"],
        "start_date": monday.isoformat(),
        "start_time": "09:30",
        "recurrence": {"frequency": "weekly", "interval": 2, "count": 3},
        "patient": {"name": "Ravi Kumar", "mobile_number": "+14155559876"},
        "call_id": "call-series-1",
    }
    async with agent(two_services[1], {"Authorization": f"Bearer {API_KEY}"}) as session:
        listed = await session.list_tools()
        tool = next(t for t in listed.tools if t.name == "book_series")
        properties = tool.input_schema["properties"]
        assert "source" not in properties
        assert {"doctor_id", "start_date", "start_time", "recurrence"} <= set(
            tool.input_schema["required"]
        )
        assert all(p.get("description") for p in properties.values()), properties

        booked = await call(session, "book_series", **arguments)
        body = ok(booked)
        assert body["recurrence"] == {"frequency": "weekly", "interval": 2, "count": 3}
        assert [a["date"] for a in body["appointments"]] == [
            (monday + dt.timedelta(weeks=2 * i)).isoformat() for i in range(3)
        ]
        assert {a["source"] for a in body["appointments"]} == {"AI_CALLING_AGENT"}
        assert said(booked).startswith("Booked 3 visits with ")

        again = await call(session, "book_series", **arguments)
        assert again.is_error and again.structured_content is not None
        refused = again.structured_content
        assert refused["code"] == "slot_unavailable"
        assert [c["reason"] for c in refused["conflicts"]] == ["taken"] * 3
        assert "nearest free slot" in said(again)

        bad = await call(
            session, "book_series", **{**arguments, "recurrence": {"frequency": "weekly"}}
        )
        assert bad.is_error and bad.structured_content is not None
        assert [e["field"] for e in bad.structured_content["errors"]] == ["recurrence"]

    async with httpx.AsyncClient(base_url=two_services[0], headers={"X-API-Key": API_KEY}) as rest:
        series = (await rest.get(f"{SERIES}/{body['series_id']}")).json()
        assert [a["id"] for a in series["appointments"]] == [a["id"] for a in body["appointments"]]
        trail = (
            await rest.get(f"/api/v1/appointments/{body['appointments'][0]['id']}/events")
        ).json()
        assert trail[0]["correlation_id"] == "call-series-1"
