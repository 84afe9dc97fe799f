"""RAG sync: descriptive doctor data only, delivered through the outbox to a fake RAG server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.services.outbox.dispatcher import Dispatcher
from app.services.rag_sync_service import RAG_FIELDS, RagMirror
from tests.conftest import RESTORE_POLICY, TABLES, client_for, make_settings, started_app
from tests.factories import create_doctor, doctor_payload
from tests.fake_rag import FakeRag
from tests.test_calendar_mirror import eventually
from tests.test_offered_equals_bookable import LoopThread

RAG_KEY = "rag-secret-key"
ALLOWED = set(RAG_FIELDS)


@pytest.fixture(scope="module")
def rag() -> Iterator[FakeRag]:
    fake = FakeRag()
    yield fake
    fake.stop()


def rag_settings(rag: FakeRag, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "rag_service_url": rag.url,
        "rag_service_api_key": RAG_KEY,
        "rag_timeout_seconds": 1,
        "dispatcher_enabled": True,
        "dispatcher_poll_seconds": 0.2,
        "dispatcher_backoff_base_seconds": 0.05,
        "dispatcher_backoff_max_seconds": 0.3,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
async def synced_app(
    db: AsyncEngine, database_url: str, rag: FakeRag
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    rag.reset()
    app, lifespan = await started_app(rag_settings(rag), database_url)
    async with client_for(app) as client:
        yield app, client
    await lifespan.__aexit__(None, None, None)


def expected_payload(doctor: dict[str, Any]) -> dict[str, Any]:
    return {field: doctor[field] for field in RAG_FIELDS}


async def drained(client: httpx.AsyncClient) -> bool:
    jobs = (await client.get("/api/v1/sync/status")).json()["rag"]["jobs"]
    return jobs["pending"] == 0 and jobs["in_progress"] == 0


def assert_only_allowed(rag: FakeRag) -> None:
    for request in rag.every_request:
        assert set(request.body) == ALLOWED, set(request.body) ^ ALLOWED


async def test_create_and_update_send_exact_payloads(
    synced_app: tuple[FastAPI, httpx.AsyncClient], rag: FakeRag
) -> None:
    _, client = synced_app
    doctor = await create_doctor(client, general_working_days_text="Mon-Fri mornings")
    await eventually(lambda: drained(client))
    (first,) = [r for r in rag.accepted() if r.path == f"/doctors/{doctor['id']}"]
    assert first.path == f"/doctors/{doctor['id']}"
    assert first.api_key == RAG_KEY
    assert first.body == expected_payload(doctor)

    updated = (
        await client.put(
            f"/api/v1/doctors/{doctor['id']}", json={"experience_years": 21, "languages": ["Tamil"]}
        )
    ).json()
    await eventually(lambda: drained(client))
    assert rag.accepted()[-1].body == expected_payload(updated)

    deactivated = (
        await client.put(f"/api/v1/doctors/{doctor['id']}", json={"is_active": False})
    ).json()
    await eventually(lambda: drained(client))
    assert rag.accepted()[-1].body == expected_payload(deactivated)
    assert rag.accepted()[-1].body["is_active"] is False
    assert [r.path for r in rag.accepted()].count(first.path) == 3
    assert_only_allowed(rag)


async def test_schedule_only_changes_send_nothing(
    synced_app: tuple[FastAPI, httpx.AsyncClient], rag: FakeRag, db: AsyncEngine
) -> None:
    _, client = synced_app
    doctor = await create_doctor(client)
    await eventually(lambda: drained(client))
    visit_type = await client.post(
        "/api/v1/visit-types/", json={"name": "Follow-up", "duration_minutes": 15}
    )
    lunch_break = [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "17:00"}]
    for change in (
        {"working_hours": {"start": "10:00", "end": "14:00"}},
        {"slot_duration_minutes": 20},
        {"working_days": ["monday"]},
        {"name": doctor["name"]},
        {"weekly_hours": {"monday": lunch_break, "saturday": [{"start": "09:00", "end": "12:00"}]}},
        {"visit_type_ids": [visit_type.json()["id"]]},
        {"min_notice_minutes": 120, "booking_horizon_days": 60},
        {"buffer_minutes": 10, "max_appointments_per_day": 12},
    ):
        response = await client.put(f"/api/v1/doctors/{doctor['id']}", json=change)
        assert response.status_code == 200, response.text
    doctor_url = f"/api/v1/doctors/{doctor['id']}"
    await client.post(f"{doctor_url}/leaves", json={"date": "2030-01-07"})
    override = await client.put(f"{doctor_url}/overrides/2030-01-08", json={"windows": []})
    holiday = await client.put("/api/v1/clinic/holidays/2030-01-09", json={"name": "Founders"})
    assert override.status_code == holiday.status_code == 201
    await client.patch(
        f"/api/v1/visit-types/{visit_type.json()['id']}", json={"duration_minutes": 20}
    )
    async with db.connect() as conn:
        jobs = await conn.scalar(text("SELECT count(*) FROM outbox_jobs WHERE target = 'rag'"))
    assert jobs == 1
    await asyncio.sleep(0.5)
    assert [r.path for r in rag.every_request].count(f"/doctors/{doctor['id']}") == 1


async def test_rag_down_or_slow_then_converges_in_order(
    synced_app: tuple[FastAPI, httpx.AsyncClient], rag: FakeRag
) -> None:
    _, client = synced_app
    rag.status, rag.retry_after = 503, "0"
    doctors = [await create_doctor(client) for _ in range(3)]
    final: dict[str, dict[str, Any]] = {}
    for round_ in range(4):
        for doctor in doctors:
            response = await client.put(
                f"/api/v1/doctors/{doctor['id']}", json={"experience_years": round_ + 1}
            )
            assert response.status_code == 200
            final[doctor["id"]] = response.json()
    status = (await client.get("/api/v1/sync/status")).json()["rag"]
    # Fifteen changes, folded: per doctor at most one job waiting and one in flight.
    assert 1 <= status["jobs"]["pending"] + status["jobs"]["in_progress"] <= 6
    await eventually(lambda: _has_errors(client))

    rag.status, rag.delay = 200, 1.5  # now slower than the 1 s timeout
    await asyncio.sleep(1)
    rag.delay = 0.1
    await eventually(lambda: drained(client))
    latest = rag.latest()
    assert {k: latest[k] for k in final} == {k: expected_payload(v) for k, v in final.items()}
    for doctor in doctors:
        stamps = [r.body["updated_at"] for r in rag.accepted() if r.path.endswith(doctor["id"])]
        assert stamps == sorted(stamps)
    assert_only_allowed(rag)


async def _has_errors(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/api/v1/sync/status")).json()["rag"]["recent_errors"])


async def test_client_error_is_failed_with_the_response(
    synced_app: tuple[FastAPI, httpx.AsyncClient], rag: FakeRag
) -> None:
    _, client = synced_app
    rag.status = 422
    doctor = await create_doctor(client)
    mine = f"/doctors/{doctor['id']}"

    async def failed() -> bool:
        return (await client.get("/api/v1/sync/status")).json()["rag"]["jobs"]["failed"] == 1

    await eventually(failed)
    error = (await client.get("/api/v1/sync/status")).json()["rag"]["recent_errors"][0]["error"]
    assert "422" in error and "scripted" in error
    assert [r.path for r in rag.every_request].count(mine) == 1  # not retried
    rag.status = 200
    assert (await client.post("/api/v1/sync/retry?target=rag")).json() == {"requeued": 1}
    await eventually(lambda: drained(client))
    assert [r.path for r in rag.accepted()].count(mine) == 1


async def test_rag_off_enqueues_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    doctor = await create_doctor(client)
    await client.put(f"/api/v1/doctors/{doctor['id']}", json={"experience_years": 3})
    assert await connection.scalar(text("SELECT count(*) FROM outbox_jobs")) == 0
    assert (await client.get("/ready")).json()["rag_sync"] == "disabled"


# -- property: whatever is updated, only the allow-list ever leaves --------------------------

updates = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(
            st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30
        ).filter(str.strip),
        "specialization": st.sampled_from(["Cardiology", "ENT", "Dermatology"]),
        "experience_years": st.integers(0, 60),
        "languages": st.lists(st.sampled_from(["English", "Hindi", "Tamil"]), max_size=3),
        "consultation_type": st.sampled_from(["in_person", "video"]),
        # Free text: tab and newline, but no other control character (a 400, as
        # tests/test_hostile_input.py shows).
        "general_working_days_text": st.none()
        | st.text(
            st.characters(
                codec="utf-8", exclude_categories=["Cs", "Cc"], include_characters="\t\n"
            ),
            max_size=40,
        ),
        "is_active": st.booleans(),
        "working_days": st.lists(st.sampled_from(["monday", "friday"]), min_size=1),
        "working_hours": st.sampled_from(
            [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]
        ),
        "slot_duration_minutes": st.integers(5, 480),
        "weekly_hours": st.sampled_from(
            [
                {
                    "monday": [
                        {"start": "09:00", "end": "13:00"},
                        {"start": "14:00", "end": "17:00"},
                    ]
                },
                {"saturday": [{"start": "09:00", "end": "12:00"}]},
            ]
        ),
        "min_notice_minutes": st.integers(0, 43200),
        "booking_horizon_days": st.none() | st.integers(1, 730),
        "buffer_minutes": st.integers(0, 240),
        "max_appointments_per_day": st.none() | st.integers(1, 500),
    },
    # A week and the request's fields together must agree; sent apart, either is fine.
).filter(lambda c: "weekly_hours" not in c or not {"working_days", "working_hours"} & c.keys())


@pytest.fixture(scope="module")
def paused(database_url: str, rag: FakeRag) -> Iterator[tuple[LoopThread, Any, Settings]]:
    runner = LoopThread()
    settings = rag_settings(rag, dispatcher_enabled=False)
    app, lifespan = runner.run(started_app(settings, database_url))
    yield runner, app, settings
    runner.run(lifespan.__aexit__(None, None, None))
    runner.stop()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.lists(updates, min_size=1, max_size=4))
def test_only_allow_listed_fields_are_ever_sent(
    paused: tuple[LoopThread, Any, Settings], rag: FakeRag, changes: list[dict[str, Any]]
) -> None:
    runner, app, settings_ = paused
    rag.reset()

    async def scenario() -> None:
        async with client_for(app) as client:
            created = await client.post("/api/v1/doctors/", json=doctor_payload())
            assert created.status_code == 201
            doctor = created.json()
            for change in changes:
                response = await client.put(f"/api/v1/doctors/{doctor['id']}", json=change)
                assert response.status_code == 200, response.text
                doctor = response.json()
            mirror = RagMirror(settings_, app.state.sessionmaker)
            dispatcher = Dispatcher(settings_, app.state.sessionmaker, "unused", [mirror])
            await dispatcher.run_until_idle()
            await mirror.aclose()
            assert rag.latest()[doctor["id"]] == expected_payload(doctor)

    async def truncate() -> None:
        async with app.state.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
            await conn.execute(text(RESTORE_POLICY))

    try:
        runner.run(scenario())
    finally:
        runner.run(truncate())
    assert rag.every_request
    assert_only_allowed(rag)
