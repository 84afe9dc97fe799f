"""The agent's waitlist tools (`join_waitlist`, `accept_waitlist_offer`,
`decline_waitlist_offer`), called as plain functions with the `Agent` the SDK resolves (as
tests/test_agent_tools.py does; the listing over MCP is tests/test_mcp.py's): the REST shapes
and refusals, a sentence each."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.agent.answers import Agent
from app.agent.tools.waitlist import accept_waitlist_offer, decline_waitlist_offer, join_waitlist
from tests.factories import create_patient, next_weekday
from tests.test_agent_tools import ok, refused, said
from tests.test_waitlist_api import entry, settle, short_day_doctor

DAY = next_weekday(4, weeks_ahead=2)


@pytest.fixture
def agent(app: FastAPI) -> Agent:
    return Agent.of(app.state, "agent")


async def test_join_decline_and_accept_through_the_tools(
    app: FastAPI, agent: Agent, client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await short_day_doctor(client, DAY)
    span = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}
    joined = await join_waitlist(
        agent,
        mobile_number="+14155550999",
        name="Asha Rao",
        doctor_id=doctor,
        times=[{"start": "09:00", "end": "10:00"}],
        call_id="call-7",
        **span,
    )
    body = ok(joined)
    assert body["status"] == "waiting" and body["times"] == [{"start": "09:00", "end": "10:00"}]
    assert "waiting list" in said(joined)
    # Known by the number alone the second time.
    again = ok(await join_waitlist(agent, mobile_number="+1 415 555 0999", **span))
    assert again["patient_id"] == body["patient_id"]
    assert (await client.delete(f"/api/v1/waitlist/{again['id']}")).status_code == 200

    await settle(app)
    offer = (await entry(client, body["id"]))["offer"]
    assert offer["start_time"] == "09:00"
    hold = await connection.execute(
        text("SELECT correlation_id FROM holds WHERE id = :id"), {"id": offer["hold_id"]}
    )
    assert hold.scalar_one() == "call-7"

    declined = ok(await decline_waitlist_offer(agent, body["id"]))
    assert declined["status"] == "waiting"
    await settle(app)
    accepted = await accept_waitlist_offer(agent, body["id"], idempotency_key="k1")
    booked = ok(accepted)
    assert booked["status"] == "booked"
    appointment = (
        await client.get(f"/api/v1/appointments/{booked['booked_appointment_id']}")
    ).json()
    assert (appointment["start_time"], appointment["source"]) == ("09:30", "AI_CALLING_AGENT")
    replay = ok(await accept_waitlist_offer(agent, body["id"], idempotency_key="k1"))
    assert replay == booked


async def test_the_tools_refuse_as_rest_does(
    app: FastAPI, agent: Agent, client: httpx.AsyncClient
) -> None:
    patient = await create_patient(client)
    span = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}
    bad = refused(await join_waitlist(agent, patient_id=patient["id"], weekdays=["Friday"], **span))
    assert (bad["code"], bad["errors"][0]["field"]) == ("validation_error", "weekdays")
    unknown = refused(await join_waitlist(agent, mobile_number="+14155550123", **span))
    assert unknown["code"] == "not_found"
    made = ok(await join_waitlist(agent, patient_id=patient["id"], **span))
    not_offered = refused(await accept_waitlist_offer(agent, made["id"]))
    assert not_offered["code"] == "invalid_state"
    assert refused(await decline_waitlist_offer(agent, "not-an-id"))["errors"][0]["field"] == (
        "entry_id"
    )
