"""Webhook delivery through the outbox to real receivers on loopback, verified as a receiver
would, with the `standardwebhooks` package: the body and headers, signatures (two after a
rotation), the same webhook-id on every retry, giving up, 410, timeouts, the address checked
again before each attempt, the access log, and each message delivered once by two dispatchers;
and the `appointment.*` messages, emitted where each change happens (the booking statement,
alone or in a batch, a reschedule, a cancel, the desk's steps) and only when it commits, their
`data.appointment` what GET /appointments/{id} answered just after the change. Committed mode:
the dispatcher reads what the requests committed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.config import Settings
from app.database import unit_of_work
from app.models.enums import AppointmentAction
from app.services.outbox.dispatcher import Dispatcher
from app.services.webhooks.appointments import EVENT_OF_ACTION, appointment_changed
from app.services.webhooks.events import WebhookEvent, queue_message
from app.services.webhooks.mirror import WebhookMirror
from app.services.webhooks.signing import new_secret
from tests.clock import Clock
from tests.conftest import OTHER_KEY, client_for
from tests.factories import booking_payload, create_doctor, create_patient, next_weekday
from tests.fake_receiver import Receiver
from tests.servers import free_port
from tests.test_calendar_mirror import eventually
from tests.webhook_harness import Made, delivery_settings


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**fields: Any) -> Receiver:
        receiver = Receiver(**fields)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()


async def drain(
    app: FastAPI, settings: Settings, database_url: str, within: float = 15, **named: Any
) -> None:
    """Run a dispatcher with the webhook mirror until no webhook job is owed."""
    mirror = WebhookMirror(settings, app.state.sessionmaker)
    dispatcher = Dispatcher(settings, app.state.sessionmaker, database_url, [mirror], **named)
    deadline = time.monotonic() + within
    try:
        while True:
            await dispatcher.run_until_idle()
            async with unit_of_work(app.state.sessionmaker) as session:
                owed = await session.scalar(
                    text(
                        "SELECT count(*) FROM outbox_jobs WHERE target = 'webhook'"
                        " AND status IN ('pending', 'in_progress')"
                    )
                )
            if not owed:
                return
            assert time.monotonic() < deadline, "webhook jobs still owed"
            await asyncio.sleep(0.02)
    finally:
        await mirror.aclose()


async def endpoint(client: httpx.AsyncClient, url: str, *events: str) -> dict[str, Any]:
    body = {"url": url, "events": list(events or ["appointment.booked"])}
    response = await client.post("/api/v1/webhooks/", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries(client: httpx.AsyncClient, endpoint_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def queue(app: FastAPI, event: WebhookEvent, data: dict[str, Any], **kw: Any) -> None:
    async with unit_of_work(app.state.sessionmaker) as session:
        await queue_message(session, event, data, **kw)


def counted(event: str, outcome: str) -> float:
    labels = {"event": event, "outcome": outcome}
    return REGISTRY.get_sample_value("webhook_deliveries_total", labels) or 0.0


async def test_a_ping_is_delivered_signed_as_standard_webhooks_says(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service()
    receiver = receivers()
    created = await endpoint(client, receiver.url, "appointment.cancelled")
    before = counted("webhook.ping", "delivered")
    ping = (await client.post(f"/api/v1/webhooks/{created['id']}/ping")).json()
    await drain(app, settings, database_url)

    (request,) = receiver.received()
    assert request.path == "/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == ping["id"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    assert request.headers["webhook-signature"].startswith("v1,")
    body = Webhook(created["secret"]).verify(request.body, request.headers)
    assert body == json.loads(request.body)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "webhook.ping" and body["data"] == {"webhook_id": created["id"]}
    stamp = dt.datetime.fromisoformat(body["timestamp"])
    assert stamp.utcoffset() is not None
    assert abs((stamp - dt.datetime.now(dt.UTC)).total_seconds()) < 30
    assert b": " not in request.body and b", " not in request.body  # compact JSON

    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(request.body.replace(b"ping", b"pong"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)

    (logged,) = await deliveries(client, created["id"])
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert logged["delivered_at"] is not None and logged["next_attempt_at"] is None
    assert logged["last_error"] is None
    assert counted("webhook.ping", "delivered") == before + 1


async def test_after_a_rotation_both_secrets_verify_for_a_day(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service()
    receiver = receivers()
    created = await endpoint(client, receiver.url)
    old = created["secret"]
    new = (await client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")).json()["secret"]
    await client.post(f"/api/v1/webhooks/{created['id']}/ping")
    await drain(app, settings, database_url)

    (request,) = receiver.received()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(request.body + b" ", request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)

    async with unit_of_work(app.state.sessionmaker) as session:
        await session.execute(
            text("UPDATE webhook_endpoints SET previous_secret_expires_at = now()")
        )
    await client.post(f"/api/v1/webhooks/{created['id']}/ping")
    await drain(app, settings, database_url)
    later = receiver.received()[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(later.body, later.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(later.body, later.headers)


async def test_retries_send_the_same_message_under_the_same_id(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service()
    receiver = receivers(script=[500, 503, 302])
    created = await endpoint(client, receiver.url)
    before = counted("appointment.booked", "retry")
    await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"appointment": {"id": "a1"}})
    await drain(app, settings, database_url)

    received = receiver.received()
    assert len(received) == 4
    assert len({r.message_id for r in received}) == 1
    assert len({r.body for r in received}) == 1
    for request in received:
        Webhook(created["secret"]).verify(request.body, request.headers)
    (logged,) = await deliveries(client, created["id"])
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == (
        "delivered",
        4,
        200,
    )
    assert logged["last_error"] is None and logged["id"] == received[0].message_id
    assert counted("appointment.booked", "retry") == before + 3


async def test_gives_up_after_the_attempts_allowed_then_retry_sends_it_again(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service(
        webhook_max_attempts=3,
        dispatcher_backoff_base_seconds=0.4,
        dispatcher_backoff_max_seconds=0.5,
    )
    receiver = receivers(status=503)
    created = await endpoint(client, receiver.url)
    await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"n": 1})
    before = counted("appointment.booked", "failed")

    mirror = WebhookMirror(settings, app.state.sessionmaker)
    await Dispatcher(settings, app.state.sessionmaker, database_url, [mirror]).run_until_idle()
    await mirror.aclose()
    (waiting,) = await deliveries(client, created["id"])
    assert (waiting["status"], waiting["attempts"], waiting["last_status_code"]) == (
        "pending",
        1,
        503,
    )
    assert waiting["last_error"] == "the receiver answered 503"
    assert waiting["next_attempt_at"] is not None

    await drain(app, settings, database_url)
    assert len(receiver.received()) == 3
    (failed,) = await deliveries(client, created["id"])
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == (
        "failed",
        3,
        503,
    )
    assert failed["last_error"] == "the receiver answered 503 (gave up after 3 attempts)"
    assert failed["next_attempt_at"] is None
    assert counted("appointment.booked", "failed") == before + 1

    receiver.status = 200
    retried = await client.post(f"/api/v1/webhooks/{created['id']}/deliveries/{failed['id']}/retry")
    assert retried.status_code == 202, retried.text
    await drain(app, settings, database_url)
    assert [r.message_id for r in receiver.received()] == [failed["id"]] * 4
    (delivered,) = await deliveries(client, created["id"])
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 1)


async def test_retry_after_is_honoured(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service(dispatcher_backoff_max_seconds=5)
    receiver = receivers(script=[429], retry_after="1")
    await endpoint(client, receiver.url)
    await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"n": 1})
    await drain(app, settings, database_url)
    first, second = receiver.received()
    assert second.at - first.at >= 0.95


async def test_410_disables_the_endpoint_and_its_other_messages_wait(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service(dispatcher_concurrency=1)
    receiver = receivers(status=410)
    created = await endpoint(client, receiver.url)
    for n in range(3):
        await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"n": n})
    before = counted("appointment.booked", "disabled")
    await drain(app, settings, database_url)

    assert len(receiver.received()) == 1
    gone = receiver.received()[0].message_id
    read = (await client.get(f"/api/v1/webhooks/{created['id']}")).json()
    assert read["is_active"] is False and "410" in read["disabled_reason"]
    logged = {d["id"]: d for d in await deliveries(client, created["id"])}
    assert (logged[gone]["status"], logged[gone]["last_status_code"]) == ("failed", 410)
    waiting = [d for d in logged.values() if d["id"] != gone]
    assert [(d["status"], d["attempts"]) for d in waiting] == [("pending", 0)] * 2
    assert counted("appointment.booked", "disabled") == before + 1
    # New messages skip a disabled endpoint.
    await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"n": 3})
    assert len(await deliveries(client, created["id"])) == 3

    receiver.status = 200
    enabled = await client.patch(f"/api/v1/webhooks/{created['id']}", json={"is_active": True})
    assert enabled.json()["disabled_reason"] is None
    await drain(app, settings, database_url)
    assert sorted(r.message_id for r in receiver.received()[1:]) == sorted(d["id"] for d in waiting)
    statuses = sorted(d["status"] for d in await deliveries(client, created["id"]))
    assert statuses == ["delivered", "delivered", "failed"]


async def test_a_timeout_fails_the_attempt_and_never_holds_up_another_endpoint(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service(webhook_timeout_seconds=0.5, webhook_max_attempts=1)
    slow, fast = receivers(delay=3), receivers()
    hanging = await endpoint(client, slow.url)
    answering = await endpoint(client, fast.url)
    await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"n": 1})
    started = time.monotonic()
    await drain(app, settings, database_url)
    assert time.monotonic() - started < 2.5  # the sleeping receiver was not waited for

    (sent,) = slow.received()
    (answered,) = fast.received()
    assert answered.at < sent.at + 0.5  # answered while the other one hung
    (timed_out,) = await deliveries(client, hanging["id"])
    assert (timed_out["status"], timed_out["attempts"], timed_out["last_status_code"]) == (
        "failed",
        1,
        None,
    )
    assert timed_out["last_error"].startswith("no answer within 0.5 seconds")
    (delivered,) = await deliveries(client, answering["id"])
    assert delivered["status"] == "delivered"


async def test_the_address_is_checked_again_before_every_attempt(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, _ = await service()
    receiver = receivers()
    created = await endpoint(client, receiver.url)
    await client.post(f"/api/v1/webhooks/{created['id']}/ping")
    stricter = delivery_settings(webhook_allow_private_networks=False, webhook_max_attempts=2)
    await drain(app, stricter, database_url)

    assert receiver.received() == []
    (refused,) = await deliveries(client, created["id"])
    assert (refused["status"], refused["attempts"], refused["last_status_code"]) == (
        "failed",
        2,
        None,
    )
    assert refused["last_error"].startswith("not sent: the url 127.0.0.1 is a loopback address")
    assert refused["last_error"].endswith("(gave up after 2 attempts)")


async def test_a_delivered_message_that_carries_a_patient_is_in_their_access_log(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service()
    receiver = receivers()
    created = await endpoint(client, receiver.url, "waitlist.offered", "webhook.ping")
    patient = await create_patient(client)
    data = {"patient": {k: patient[k] for k in ("id", "name", "mobile_number")}}
    await queue(app, WebhookEvent.WAITLIST_OFFERED, data, patient_id=uuid.UUID(patient["id"]))
    await client.post(f"/api/v1/webhooks/{created['id']}/ping")
    await drain(app, settings, database_url)

    assert len(receiver.received()) == 2
    log = (await client.get(f"/api/v1/patients/{patient['id']}/access-log")).json()
    by_webhook = [entry for entry in log if entry["via"] == "webhook"]
    assert len(by_webhook) == 1
    assert by_webhook[0]["actor"] == f"webhook:{created['id']}"
    assert by_webhook[0]["what"] == "record"


async def test_messages_of_a_deleted_endpoint_are_never_sent(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service()
    receiver = receivers()
    created = await endpoint(client, receiver.url)
    await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"n": 1})
    assert (await client.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 204
    await drain(app, settings, database_url)
    assert receiver.received() == []
    async with unit_of_work(app.state.sessionmaker) as session:
        assert await session.scalar(text("SELECT count(*) FROM outbox_jobs")) == 0


async def test_two_dispatchers_deliver_each_message_exactly_once(
    service: Made, receivers: Callable[..., Receiver], database_url: str
) -> None:
    app, client, settings = await service()
    receiver = receivers(delay=0.02)
    created = await endpoint(client, receiver.url)
    for n in range(20):
        await queue(app, WebhookEvent.APPOINTMENT_BOOKED, {"n": n})
    await asyncio.gather(
        drain(app, settings, database_url, worker_id="one"),
        drain(app, settings, database_url, worker_id="two"),
    )
    ids = [r.message_id for r in receiver.received()]
    assert len(ids) == 20 and len(set(ids)) == 20
    logged = await deliveries(client, created["id"])
    assert {(d["status"], d["attempts"]) for d in logged} == {("delivered", 1)}


async def test_lists_are_ordered_as_the_spec_says(service: Made) -> None:
    _, client, _ = await service()
    made = [await endpoint(client, f"https://93.184.215.{n}/x") for n in (10, 11, 12)]
    listed = (await client.get("/api/v1/webhooks/")).json()
    assert [e["id"] for e in listed] == [e["id"] for e in made]
    pings = [(await client.post(f"/api/v1/webhooks/{made[0]['id']}/ping")).json() for _ in "abc"]
    logged = await deliveries(client, made[0]["id"])
    assert [d["id"] for d in logged] == [p["id"] for p in reversed(pings)]


async def test_the_service_delivers_by_itself(
    service: Made, receivers: Callable[..., Receiver]
) -> None:
    _, client, _ = await service(dispatcher_enabled=True, dispatcher_poll_seconds=0.2)
    receiver = receivers()
    created = await endpoint(client, receiver.url)
    started = time.monotonic()
    await client.post(f"/api/v1/webhooks/{created['id']}/ping")

    async def arrived() -> bool:
        return len(receiver.received()) == 1

    await eventually(arrived, within=5)
    assert time.monotonic() - started < 5
    Webhook(created["secret"]).verify(receiver.received()[0].body, receiver.received()[0].headers)


def readme_receiver() -> str:
    """The README's receiver, as a reader would copy it."""
    readme = Path(__file__).resolve().parents[1] / "README.md"
    section = readme.read_text().split("**A receiver**", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.splitlines()) <= 15
    return code


