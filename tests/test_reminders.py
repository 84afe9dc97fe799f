"""Reminders (spec: "Confirmations and reminders"): the policy and its validation, the plan a
booking makes, what comes due and what it says, and that nothing stale is ever sent: a
cancel, a reschedule, a confirm, a check-in, a no-show or a policy change just before a due
instant leaves nothing for the sweep to send for the old state.

Rollback mode with the clinic's clock moved (`tests/clock.py`): the sweep (`sweep.emit_due`)
and the replan are run by the test at the instants it chooses, as the dispatcher would run
them; the messages are the `webhook_deliveries` rows queued for a subscribed endpoint."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app import adapters
from app.database import unit_of_work
from app.services.reminders import replan, sweep
from app.services.webhooks.appointments import sent_data
from tests.clock import Clock
from tests.conftest import OTHER_KEY, client_for, started_app
from tests.factories import book, create_doctor, next_weekday
from tests.test_webhooks_api import AGENT_KEY, PUBLIC_URL, READONLY_KEY, webhook_settings

DEFAULTS = {
    "offsets_minutes": [1440, 120],
    "quiet_hours": {"start": "20:00", "end": "08:00"},
    "only_unconfirmed": True,
}
REMINDER_DUE, CONFIRMED = "appointment.reminder_due", "appointment.confirmed"


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    app, lifespan = await started_app(webhook_settings(), database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, OTHER_KEY) as client:
        yield client


@pytest.fixture
async def subscribed(admin: httpx.AsyncClient) -> dict[str, Any]:
    """An endpoint that gets every reminder and confirmation (queued only: no dispatcher)."""
    response = await admin.post(
        "/api/v1/webhooks/", json={"url": PUBLIC_URL, "events": [REMINDER_DUE, CONFIRMED]}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def run_sweep(app: FastAPI) -> int:
    """The dispatcher's sweep at the clinic's now (the moved clock)."""
    async with unit_of_work(app.state.sessionmaker) as session:
        return await sweep.emit_due(session, adapters.clinic_of(app.state.settings))


async def run_replan(app: FastAPI) -> bool:
    return await replan.replan(
        app.state.sessionmaker, lambda: adapters.clinic_of(app.state.settings)
    )


async def messages(connection: AsyncConnection, event: str) -> list[dict[str, Any]]:
    """The `data` of each message queued for `event`, as it will be sent: a reminder's by its
    instant (in rollback mode every row's `created_at` is the test's start)."""
    rows = await connection.execute(
        text(
            "SELECT data FROM webhook_deliveries WHERE event = :event"
            " ORDER BY (data->'reminder'->>'due_at')::timestamptz, created_at"
        ),
        {"event": event},
    )
    return [sent_data(row.data) for row in rows]


async def reminders(client: httpx.AsyncClient, appointment_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/appointments/{appointment_id}/reminders")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def statuses(plan: list[dict[str, Any]]) -> dict[int, str]:
    return {r["offset_minutes"]: r["status"] for r in plan}


async def booked(client: httpx.AsyncClient, day: dt.date, start: str, **kw: Any) -> dict[str, Any]:
    doctor = await create_doctor(client)
    response = await book(client, doctor["id"], day, start, **kw)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the policy ---------------------------------------------------------------------------------


async def test_the_policy_starts_with_the_defaults_and_every_role_may_read_it(
    app: FastAPI,
) -> None:
    for key in (OTHER_KEY, AGENT_KEY, READONLY_KEY):
        async with client_for(app, key) as client:
            response = await client.get("/api/v1/reminder-policy")
            assert response.status_code == 200, response.text
            assert response.json() == DEFAULTS


async def test_only_an_admin_changes_the_policy_and_a_field_left_out_stays(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    async with client_for(app, AGENT_KEY) as agent:
        refused = await agent.put("/api/v1/reminder-policy", json={"offsets_minutes": [60]})
        assert refused.status_code == 403
    changed = await admin.put(
        "/api/v1/reminder-policy", json={"offsets_minutes": [60, 2880], "quiet_hours": None}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "offsets_minutes": [60, 2880],
        "quiet_hours": None,
        "only_unconfirmed": True,
    }
    again = await admin.put(
        "/api/v1/reminder-policy",
        json={"quiet_hours": {"start": "22:30", "end": "07:00:00"}, "only_unconfirmed": False},
    )
    assert again.json() == {
        "offsets_minutes": [60, 2880],
        "quiet_hours": {"start": "22:30", "end": "07:00"},
        "only_unconfirmed": False,
    }
    assert (await admin.get("/api/v1/reminder-policy")).json() == again.json()
    none = await admin.put("/api/v1/reminder-policy", json={"offsets_minutes": []})
    assert none.json()["offsets_minutes"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"offsets_minutes": [1, 2, 3, 4, 5]}, "offsets_minutes"),
        ({"offsets_minutes": [60, 10, 20, 30, 40]}, "offsets_minutes"),
        ({"offsets_minutes": [60, 60]}, "offsets_minutes"),
        ({"offsets_minutes": [4]}, "offsets_minutes.0"),
        ({"offsets_minutes": [20161]}, "offsets_minutes.0"),
        ({"offsets_minutes": ["soon"]}, "offsets_minutes.0"),
        ({"offsets_minutes": None}, "offsets_minutes"),
        ({"quiet_hours": {"start": "20:00", "end": "20:00"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "20:00"}}, "quiet_hours.end"),
        ({"only_unconfirmed": None}, "only_unconfirmed"),
        ({"offset_minutes": [60]}, "offset_minutes"),
    ],
)
async def test_a_bad_policy_is_400_naming_the_field_and_changes_nothing(
    admin: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await admin.put("/api/v1/reminder-policy", json=body)
    assert response.status_code == 400, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert (await admin.get("/api/v1/reminder-policy")).json() == DEFAULTS


# -- the plan and what comes due -----------------------------------------------------------------


async def test_a_booking_plans_its_reminders_and_each_is_sent_once_when_due(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: dict[str, Any],
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    assert (appointment["confirmation_status"], appointment["confirmed_at"]) == (
        "unconfirmed",
        None,
    )
    plan = await reminders(admin, appointment["id"])
    assert plan == [
        {
            "offset_minutes": 1440,
            "due_at": f"{day - dt.timedelta(days=1)}T11:00:00Z",
            "status": "scheduled",
        },
        {"offset_minutes": 120, "due_at": f"{day}T09:00:00Z", "status": "scheduled"},
    ]

    clock.set(day - dt.timedelta(days=1), "10:59")
    assert await run_sweep(app) == 0
    clock.set(day - dt.timedelta(days=1), "11:00")
    assert await run_sweep(app) == 1
    assert await run_sweep(app) == 0
    (message,) = await messages(connection, REMINDER_DUE)
    patient = (await admin.get(f"/api/v1/patients/{appointment['patient_id']}")).json()
    assert (
        message["appointment"]
        == (await admin.get(f"/api/v1/appointments/{appointment['id']}")).json()
    )
    assert message["doctor"]["id"] == appointment["doctor_id"]
    assert message["patient"] == {
        "id": patient["id"],
        "name": patient["name"],
        "mobile_number": patient["mobile_number"],
    }
    assert message["reminder"] == {
        "offset_minutes": 1440,
        "due_at": f"{day - dt.timedelta(days=1)}T11:00:00Z",
    }
    patient_id = await connection.scalar(
        text("SELECT patient_id FROM webhook_deliveries WHERE event = :e"), {"e": REMINDER_DUE}
    )
    assert str(patient_id) == patient["id"]  # delivered, it goes to the patient's access log

    clock.set(day, "09:00:30")
    assert await run_sweep(app) == 1
    assert [m["reminder"]["offset_minutes"] for m in await messages(connection, REMINDER_DUE)] == [
        1440,
        120,
    ]
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "sent", 120: "sent"}


async def test_a_reminder_already_past_when_booked_is_skipped_never_sent_late(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    clock.set(day - dt.timedelta(days=1), "12:00")  # a day ahead: the 1440 one has passed
    appointment = await booked(admin, day, "11:00")
    assert statuses(await reminders(admin, appointment["id"])) == {
        1440: "skipped",
        120: "scheduled",
    }
    clock.set(day, "10:00")
    assert await run_sweep(app) == 1
    assert [m["reminder"]["offset_minutes"] for m in await messages(connection, REMINDER_DUE)] == [
        120
    ]


async def test_a_confirmed_booking_has_its_reminders_void(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00", confirmed=True)
    assert appointment["confirmation_status"] == "confirmed"
    assert appointment["confirmed_at"] is not None
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "void", 120: "void"}
    clock.set(day, "10:00")
    assert await run_sweep(app) == 0
    assert await messages(connection, REMINDER_DUE) == []
    assert await messages(connection, CONFIRMED) == []  # the booking's own event says it


async def test_an_appointment_started_before_the_sweep_came_is_skipped(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    """A dispatcher that was down when a reminder came due does not send it after the visit
    has begun."""
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    clock.set(day, "11:00")
    assert await run_sweep(app) == 2
    assert await messages(connection, REMINDER_DUE) == []
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "skipped", 120: "skipped"}


# -- never stale ---------------------------------------------------------------------------------


async def _first_sent(app: FastAPI, day: dt.date, clock: Clock) -> None:
    """The day-before reminder goes out at its instant; the two-hour one is next."""
    clock.set(day - dt.timedelta(days=1), "11:00")
    assert await run_sweep(app) == 1
    clock.set(day, "08:59")  # a minute before the two-hour reminder


async def test_a_cancel_just_before_the_instant_voids_it(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    await _first_sent(app, day, clock)
    assert (await admin.delete(f"/api/v1/appointments/{appointment['id']}")).status_code == 200
    clock.set(day, "09:01")
    assert await run_sweep(app) == 0
    assert len(await messages(connection, REMINDER_DUE)) == 1
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "sent", 120: "void"}


async def test_a_reschedule_voids_the_old_time_and_plans_the_new(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    await _first_sent(app, day, clock)
    later = day + dt.timedelta(days=1)
    moved = await admin.put(
        f"/api/v1/appointments/{appointment['id']}/reschedule",
        json={"date": later.isoformat(), "start_time": "11:00"},
    )
    assert moved.status_code == 200, moved.text
    assert statuses(await reminders(admin, appointment["id"])) == {
        1440: "scheduled",
        120: "scheduled",
    }
    clock.set(day, "09:01")
    assert await run_sweep(app) == 0  # the old time's two-hour reminder is void
    clock.set(day, "11:00")
    assert await run_sweep(app) == 1  # the new time's day-before reminder
    old, new = await messages(connection, REMINDER_DUE)
    assert old["appointment"]["date"] == day.isoformat()
    assert new["appointment"]["date"] == later.isoformat()
    assert new["appointment"]["start_time"] == "11:00"
    assert new["reminder"] == {"offset_minutes": 1440, "due_at": f"{day}T11:00:00Z"}
    rows = await connection.execute(
        text(
            "SELECT offset_minutes, starts_at, status FROM reminders"
            " WHERE appointment_id = :id ORDER BY starts_at, offset_minutes"
        ),
        {"id": appointment["id"]},
    )
    assert [(r.offset_minutes, r.starts_at.date(), r.status) for r in rows] == [
        (120, day, "void"),
        (1440, day, "sent"),
        (120, later, "scheduled"),
        (1440, later, "sent"),
    ]


async def test_moving_back_to_a_former_time_plans_its_reminders_again(
    admin: httpx.AsyncClient, app: FastAPI, subscribed: Any, clock: Clock
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    path = f"/api/v1/appointments/{appointment['id']}/reschedule"
    await admin.put(path, json={"date": day.isoformat(), "start_time": "14:00"})
    await admin.put(path, json={"date": day.isoformat(), "start_time": "11:00"})
    assert statuses(await reminders(admin, appointment["id"])) == {
        1440: "scheduled",
        120: "scheduled",
    }


async def test_a_confirm_just_before_the_instant_voids_it_and_says_so_once(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    await _first_sent(app, day, clock)
    for _ in range(2):
        confirmed = await admin.post(f"/api/v1/appointments/{appointment['id']}/confirm")
        assert confirmed.status_code == 200, confirmed.text
    clock.set(day, "09:01")
    assert await run_sweep(app) == 0
    assert len(await messages(connection, REMINDER_DUE)) == 1
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "sent", 120: "void"}
    (said,) = await messages(connection, CONFIRMED)
    assert said["appointment"]["confirmation_status"] == "confirmed"


async def test_without_only_unconfirmed_a_confirmed_appointment_is_still_reminded(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    changed = await admin.put("/api/v1/reminder-policy", json={"only_unconfirmed": False})
    assert changed.status_code == 200
    assert await run_replan(app)
    appointment = await booked(admin, day, "11:00")
    await admin.post(f"/api/v1/appointments/{appointment['id']}/confirm")
    assert statuses(await reminders(admin, appointment["id"])) == {
        1440: "scheduled",
        120: "scheduled",
    }
    clock.set(day, "09:00")
    assert await run_sweep(app) == 2
    assert len(await messages(connection, REMINDER_DUE)) == 2


async def test_a_check_in_just_before_the_instant_voids_it(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    await _first_sent(app, day, clock)
    checked = await admin.post(f"/api/v1/appointments/{appointment['id']}/check-in")
    assert checked.status_code == 200, checked.text
    clock.set(day, "09:01")
    assert await run_sweep(app) == 0
    assert len(await messages(connection, REMINDER_DUE)) == 1
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "sent", 120: "void"}


async def test_a_no_show_before_the_sweep_came_voids_what_was_due(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    clock.set(day, "11:01")  # both were due; no sweep has come yet
    marked = await admin.post(f"/api/v1/appointments/{appointment['id']}/no-show")
    assert marked.status_code == 200, marked.text
    assert await run_sweep(app) == 0
    assert await messages(connection, REMINDER_DUE) == []
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "void", 120: "void"}


async def test_a_policy_change_just_before_the_instant_holds_it_back_until_replanned(
    admin: httpx.AsyncClient,
    app: FastAPI,
    connection: AsyncConnection,
    subscribed: Any,
    clock: Clock,
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    await _first_sent(app, day, clock)
    changed = await admin.put("/api/v1/reminder-policy", json={"offsets_minutes": [1440, 60]})
    assert changed.status_code == 200
    clock.set(day, "09:01")
    assert await run_sweep(app) == 0  # planned under the old policy: held back
    assert await run_replan(app)
    assert not await run_replan(app)  # nothing more owed
    assert await run_sweep(app) == 0  # the two-hour one is void now
    assert statuses(await reminders(admin, appointment["id"])) == {1440: "sent", 60: "scheduled"}
    clock.set(day, "10:00")
    assert await run_sweep(app) == 1
    reminded = [m["reminder"] for m in await messages(connection, REMINDER_DUE)]
    assert reminded == [
        {"offset_minutes": 1440, "due_at": f"{day - dt.timedelta(days=1)}T11:00:00Z"},
        {"offset_minutes": 60, "due_at": f"{day}T10:00:00Z"},
    ]
    removed = await connection.scalar(
        text("SELECT status FROM reminders WHERE appointment_id = :id AND offset_minutes = 120"),
        {"id": appointment["id"]},
    )
    assert removed == "void"


async def test_a_replan_skips_what_a_new_quiet_window_moves_into_the_past(
    admin: httpx.AsyncClient, app: FastAPI, subscribed: Any, clock: Clock
) -> None:
    day = next_weekday(2)
    appointment = await booked(admin, day, "11:00")
    clock.set(day, "08:40")
    quiet = {"quiet_hours": {"start": "08:30", "end": "09:30"}}
    assert (await admin.put("/api/v1/reminder-policy", json=quiet)).status_code == 200
    assert await run_replan(app)
    plan = await reminders(admin, appointment["id"])
    # The day-before one had come due unsent (no sweep here): it stays as it was.
    assert plan == [
        {
            "offset_minutes": 1440,
            "due_at": f"{day - dt.timedelta(days=1)}T11:00:00Z",
            "status": "scheduled",
        },
        {"offset_minutes": 120, "due_at": f"{day}T08:29:00Z", "status": "skipped"},
    ]


async def test_the_replan_reaches_every_future_appointment_in_batches(
    admin: httpx.AsyncClient, app: FastAPI, connection: AsyncConnection, monkeypatch: Any
) -> None:
    monkeypatch.setattr(replan, "BATCH", 3)
    day = next_weekday(2)
    doctor = await create_doctor(admin)
    ids = []
    for start in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00"):
        response = await book(admin, doctor["id"], day, start)
        ids.append(response.json()["id"])
    await admin.put("/api/v1/reminder-policy", json={"offsets_minutes": [30]})
    assert await run_replan(app)
    rows = await connection.execute(
        text(
            "SELECT offset_minutes, status, count(*) FROM reminders"
            " GROUP BY offset_minutes, status ORDER BY offset_minutes"
        )
    )
    assert [tuple(r) for r in rows] == [(30, "scheduled", 7), (120, "void", 7), (1440, "void", 7)]
    for appointment_id in ids:
        assert statuses(await reminders(admin, appointment_id)) == {30: "scheduled"}


async def test_reminders_of_an_unknown_appointment_are_404(admin: httpx.AsyncClient) -> None:
    response = await admin.get(
        "/api/v1/appointments/00000000-0000-0000-0000-000000000001/reminders"
    )
    assert response.status_code == 404
