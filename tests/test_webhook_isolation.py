"""An endpoint that hangs holds one slot of the webhook budget and nothing else: another
endpoint's messages, the Google Calendar and RAG mirrors and bookings go on while its receiver
is blocked; its jobs are in flight one at a time; WEBHOOK_MAX_ATTEMPTS is not cut short by the
dispatcher's own limit; `/ready` counts the messages owed and failed.

The hanging receiver blocks on a `threading.Event` the test sets at the end, and the webhook
timeout is longer than any wait here where the test needs the first attempt still hanging:
every "meanwhile" below is shown by what the receivers got while that event was unset,
never by timing. Committed mode: the dispatchers read what the requests committed."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from app.database import unit_of_work
from app.services.google_calendar.client import event_id_for
from app.services.webhooks.events import WebhookEvent, queue_message
from tests.conftest import OTHER_KEY
from tests.factories import book, booking_payload, create_doctor, next_weekday
from tests.fake_google import ADMIN, FakeGoogle
from tests.fake_rag import FakeRag
from tests.fake_receiver import Receiver
from tests.servers import service_processes
from tests.test_calendar_mirror import all_synced, eventually
from tests.test_webhook_delivery import deliveries, drain, endpoint
from tests.webhook_harness import Made

# Longer than the test ever waits on a hanging attempt: it is still hanging when checked.
HANGS = 60.0


@dataclass
class Hanging:
    """A receiver whose every request blocks until `release` is set, then answers 200."""

    release: threading.Event = field(default_factory=threading.Event)
    arrived: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _blocking(self))
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> list[str]:
        with self.lock:
            return list(self.arrived)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _blocking(hanging: Hanging) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hanging.lock:
                hanging.arrived.append(self.headers["webhook-id"])
            hanging.release.wait(HANGS)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    receiver = Hanging()
    yield receiver
    receiver.stop()


@pytest.fixture
def answering() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def rag() -> Iterator[FakeRag]:
    fake = FakeRag()
    yield fake
    fake.stop()


async def queue_to(app: FastAPI, *endpoints: tuple[str, int]) -> None:
    """Queue pings to each endpoint, so many each, in one transaction (all due at once, in
    this order)."""
    async with unit_of_work(app.state.sessionmaker) as session:
        for endpoint_id, count in endpoints:
            for n in range(count):
                await queue_message(
                    session, WebhookEvent.WEBHOOK_PING, {"n": n}, endpoint_id=uuid.UUID(endpoint_id)
                )


async def in_flight(app: FastAPI, endpoint_id: str) -> list[tuple[int, int]]:
    """The attempt numbers of the endpoint's jobs now in flight, and their leases' state."""
    async with unit_of_work(app.state.sessionmaker) as session:
        rows = await session.execute(
            text(
                "SELECT attempts, (locked_until > now())::int AS leased FROM outbox_jobs"
                " WHERE target = 'webhook' AND lane = :lane AND status = 'in_progress'"
            ),
            {"lane": endpoint_id},
        )
        return [(r.attempts, r.leased) for r in rows]


async def test_a_hanging_endpoint_holds_one_slot_and_the_others_are_delivered_meanwhile(
    service: Made, hanging: Hanging, answering: Receiver
) -> None:
    # Two webhook slots; A's three messages are older than B's: without lanes, A's first two
    # would take both slots and B would wait for A's timeout.
    app, client, _ = await service(
        dispatcher_enabled=True,
        dispatcher_poll_seconds=0.2,
        dispatcher_concurrency=2,
        webhook_timeout_seconds=HANGS,
    )
    a = await endpoint(client, hanging.url, "webhook.ping")
    b = await endpoint(client, answering.url, "webhook.ping")
    await queue_to(app, (a["id"], 3), (b["id"], 2))

    async def b_delivered() -> bool:
        return [d["status"] for d in await deliveries(client, b["id"])] == ["delivered"] * 2

    await eventually(b_delivered)
    assert not hanging.release.is_set()
    assert len(hanging.received()) == 1  # A's first attempt, still blocked
    assert await in_flight(app, a["id"]) == [(1, 1)]  # one job of A's lane, its first try
    assert len(answering.received()) == 2

    hanging.release.set()

    async def a_delivered() -> bool:
        return [d["status"] for d in await deliveries(client, a["id"])] == ["delivered"] * 3

    await eventually(a_delivered)
    assert len(set(hanging.received())) == 3


async def test_the_mirrors_and_bookings_never_wait_for_a_hanging_endpoint(
    service: Made, hanging: Hanging, rag: FakeRag, tmp_path: Path
) -> None:
    # One webhook slot, taken by the hanging endpoint: Google and RAG have their own.
    google = FakeGoogle()
    app, client, _ = await service(
        dispatcher_enabled=True,
        dispatcher_poll_seconds=0.2,
        dispatcher_concurrency=1,
        webhook_timeout_seconds=HANGS,
        rag_service_url=rag.url,
        rag_service_api_key="rag-key",
        google_calendar_credentials_path=str(google.write_credentials(tmp_path)),
        google_calendar_delegated_admin_email=ADMIN,
        google_calendar_api_endpoint=f"{google.url}/calendar/v3/",
    )
    a = await endpoint(client, hanging.url, "webhook.ping", "appointment.booked")
    await queue_to(app, (a["id"], 2))

    async def hanging_now() -> bool:
        return len(hanging.received()) == 1

    await eventually(hanging_now)
    doctor = await create_doctor(client)  # owes the RAG mirror the new doctor

    async def rag_got_it() -> bool:
        return any(r.path.endswith(doctor["id"]) for r in rag.accepted())

    await eventually(rag_got_it)
    booked = await book(client, doctor["id"], next_weekday(0), "09:00")
    assert booked.status_code == 201, booked.text
    try:
        await eventually(all_synced(client, booked.json()["id"]))
    finally:
        google.stop()
    assert event_id_for(uuid.UUID(booked.json()["id"])) in google.events(doctor["email"])
    assert not hanging.release.is_set()
    assert len(hanging.received()) == 1
    assert await in_flight(app, a["id"]) == [(1, 1)]

    hanging.release.set()

    async def a_delivered() -> bool:
        statuses = {d["status"] for d in await deliveries(client, a["id"])}
        return statuses == {"delivered"}

    await eventually(a_delivered)


async def test_attempts_past_the_timeout_are_one_at_a_time_up_to_webhook_max_attempts(
    service: Made, hanging: Hanging, database_url: str
) -> None:
    # The receiver never answers within the timeout; the webhook mirror gives up after its
    # own limit, three, though the dispatcher's is one.
    app, client, settings = await service(
        webhook_timeout_seconds=0.2,
        webhook_max_attempts=3,
        dispatcher_max_attempts=1,
        dispatcher_concurrency=4,
    )
    a = await endpoint(client, hanging.url, "webhook.ping")
    await queue_to(app, (a["id"], 2))
    assert (await client.get("/ready")).json()["webhooks"] == {"pending": 2, "failed": 0}

    most = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, sum(leased for _, leased in await in_flight(app, a["id"])))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await drain(app, settings, database_url, within=30)
    finally:
        done.set()
        await watcher
    assert most <= 1  # four slots free, yet never two of the lane's jobs at once

    logged = await deliveries(client, a["id"])
    assert [(d["status"], d["attempts"]) for d in logged] == [("failed", 3)] * 2
    assert all(d["last_error"].startswith("no answer within") for d in logged)
    assert len(hanging.received()) == 6
    assert (await client.get("/ready")).json()["webhooks"] == {"pending": 0, "failed": 2}


async def test_two_service_processes_deliver_each_message_exactly_once(
    committed: AsyncEngine, database_url: str
) -> None:
    """Two real service processes, each running its dispatcher on the one database: every
    booking's message reaches the receiver once, whichever process booked it or sent it. Once
    every delivery reads `delivered`, nothing is owed, so no later duplicate can come."""
    receiver = Receiver()
    secret_key = Fernet.generate_key().decode()
    env = {
        "DISPATCHER_ENABLED": "true",
        "DISPATCHER_POLL_SECONDS": "0.5",
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WEBHOOK_SECRET_KEY": secret_key,
    }
    try:
        with service_processes(database_url, 2, OTHER_KEY, env) as urls:
            clients = [
                httpx.AsyncClient(base_url=url, headers={"X-API-Key": OTHER_KEY}, timeout=30)
                for url in urls
            ]
            try:
                created = await clients[0].post(
                    "/api/v1/webhooks/",
                    json={"url": receiver.url, "events": ["appointment.booked"]},
                )
                assert created.status_code == 201, created.text
                secret = created.json()["secret"]
                doctor = await create_doctor(clients[1])
                day = next_weekday(2)
                starts = [f"{9 + i // 2:02d}:{30 * (i % 2):02d}" for i in range(12)]
                answers = await asyncio.gather(
                    *(
                        clients[i % 2].post(
                            "/api/v1/appointments/",
                            json=booking_payload(doctor["id"], day, start),
                        )
                        for i, start in enumerate(starts)
                    )
                )
                assert [a.status_code for a in answers] == [201] * len(starts)
                booked = {a.json()["id"] for a in answers}

                async def all_delivered() -> bool:
                    async with committed.connect() as conn:
                        owed = await conn.scalar(
                            text(
                                "SELECT count(*) FROM webhook_deliveries"
                                " WHERE status <> 'delivered'"
                            )
                        )
                        sent = await conn.scalar(text("SELECT count(*) FROM webhook_deliveries"))
                    return owed == 0 and sent == len(booked)

                await eventually(all_delivered, within=60)
            finally:
                for client in clients:
                    await client.aclose()
        requests = receiver.received()
        verifier = Webhook(secret)
        messages = [verifier.verify(r.body, r.headers) for r in requests]
        assert len({r.message_id for r in requests}) == len(requests) == len(booked)
        assert {m["data"]["appointment"]["id"] for m in messages} == booked
    finally:
        receiver.stop()