async def test_the_readmes_receiver_verifies_a_real_delivery(
    service: Made, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app, client, settings = await service()
    port = free_port()
    created = await endpoint(client, f"http://127.0.0.1:{port}/", "webhook.ping")
    code = readme_receiver().replace('"whsec_..."', repr(created["secret"]))
    code = code.replace('HTTPServer(("", 8080)', f'HTTPServer(("127.0.0.1", {port})')
    serving, server = code.rsplit(".serve_forever()", 1)[0].rsplit("\n", 1)
    namespace: dict[str, Any] = {}
    exec(serving, namespace)  # the imports, the secret and the handler, as written
    receiver = eval(server, namespace)  # the server, started below
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        ping = (await client.post(f"/api/v1/webhooks/{created['id']}/ping")).json()
        await drain(app, settings, database_url)
        (delivered,) = await deliveries(client, created["id"])
        assert (delivered["status"], delivered["last_status_code"]) == ("delivered", 204)
        assert f"{ping['id']} webhook.ping" in capsys.readouterr().out

        async with httpx.AsyncClient() as outsider:
            forged = await outsider.post(
                f"http://127.0.0.1:{port}/",
                content=b'{"type":"webhook.ping"}',
                headers={
                    "webhook-id": ping["id"],
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1,Zm9yZ2Vk",
                },
            )
        assert forged.status_code == 400
    finally:
        receiver.shutdown()
        receiver.server_close()


# -- the appointment.* messages, emitted where each change happens ----------------------------

ALL_APPOINTMENT_EVENTS = sorted({str(event) for event in EVENT_OF_ACTION.values()})


def _messages(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every message the receiver got, each verified as a receiver would."""
    verifier = Webhook(secret)
    return [verifier.verify(r.body, r.headers) for r in receiver.received()]


async def _queued(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT event, data->'appointment_row'->>'id' FROM webhook_deliveries"
                " ORDER BY event"
            )
        )
        return [(row[0], row[1]) for row in rows]


async def test_each_change_sends_its_event_with_the_appointment_as_get_answers_it(
    service: Made,
    receivers: Callable[..., Receiver],
    database_url: str,
) -> None:
    app, admin, settings = await service()
    receiver = receivers()
    hook = await endpoint(admin, receiver.url, *ALL_APPOINTMENT_EVENTS)
    async with client_for(app, OTHER_KEY) as client:
        doctor = await create_doctor(client)
        day = next_weekday(1)
        booked = await client.post(
            "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "09:00")
        )
        assert booked.status_code == 201, booked.text
        appointment_id = booked.json()["id"]
        after: dict[str, dict[str, Any]] = {
            "appointment.booked": (
                await client.get(f"/api/v1/appointments/{appointment_id}")
            ).json()
        }
        moved = await client.put(
            f"/api/v1/appointments/{appointment_id}/reschedule",
            json={"date": day.isoformat(), "start_time": "10:00"},
        )
        assert moved.status_code == 200, moved.text
        after["appointment.rescheduled"] = (
            await client.get(f"/api/v1/appointments/{appointment_id}")
        ).json()
        cancelled = await client.delete(f"/api/v1/appointments/{appointment_id}")
        assert cancelled.status_code == 200, cancelled.text
        after["appointment.cancelled"] = cancelled.json()
        # A change that changes nothing sends nothing.
        again = await client.delete(f"/api/v1/appointments/{appointment_id}")
        assert again.status_code == 200
        # A refused booking sends nothing.
        refused = await client.post(
            "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "09:07")
        )
        assert refused.status_code == 409

    await drain(app, settings, database_url)
    # Order is not promised; the timestamps order the messages.
    messages = sorted(_messages(receiver, hook["secret"]), key=lambda m: m["timestamp"])
    assert [m["type"] for m in messages] == list(after), messages
    for message in messages:
        assert message["data"]["appointment"] == after[message["type"]]
        assert message["data"]["doctor"] == {"id": doctor["id"], "name": doctor["name"]}
        stamp = dt.datetime.fromisoformat(message["timestamp"])
        assert stamp.utcoffset() is not None
    ids = {r.message_id for r in receiver.received()}
    assert len(ids) == 3 and all(i.startswith("msg_") for i in ids)


async def test_desk_steps_send_their_events(
    service: Made, receivers: Callable[..., Receiver], database_url: str, clock: Clock
) -> None:
    app, admin, settings = await service()
    receiver = receivers()
    hook = await endpoint(
        admin,
        receiver.url,
        "appointment.checked_in",
        "appointment.completed",
        "appointment.no_show",
    )
    async with client_for(app, OTHER_KEY) as client:
        doctor = await create_doctor(client)
        day = next_weekday(1)
        first = await client.post(
            "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "09:00")
        )
        second = await client.post(
            "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "11:00")
        )
        assert first.status_code == second.status_code == 201
        clock.set(day, "09:05")
        for path in (f"{first.json()['id']}/check-in", f"{first.json()['id']}/complete"):
            stepped = await client.post(f"/api/v1/appointments/{path}")
            assert stepped.status_code == 200, stepped.text
        clock.set(day, "11:30")
        missed = await client.post(f"/api/v1/appointments/{second.json()['id']}/no-show")
        assert missed.status_code == 200, missed.text

    await drain(app, settings, database_url)
    messages = _messages(receiver, hook["secret"])
    assert sorted(m["type"] for m in messages) == [
        "appointment.checked_in",
        "appointment.completed",
        "appointment.no_show",
    ]
    statuses = {m["type"]: m["data"]["appointment"]["status"] for m in messages}
    assert statuses == {
        "appointment.checked_in": "CHECKED_IN",
        "appointment.completed": "COMPLETED",
        "appointment.no_show": "NO_SHOW",
    }


async def test_bookings_written_together_each_send_one_message_per_endpoint(
    service: Made, receivers: Callable[..., Receiver], committed: AsyncEngine
) -> None:
    """Concurrent bookings go through the batcher, several rows in one statement: each booked
    row gets one message per subscribed active endpoint, and a refused row none."""
    app, admin, _ = await service()
    subscribed = [await endpoint(admin, receivers().url) for _ in range(2)]
    await endpoint(admin, receivers().url, "appointment.cancelled")
    disabled = await endpoint(admin, receivers().url)
    await admin.patch(f"/api/v1/webhooks/{disabled['id']}", json={"is_active": False})
    async with client_for(app, OTHER_KEY) as client:
        doctors = [await create_doctor(client) for _ in range(3)]
        day = next_weekday(2)
        wanted = [
            booking_payload(doctor["id"], day, start)
            for doctor in doctors
            for start in ("09:00", "09:30", "10:00", "09:00")
        ]
        answers = await asyncio.gather(
            *(client.post("/api/v1/appointments/", json=body) for body in wanted)
        )
    booked = [a.json()["id"] for a in answers if a.status_code == 201]
    assert len(booked) == 9 and sum(a.status_code == 409 for a in answers) == 3
    queued = await _queued(committed)
    assert sorted(queued) == sorted(("appointment.booked", i) for i in booked for _ in subscribed)


async def test_a_change_that_rolls_back_sends_nothing(
    service: Made, committed: AsyncEngine
) -> None:
    app, admin, _ = await service()
    await endpoint(admin, "http://127.0.0.1:9/hooks", *ALL_APPOINTMENT_EVENTS)
    async with client_for(app, OTHER_KEY) as client:
        doctor = await create_doctor(client)
        booked = await client.post(
            "/api/v1/appointments/", json=booking_payload(doctor["id"], next_weekday(3), "09:00")
        )
        assert booked.status_code == 201
    before = await _queued(committed)

    class RolledBack(Exception):
        pass

    try:
        async with unit_of_work(app.state.sessionmaker) as session:
            await appointment_changed(session, booked.json()["id"], AppointmentAction.CANCELLED)
            raise RolledBack
    except RolledBack:
        pass
    assert await _queued(committed) == before == [("appointment.booked", booked.json()["id"])]
    async with committed.connect() as conn:
        jobs = await conn.scalar(text("SELECT count(*) FROM outbox_jobs WHERE target = 'webhook'"))
    assert jobs == 1


def test_event_names_are_the_specs() -> None:
    assert json.dumps(ALL_APPOINTMENT_EVENTS) == json.dumps(
        [
            "appointment.booked",
            "appointment.cancelled",
            "appointment.checked_in",
            "appointment.completed",
            "appointment.confirmed",
            "appointment.no_show",
            "appointment.rescheduled",
        ]
    )
