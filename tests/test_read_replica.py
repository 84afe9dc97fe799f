"""The read replica (spec: "Read replica") against a real streaming standby built from the
embedded PostgreSQL's binaries (`tests/standby.py`): reads land on it, decisions never do, a
paused standby stops serving reads once it lags, a stopped one costs no request, and both are
used again once well."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import API_KEY, client_for, make_settings, started_app
from tests.factories import book, create_doctor, next_weekday
from tests.standby import ReplicaPair, Server, replica_pair

__all__ = ["replica_pair"]  # the module-scoped pair, used as a fixture here

MAX_LAG, CHECK_EVERY = 1.5, 0.5
READS = 60


@pytest.fixture
async def replica_app(replica_pair: ReplicaPair) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        database_read_url=replica_pair.standby_url,
        read_replica_max_lag_seconds=MAX_LAG,
        read_replica_check_seconds=CHECK_EVERY,
    )
    app, lifespan = await started_app(settings, replica_pair.primary_url)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def client(replica_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(replica_app, API_KEY) as client:
        yield client


async def replica_state(client: httpx.AsyncClient) -> dict[str, Any]:
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    state: dict[str, Any] = ready.json()["replica"]
    return state


async def wait_for_state(client: httpx.AsyncClient, wanted: str, within: float) -> None:
    deadline = time.monotonic() + within
    while (await replica_state(client))["state"] != wanted:
        assert time.monotonic() < deadline, await replica_state(client)
        await asyncio.sleep(0.1)


async def read_many(client: httpx.AsyncClient, doctor_id: str) -> None:
    """`READS` reads, each one transaction where it lands (whole availability answers may be
    remembered, so they are read once here, for their answer only)."""
    day = next_weekday(1).isoformat()
    offered = await client.get(f"/api/v1/appointments/availability/{doctor_id}?date={day}")
    assert offered.status_code == 200, offered.text
    for i in range(READS):
        path = f"/api/v1/doctors/{doctor_id}" if i % 2 else f"/api/v1/doctors/{doctor_id}/leaves"
        response = await client.get(path)
        assert response.status_code == 200, response.text


async def where_reads_land(
    pair: ReplicaPair, client: httpx.AsyncClient, doctor_id: str, expected: Server
) -> dict[str, int]:
    """How many more transactions each server ran while `READS` reads were answered, once
    the `expected` server shows them all: a backend flushes its counters a second after its
    last flush, or up to ten seconds later when it goes idle, so they are polled."""
    before = {server: pair.reads_on(server) for server in ("primary", "standby")}
    await read_many(client, doctor_id)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if pair.reads_on(expected) - before[expected] >= READS:
            break
        await asyncio.sleep(0.2)
    return {server: pair.reads_on(server) - before[server] for server in before}  # type: ignore[index]


async def test_reads_land_on_the_standby_and_decisions_on_the_primary(
    replica_pair: ReplicaPair, client: httpx.AsyncClient
) -> None:
    assert await replica_state(client) == {"state": "ok", "lag_seconds": 0.0}
    doctor = await create_doctor(client)
    replica_pair.wait_caught_up()
    landed = await where_reads_land(replica_pair, client, doctor["id"], "standby")
    assert landed["standby"] >= READS, landed
    # The primary saw the lag checks and nothing of the reads.
    assert landed["primary"] < READS / 2, landed

    # A standby that has not replayed the first booking still never decides the second.
    replica_pair.pause_replay()
    try:
        day = next_weekday(1)
        first = await book(client, doctor["id"], day, "09:00")
        assert first.status_code == 201, first.text
        second = await book(client, doctor["id"], day, "09:00")
        assert second.status_code == 409, second.text
        assert second.json()["reason"] == "taken"
        assert "09:00" not in [s["start_time"] for s in second.json()["alternatives"]]
        # What was just written is found, though the standby has not replayed it.
        shown = await client.get(f"/api/v1/appointments/{first.json()['id']}")
        assert shown.status_code == 200, shown.text
    finally:
        replica_pair.resume_replay()


async def test_a_paused_standby_stops_serving_reads_once_it_lags(
    replica_pair: ReplicaPair, client: httpx.AsyncClient
) -> None:
    doctor = await create_doctor(client)
    replica_pair.wait_caught_up()
    await wait_for_state(client, "ok", within=5)
    replica_pair.pause_replay()
    try:
        renamed = await client.put(f"/api/v1/doctors/{doctor['id']}", json={"name": "Dr New"})
        assert renamed.status_code == 200
        await wait_for_state(client, "lagging", within=MAX_LAG + 3 * CHECK_EVERY + 1)
        state = await replica_state(client)
        assert state["lag_seconds"] > MAX_LAG
        metrics = (await client.get("/metrics")).text
        assert "db_replica_usable 0.0" in metrics
        landed = await where_reads_land(replica_pair, client, doctor["id"], "primary")
        assert landed["primary"] >= READS, landed
        assert landed["standby"] < READS / 2, landed
        # Read from the primary: the rename the standby has not replayed is there.
        assert (await client.get(f"/api/v1/doctors/{doctor['id']}")).json()["name"] == "Dr New"
    finally:
        replica_pair.resume_replay()
    await wait_for_state(client, "ok", within=5)
    assert (await replica_state(client))["lag_seconds"] == 0.0
    assert "db_replica_usable 1.0" in (await client.get("/metrics")).text
    landed = await where_reads_land(replica_pair, client, doctor["id"], "standby")
    assert landed["standby"] >= READS, landed


async def test_a_stopped_standby_costs_no_request_and_is_used_again_when_back(
    replica_pair: ReplicaPair, client: httpx.AsyncClient
) -> None:
    doctor = await create_doctor(client)
    replica_pair.wait_caught_up()
    await wait_for_state(client, "ok", within=5)
    await read_many(client, doctor["id"])  # the pool now holds connections to the standby
    replica_pair.stop_standby()
    try:
        # The first reads find the pooled connections dead: the primary answers them.
        await read_many(client, doctor["id"])
        listed = await client.get("/api/v1/doctors/")
        assert listed.status_code == 200
        await wait_for_state(client, "unreachable", within=3)
        assert "db_replica_usable 0.0" in (await client.get("/metrics")).text
        await read_many(client, doctor["id"])
    finally:
        replica_pair.start_standby()
    await wait_for_state(client, "ok", within=30)
    landed = await where_reads_land(replica_pair, client, doctor["id"], "standby")
    assert landed["standby"] >= READS, landed


async def test_without_a_replica_ready_says_disabled(
    replica_pair: ReplicaPair,
) -> None:
    app, lifespan = await started_app(make_settings(), replica_pair.primary_url)
    try:
        async with client_for(app) as client:
            assert await replica_state(client) == {"state": "disabled"}
    finally:
        await lifespan.__aexit__(None, None, None)
