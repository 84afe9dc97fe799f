"""How webhook messages are queued (`services.webhooks.events`): once per active subscribed
endpoint, with one outbox job each, in the caller's transaction, from Python or from inside a
hand-written statement; the settings, and how secrets are sealed at rest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import SettingsError, load_settings
from app.database import unit_of_work
from app.services import webhook_service
from app.services.outbox import jobs
from app.services.webhooks import events
from app.services.webhooks.events import WebhookEvent, queue_message, queue_messages_sql
from app.services.webhooks.secret_box import KEY_FILE, box_for
from tests.conftest import OTHER_KEY, client_for, make_settings, started_app
from tests.test_webhooks_api import count, create, webhook_settings


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    app, lifespan = await started_app(webhook_settings(), database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, OTHER_KEY) as client:
        yield client


async def test_a_message_goes_to_each_active_subscribed_endpoint_once(
    app: FastAPI, admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    booked = [await create(admin)]
    booked.append(await create(admin, events=["appointment.booked", "webhook.ping"]))
    await create(admin, events=["appointment.cancelled"])
    off = await create(admin)
    await admin.patch(f"/api/v1/webhooks/{off['id']}", json={"is_active": False})
    async with unit_of_work(app.state.sessionmaker) as session:
        ids = await queue_message(session, WebhookEvent.APPOINTMENT_BOOKED, {"appointment": 1})
    rows = await connection.execute(
        text(
            "SELECT d.endpoint_id, d.event, d.data, d.status, d.attempts, j.target, j.status AS job"
            " FROM webhook_deliveries d JOIN outbox_jobs j ON j.aggregate_id = d.id"
        )
    )
    found = sorted((str(r.endpoint_id), r.event, r.data["appointment"], r.job) for r in rows)
    expected = sorted((e["id"], "appointment.booked", 1, "pending") for e in booked)
    assert found == expected and len(ids) == 2
    message_ids = await connection.execute(text("SELECT message_id FROM webhook_deliveries"))
    assert all(len(r.message_id) == 26 and r.message_id.startswith("msg_") for r in message_ids)


async def test_the_fragment_queues_for_many_rows_beside_another_target(
    admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """`queue_messages_sql` inside a statement that queues calendar jobs too, as the booking
    statement will."""
    endpoint = await create(admin, events=["appointment.booked", "appointment.cancelled"])
    patient = uuid.uuid4()
    await connection.execute(
        text("INSERT INTO patients (id, name, mobile_number) VALUES (:id, 'Asha', '+14155550100')"),
        {"id": patient},
    )
    statement = f"""
        WITH changed AS (
            SELECT * FROM (VALUES
                ('appointment.booked', CAST('{{"n": 1}}' AS jsonb), CAST(:patient AS uuid)),
                ('appointment.cancelled', CAST('{{"n": 2}}' AS jsonb), NULL),
                ('appointment.no_show', CAST('{{"n": 3}}' AS jsonb), NULL)
            ) AS v(event, data, patient_id)
        ), {queue_messages_sql("r.event", "changed")},
        {jobs.queue_jobs(jobs.CALENDAR, "SELECT CAST(:calendar AS uuid)")}
        SELECT (SELECT count(*) FROM webhook_woken) AS webhooks, (SELECT count(*) FROM woken)
    """
    await connection.execute(text(statement), {"patient": patient, "calendar": uuid.uuid4()})
    rows = await connection.execute(
        text("SELECT event, data, patient_id, endpoint_id FROM webhook_deliveries ORDER BY event")
    )
    assert [(r.event, r.data, r.patient_id, str(r.endpoint_id)) for r in rows] == [
        ("appointment.booked", {"n": 1}, patient, endpoint["id"]),
        ("appointment.cancelled", {"n": 2}, None, endpoint["id"]),
    ]
    targets = await connection.execute(
        text("SELECT target, count(*) FROM outbox_jobs GROUP BY target ORDER BY target")
    )
    assert [tuple(r) for r in targets] == [("calendar", 1), ("webhook", 2)]


async def test_a_rolled_back_change_queues_nothing(
    app: FastAPI, admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    await create(admin)

    class Refused(Exception):
        pass

    with pytest.raises(Refused):
        async with unit_of_work(app.state.sessionmaker) as session:
            await queue_message(session, WebhookEvent.APPOINTMENT_BOOKED, {"n": 1})
            raise Refused
    assert await count(connection, "webhook_deliveries") == 0
    assert await count(connection, "outbox_jobs") == 0


def test_webhook_settings_are_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in (
        ("WEBHOOK_TIMEOUT_SECONDS", "0"),
        ("WEBHOOK_TIMEOUT_SECONDS", "121"),
        ("WEBHOOK_MAX_ATTEMPTS", "0"),
        ("WEBHOOK_MAX_ATTEMPTS", "101"),
        ("WEBHOOK_ALLOW_HTTP", "perhaps"),
        ("WEBHOOK_SECRET_KEY", "not-a-key"),
    ):
        with monkeypatch.context() as patched:
            patched.setenv(variable, value)
            with pytest.raises(SettingsError, match=f"^invalid setting {variable}: "):
                load_settings()
    defaults = make_settings()
    assert defaults.webhook_allow_http is False
    assert defaults.webhook_allow_private_networks is False
    assert (defaults.webhook_timeout_seconds, defaults.webhook_max_attempts) == (10, 10)


def test_without_a_key_setting_one_is_made_once_under_data_dir(tmp_path: Any) -> None:
    settings = make_settings(data_dir=tmp_path / "data")
    sealed = box_for(settings).seal("whsec_abc")
    key_file = tmp_path / "data" / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in key_file.parent.iterdir()) == [KEY_FILE]
    again = make_settings(data_dir=tmp_path / "data", webhook_secret_key=key_file.read_text())
    assert box_for(again).open(sealed) == "whsec_abc"
    # A key rotated in front keeps the old one's secrets readable.
    rotated = f"{Fernet.generate_key().decode()},{key_file.read_text().strip()}"
    assert box_for(make_settings(webhook_secret_key=rotated)).open(sealed) == "whsec_abc"


def test_event_types_are_the_specs() -> None:
    assert {event.value for event in WebhookEvent} == {
        "appointment.booked",
        "appointment.rescheduled",
        "appointment.cancelled",
        "appointment.checked_in",
        "appointment.completed",
        "appointment.no_show",
        "appointment.confirmed",
        "appointment.reminder_due",
        "waitlist.offered",
        "waitlist.offer_expired",
        "webhook.ping",
    }
    assert events.queue_messages_sql("'webhook.ping'", "x").count("webhook_") >= 3


async def test_the_delivery_log_keeps_a_month_and_never_drops_what_is_owed(
    app: FastAPI, admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    endpoint = await create(admin)
    async with unit_of_work(app.state.sessionmaker) as session:
        for _ in range(4):
            await queue_message(session, WebhookEvent.APPOINTMENT_BOOKED, {"appointment": 1})
    # Four messages: delivered, failed and pending ones past the month, a delivered one within.
    await connection.execute(
        text(
            """
            WITH aged AS (
                SELECT id, row_number() OVER (ORDER BY id) AS n FROM webhook_deliveries
            )
            UPDATE webhook_deliveries d
               SET status = (ARRAY['delivered', 'failed', 'pending', 'delivered'])[aged.n],
                   created_at = now() - make_interval(days => (ARRAY[31, 31, 31, 29])[aged.n])
              FROM aged WHERE aged.id = d.id
            """
        )
    )
    await connection.execute(
        text(
            "UPDATE outbox_jobs j SET status = CASE d.status WHEN 'delivered' THEN 'done'"
            " ELSE d.status END FROM webhook_deliveries d WHERE j.aggregate_id = d.id"
        )
    )
    async with unit_of_work(app.state.sessionmaker) as session:
        await webhook_service.purge_old_deliveries(session)
    rows = await connection.execute(
        text(
            "SELECT d.status, extract(day FROM now() - d.created_at)::int AS age, j.status AS job"
            " FROM webhook_deliveries d LEFT JOIN outbox_jobs j ON j.aggregate_id = d.id"
            " WHERE d.endpoint_id = :endpoint ORDER BY age"
        ),
        {"endpoint": endpoint["id"]},
    )
    assert [tuple(r) for r in rows] == [("delivered", 29, "done"), ("pending", 31, "pending")]
    orphans = await connection.scalar(
        text(
            "SELECT count(*) FROM outbox_jobs j WHERE j.target = 'webhook' AND NOT EXISTS"
            " (SELECT 1 FROM webhook_deliveries d WHERE d.id = j.aggregate_id)"
        )
    )
    assert orphans == 0
