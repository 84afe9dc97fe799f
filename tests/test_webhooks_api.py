"""Webhook endpoints over HTTP (spec: "Webhooks"): the answers' shapes, the secret shown once
and stored sealed, bad input refused naming the field with nothing written, the SSRF guard at
creation, roles, the delivery log's filters and retry."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.database import unit_of_work
from app.services.webhooks.events import WebhookEvent, queue_message
from app.services.webhooks.secret_box import box_for
from tests.conftest import OTHER_KEY, client_for, make_settings, started_app

AGENT_KEY, READONLY_KEY = "agent-key-1", "readonly-key-1"
SECRET_KEY = Fernet.generate_key().decode()
# A public address written as such: creation resolves nothing.
PUBLIC_URL = "https://93.184.215.14/hooks/clinic"
ENDPOINT_FIELDS = {"id", "url", "events", "description", "is_active", "disabled_reason"}
DELIVERY_FIELDS = {
    "id",
    "event",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "created_at",
    "delivered_at",
    "next_attempt_at",
}


def webhook_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "service_api_key": f"desk:{OTHER_KEY},phone:{AGENT_KEY}:agent,dash:{READONLY_KEY}:readonly",
        "webhook_secret_key": SECRET_KEY,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    app, lifespan = await started_app(webhook_settings(), database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, OTHER_KEY) as client:
        yield client


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    payload = {"url": PUBLIC_URL, "events": ["appointment.booked"], **body}
    response = await client.post("/api/v1/webhooks/", json=payload)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def count(connection: AsyncConnection, table: str) -> int:
    return int(await connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


def field_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    fields: list[str] = [error["field"] for error in body["errors"]]
    assert len(fields) == 1, body
    return fields[0]


async def test_create_shows_the_secret_once_and_stores_it_sealed(
    admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    created = await create(
        admin, events=["appointment.booked", "webhook.ping"], description="CRM\tmain"
    )
    assert set(created) == ENDPOINT_FIELDS | {"secret", "created_at"}
    assert created["url"] == PUBLIC_URL
    assert created["events"] == ["appointment.booked", "webhook.ping"]
    assert created["is_active"] is True and created["disabled_reason"] is None
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32

    read = (await admin.get(f"/api/v1/webhooks/{created['id']}")).json()
    assert "secret" not in read
    assert read == {k: v for k, v in created.items() if k != "secret"}
    listed = (await admin.get("/api/v1/webhooks/")).json()
    assert listed == [read]

    stored = await connection.scalar(text("SELECT secret FROM webhook_endpoints"))
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert box_for(webhook_settings()).open(stored) == secret


async def test_rotate_gives_a_new_secret_and_keeps_the_old_one_a_day(
    admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    created = await create(admin)
    rotated = await admin.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret", "created_at"}
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    row = (
        await connection.execute(
            text(
                "SELECT secret, previous_secret,"
                " previous_secret_expires_at - now() AS overlap FROM webhook_endpoints"
            )
        )
    ).one()
    box = box_for(webhook_settings())
    assert box.open(row.secret) == body["secret"]
    assert box.open(row.previous_secret) == created["secret"]
    assert row.overlap.total_seconds() == 24 * 3600
    assert "secret" not in (await admin.get(f"/api/v1/webhooks/{created['id']}")).json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["appointment.booked", "appointment.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"events": ["appointment.booked", "appointment.booked"]}, "events"),
        ({"events": "appointment.booked"}, "events"),
        ({"url": "http://93.184.215.14/hooks"}, "url"),
        ({"url": "ftp://93.184.215.14/hooks"}, "url"),
        ({"url": "/hooks/relative"}, "url"),
        ({"url": "https://93.184.215.14/" + "a" * 2030}, "url"),
        ({"url": "https://93.184.215.14:99999/hooks"}, "url"),
        ({"secret": "whsec_mine"}, "secret"),
        ({"is_active": False}, "is_active"),
        ({"description": "x\x00y"}, "description"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    admin: httpx.AsyncClient, connection: AsyncConnection, body: dict[str, Any], field: str
) -> None:
    payload = {"url": PUBLIC_URL, "events": ["appointment.booked"], **body}
    response = await admin.post("/api/v1/webhooks/", json=payload)
    assert field_of(response) == field
    assert await count(connection, "webhook_endpoints") == 0


async def test_a_url_of_2048_characters_is_accepted_and_one_more_is_not(
    admin: httpx.AsyncClient,
) -> None:
    base = "https://93.184.215.14/"
    await create(admin, url=base + "a" * (2048 - len(base)))
    response = await admin.post(
        "/api/v1/webhooks/",
        json={"url": base + "a" * (2049 - len(base)), "events": ["appointment.booked"]},
    )
    assert field_of(response) == "url"


PRIVATE_URLS = [
    "https://127.0.0.1/hooks",
    "https://127.8.9.10:8443/hooks",
    "https://10.1.2.3/hooks",
    "https://172.16.0.5/hooks",
    "https://172.31.255.254/hooks",
    "https://192.168.1.20/hooks",
    "https://169.254.169.254/latest/meta-data",
    "https://169.254.10.1/hooks",
    "https://[::1]/hooks",
    "https://[fe80::1]/hooks",
    "https://[fd12:3456::1]/hooks",
    "https://[::ffff:127.0.0.1]/hooks",
    "https://0.0.0.0/hooks",
    "https://[::]/hooks",
    "https://localhost/hooks",
    "https://LOCALHOST:9000/hooks",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_hosts_are_refused_at_creation(
    admin: httpx.AsyncClient, connection: AsyncConnection, url: str
) -> None:
    response = await admin.post(
        "/api/v1/webhooks/", json={"url": url, "events": ["appointment.booked"]}
    )
    assert field_of(response) == "url"
    message = response.json()["errors"][0]["message"]
    assert "address" in message and "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in message
    assert await count(connection, "webhook_endpoints") == 0


async def test_a_name_that_resolves_to_loopback_says_what_it_resolves_to(
    admin: httpx.AsyncClient,
) -> None:
    response = await admin.post(
        "/api/v1/webhooks/", json={"url": "https://localhost/x", "events": ["webhook.ping"]}
    )
    assert field_of(response) == "url"
    assert "localhost resolves to" in response.json()["errors"][0]["message"]
    assert "loopback" in response.json()["errors"][0]["message"]


async def test_a_host_that_does_not_resolve_is_refused(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/api/v1/webhooks/",
        json={"url": "https://no-such-host.invalid/hooks", "events": ["webhook.ping"]},
    )
    assert field_of(response) == "url"
    assert "does not resolve" in response.json()["errors"][0]["message"]


async def test_the_settings_allow_http_and_private_hosts(
    connection: AsyncConnection, database_url: str
) -> None:
    settings = webhook_settings(webhook_allow_http=True, webhook_allow_private_networks=True)
    app, lifespan = await started_app(settings, database_url, connection)
    try:
        async with client_for(app, OTHER_KEY) as admin:
            for url in ("http://127.0.0.1:9/hooks", "http://localhost/x", "https://[::1]/x"):
                await create(admin, url=url)
            refused = await admin.post(
                "/api/v1/webhooks/", json={"url": "ftp://127.0.0.1/", "events": ["webhook.ping"]}
            )
            assert field_of(refused) == "url"
    finally:
        await lifespan.__aexit__(None, None, None)


async def test_patch_is_partial_and_checks_like_create(
    admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    created = await create(admin, description="CRM")
    url = f"/api/v1/webhooks/{created['id']}"
    changed = await admin.patch(url, json={"events": ["appointment.cancelled"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["appointment.cancelled"]
    assert changed.json()["description"] == "CRM" and changed.json()["url"] == PUBLIC_URL
    assert "secret" not in changed.json()
    cleared = await admin.patch(url, json={"description": None})
    assert cleared.json()["description"] is None

    for body, field in (
        ({"url": "https://192.168.0.1/x"}, "url"),
        ({"url": None}, "body"),
        ({"events": []}, "events"),
        ({"events": ["nope"]}, "events"),
        ({"secret": "whsec_x"}, "secret"),
        ({"is_active": "maybe"}, "is_active"),
    ):
        assert field_of(await admin.patch(url, json=body)) == field, body
    row = (await connection.execute(text("SELECT url, events FROM webhook_endpoints"))).one()
    assert (row.url, row.events) == (PUBLIC_URL, ["appointment.cancelled"])


async def test_enabling_clears_the_reason_and_requeues_waiting_messages(
    app: FastAPI, admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    created = await create(admin)
    endpoint_id = uuid.UUID(created["id"])
    async with unit_of_work(app.state.sessionmaker) as session:
        await queue_message(session, WebhookEvent.APPOINTMENT_BOOKED, {"n": 1})
    disabled = await admin.patch(f"/api/v1/webhooks/{endpoint_id}", json={"is_active": False})
    assert disabled.json()["is_active"] is False
    # Disabled: its pending message has no job to be claimed, and new messages skip it.
    assert await count(connection, "outbox_jobs") == 0
    async with unit_of_work(app.state.sessionmaker) as session:
        assert await queue_message(session, WebhookEvent.APPOINTMENT_BOOKED, {"n": 2}) == []
    await connection.execute(
        text("UPDATE webhook_endpoints SET disabled_reason = 'the receiver answered 410 Gone'")
    )
    enabled = await admin.patch(f"/api/v1/webhooks/{endpoint_id}", json={"is_active": True})
    assert enabled.json()["is_active"] is True and enabled.json()["disabled_reason"] is None
    queued = await connection.execute(text("SELECT target, aggregate_id, status FROM outbox_jobs"))
    delivery = await connection.scalar(text("SELECT id FROM webhook_deliveries"))
    assert [tuple(r) for r in queued] == [("webhook", delivery, "pending")]


async def test_ping_queues_a_ping_whatever_the_events(
    admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    created = await create(admin, events=["appointment.cancelled"])
    response = await admin.post(f"/api/v1/webhooks/{created['id']}/ping")
    assert response.status_code == 202, response.text
    delivery = response.json()
    assert set(delivery) == DELIVERY_FIELDS
    assert delivery["event"] == "webhook.ping" and delivery["status"] == "pending"
    assert delivery["attempts"] == 0 and delivery["id"].startswith("msg_")
    row = (
        await connection.execute(
            text(
                "SELECT d.id, d.data, d.message_id, j.target FROM webhook_deliveries d"
                " JOIN outbox_jobs j ON j.aggregate_id = d.id"
            )
        )
    ).one()
    assert row.data == {"webhook_id": created["id"]}
    assert row.message_id == delivery["id"] and row.target == "webhook"
    listed = (await admin.get(f"/api/v1/webhooks/{created['id']}/deliveries")).json()
    assert listed == [delivery]

    await admin.patch(f"/api/v1/webhooks/{created['id']}", json={"is_active": False})
    refused = await admin.post(f"/api/v1/webhooks/{created['id']}/ping")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"


async def test_delivery_log_filters_and_paging(app: FastAPI, admin: httpx.AsyncClient) -> None:
    created = await create(admin, events=["appointment.booked", "appointment.cancelled"])
    async with unit_of_work(app.state.sessionmaker) as session:
        for event in ("appointment.booked", "appointment.cancelled", "appointment.booked"):
            await queue_message(session, WebhookEvent(event), {"x": 1})
        await session.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'failed', attempts = 10"
                " WHERE event = 'appointment.cancelled'"
            )
        )
    log = f"/api/v1/webhooks/{created['id']}/deliveries"
    assert len((await admin.get(log)).json()) == 3
    booked = (await admin.get(log, params={"event": "appointment.booked"})).json()
    assert [d["event"] for d in booked] == ["appointment.booked"] * 2
    failed = (await admin.get(log, params={"status": "failed"})).json()
    assert [(d["event"], d["attempts"]) for d in failed] == [("appointment.cancelled", 10)]
    both = await admin.get(log, params={"status": "pending", "event": "appointment.cancelled"})
    assert both.json() == []
    assert len((await admin.get(log, params={"limit": 2})).json()) == 2
    assert len((await admin.get(log, params={"limit": 2, "offset": 2})).json()) == 1
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"event": "appointment.exploded"}, "event"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
    ):
        assert field_of(await admin.get(log, params=params)) == field


async def test_retry_makes_a_failed_delivery_pending_again(
    admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    created = await create(admin)
    ping = (await admin.post(f"/api/v1/webhooks/{created['id']}/ping")).json()
    retry = f"/api/v1/webhooks/{created['id']}/deliveries/{ping['id']}/retry"
    pending = await admin.post(retry)
    assert pending.status_code == 409 and pending.json()["code"] == "invalid_state"

    await connection.execute(
        text(
            "UPDATE webhook_deliveries SET status = 'failed', attempts = 10,"
            " last_status_code = 503, last_error = 'the receiver answered 503'"
        )
    )
    await connection.execute(text("UPDATE outbox_jobs SET status = 'failed'"))
    again = await admin.post(retry)
    assert again.status_code == 202, again.text
    body = again.json()
    assert (body["id"], body["status"], body["attempts"]) == (ping["id"], "pending", 0)
    jobs_ = await connection.execute(text("SELECT status FROM outbox_jobs ORDER BY id"))
    assert [r.status for r in jobs_] == ["failed", "pending"]

    await connection.execute(text("UPDATE webhook_deliveries SET status = 'delivered'"))
    delivered = await admin.post(retry)
    assert delivered.status_code == 409 and delivered.json()["code"] == "invalid_state"

    await connection.execute(text("UPDATE webhook_deliveries SET status = 'failed'"))
    await admin.patch(f"/api/v1/webhooks/{created['id']}", json={"is_active": False})
    disabled = await admin.post(retry)
    assert disabled.status_code == 409 and disabled.json()["code"] == "invalid_state"

    unknown = await admin.post(f"/api/v1/webhooks/{created['id']}/deliveries/msg_nope/retry")
    assert unknown.status_code == 404


async def test_delete_drops_undelivered_messages_and_their_jobs(
    admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    kept = await create(admin)
    gone = await create(admin)
    for endpoint in (kept, gone):
        await admin.post(f"/api/v1/webhooks/{endpoint['id']}/ping")
    response = await admin.delete(f"/api/v1/webhooks/{gone['id']}")
    assert response.status_code == 204 and response.content == b""
    assert (await admin.get(f"/api/v1/webhooks/{gone['id']}")).status_code == 404
    assert (await admin.delete(f"/api/v1/webhooks/{gone['id']}")).status_code == 404
    rows = await connection.execute(text("SELECT endpoint_id FROM webhook_deliveries"))
    assert [str(r.endpoint_id) for r in rows] == [kept["id"]]
    assert await count(connection, "outbox_jobs") == 1


async def test_unknown_ids_are_404(admin: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    base = f"/api/v1/webhooks/{missing}"
    for method, path, body in (
        ("GET", base, None),
        ("PATCH", base, {"description": "x"}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("POST", f"{base}/ping", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/msg_x/retry", None),
    ):
        response = await admin.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "not_found"


async def test_only_admins_may_touch_webhooks(
    app: FastAPI, admin: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    created = await create(admin)
    base = f"/api/v1/webhooks/{created['id']}"
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/v1/webhooks/", None),
        ("POST", "/api/v1/webhooks/", {"url": PUBLIC_URL, "events": ["webhook.ping"]}),
        ("GET", base, None),
        ("PATCH", base, {"is_active": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("POST", f"{base}/ping", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/msg_x/retry", None),
    ]
    for key in (AGENT_KEY, READONLY_KEY):
        async with client_for(app, key) as client:
            for method, path, body in calls:
                response = await client.request(method, path, json=body)
                assert response.status_code == 403, (key, method, path, response.text)
                assert response.json()["code"] == "forbidden"
    assert await count(connection, "webhook_endpoints") == 1
    assert await count(connection, "webhook_deliveries") == 0
    operations = app.openapi()["paths"]
    for path, methods in operations.items():
        if path.startswith("/api/v1/webhooks"):
            for operation in methods.values():
                assert operation["x-roles"] == ["admin"], path
                assert "_" in operation["operationId"] and "api_v1" not in operation["operationId"]
