"""Database outages and graceful shutdown, with real processes and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.database import async_url
from app.launcher import migrate
from tests.conftest import API_KEY, started_app
from tests.factories import booking_payload, doctor_payload, next_weekday
from tests.fake_google import ADMIN, FakeGoogle
from tests.servers import free_port, wait_ready
from tests.test_calendar_mirror import all_synced, assert_mirror_matches, calendar_settings

HEADERS = {"X-API-Key": API_KEY}


class OwnPostgres:
    """A PostgreSQL of the test's own (embedded) that it may stop and start at will."""

    def __init__(self, directory: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(directory, cleanup_mode="delete")
        self.server.psql("CREATE DATABASE outage;")
        self.url = self.server.get_uri("outage")
        self.socket_dir = urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)["host"][0]

    def _ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user)

    def stop(self) -> None:
        self._ctl("-w", "stop", "-m", "fast")

    def start(self) -> None:
        log = str(self.server.pgdata / "restart.log")
        self._ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    with tempfile.TemporaryDirectory(prefix="clinic-outage-") as directory:
        database = OwnPostgres(Path(directory))
        migrate(database.url)
        try:
            yield database
        finally:
            database.server.cleanup()


def start_service(database_url: str, extra: dict[str, str], tmp: Path) -> tuple[Any, str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SERVICE_API_KEY": f"agent:{API_KEY}",
        "PORT": str(port),
        "DATA_DIR": str(tmp),
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp / "service.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve"],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
    except RuntimeError:
        proc.kill()
        raise
    return proc, base


def mirror_env(google: FakeGoogle, credentials: Path, **extra: str) -> dict[str, str]:
    return {
        "GOOGLE_CALENDAR_CREDENTIALS_PATH": str(credentials),
        "GOOGLE_CALENDAR_DELEGATED_ADMIN_EMAIL": ADMIN,
        "GOOGLE_CALENDAR_API_ENDPOINT": f"{google.url}/calendar/v3/",
        "CLINIC_TIMEZONE": "Asia/Kolkata",
        "DISPATCHER_POLL_SECONDS": "0.5",
        "DISPATCHER_BACKOFF_BASE_SECONDS": "0.1",
        "DISPATCHER_BACKOFF_MAX_SECONDS": "1",
        **extra,
    }


async def wait_until(check: Any, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError("condition not reached in time")


async def test_database_outage_answers_503_and_recovers(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    google = FakeGoogle()
    credentials = google.write_credentials(tmp_path)
    proc, base = start_service(own_postgres.url, mirror_env(google, credentials), tmp_path)
    engine = create_async_engine(async_url(own_postgres.url))
    try:
        async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=15) as client:
            doctor = (await client.post("/api/v1/doctors/", json=doctor_payload())).json()
            day = next_weekday(0)
            accepted = []
            first = await client.post(
                "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "09:00")
            )
            assert first.status_code == 201
            accepted.append(first.json()["id"])

            await asyncio.to_thread(own_postgres.stop)
            during = [
                await client.get(f"/api/v1/doctors/{doctor['id']}"),
                await client.post(
                    "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "09:30")
                ),
                await client.get(f"/api/v1/appointments/availability/{doctor['id']}"),
                await client.get("/api/v1/doctors/"),
            ]
            for response in during:
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "database_unavailable"
                assert "Retry-After" in response.headers
            assert (await client.get("/ready")).status_code == 503
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200

            await asyncio.to_thread(own_postgres.start)
            availability = f"/api/v1/appointments/availability/{doctor['id']}"

            async def serving() -> bool:
                return (await client.get(availability)).status_code == 200

            # The phone agent's own path first (driver statements only, no ORM request to
            # notice the restart): every connection the outage broke must leave the pool, so
            # once one read is served, every later one is too.
            await wait_until(serving)
            after = [(await client.get(availability)).status_code for _ in range(30)]
            assert after == [200] * 30
            assert (await client.get(f"/api/v1/doctors/{doctor['id']}")).status_code == 200
            assert (await client.get("/ready")).status_code == 200
            for start in ("10:00", "10:30"):
                again = await client.post(
                    "/api/v1/appointments/", json=booking_payload(doctor["id"], day, start)
                )
                assert again.status_code == 201, again.text
                accepted.append(again.json()["id"])

            # The dispatcher came back by itself.
            await wait_until(all_synced(client, *accepted))
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT a.id, count(e.id) AS events FROM appointments a"
                        " LEFT JOIN appointment_events e ON e.appointment_id = a.id GROUP BY a.id"
                    )
                )
            ).all()
        assert sorted(str(r.id) for r in rows) == sorted(accepted)  # nothing half-written
        assert {r.events for r in rows} == {1}
        await assert_mirror_matches(engine, google)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        await engine.dispose()
        google.stop()


async def test_sigterm_mid_burst_keeps_every_accepted_booking(
    db: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    google = FakeGoogle()
    google.delay = 0.3  # deliveries are in flight when the signal comes
    credentials = google.write_credentials(tmp_path)
    env = mirror_env(google, credentials, DISPATCHER_CONCURRENCY="2", WORKERS="1")
    proc, base = start_service(database_url, env, tmp_path)
    try:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=base, headers=HEADERS, timeout=30, limits=limits
        ) as client:
            doctor = (
                await client.post(
                    "/api/v1/doctors/",
                    json=doctor_payload(
                        working_hours={"start": "08:00", "end": "20:00"}, slot_duration_minutes=15
                    ),
                )
            ).json()
            day = next_weekday(1)
            starts = [f"{8 + i // 4:02d}:{(i % 4) * 15:02d}" for i in range(48)]

            async def one(start: str) -> httpx.Response | Exception:
                try:
                    return await client.post(
                        "/api/v1/appointments/", json=booking_payload(doctor["id"], day, start)
                    )
                except httpx.HTTPError as exc:
                    return exc

            tasks = [asyncio.create_task(one(s)) for s in starts]
            await asyncio.sleep(0.4)
            os.killpg(proc.pid, signal.SIGTERM)
            results = await asyncio.gather(*tasks)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        accepted = [
            r.json()["id"]
            for r in results
            if isinstance(r, httpx.Response) and r.status_code == 201
        ]
        assert accepted, results
        assert all(not isinstance(r, httpx.Response) or r.status_code == 201 for r in results)
        async with db.connect() as conn:
            stored = set(
                (
                    await conn.execute(
                        text("SELECT id::text FROM appointments WHERE status = 'BOOKED'")
                    )
                ).scalars()
            )
            held = await conn.scalar(
                text("SELECT count(*) FROM outbox_jobs WHERE status = 'in_progress'")
            )
        assert set(accepted) <= stored
        assert held == 0  # released on the way out, nothing waits for a lease to expire

        # Whatever was still owed is delivered by the next dispatcher.
        google.delay = 0
        settings = calendar_settings(
            google, credentials, clinic_timezone="Asia/Kolkata", dispatcher_poll_seconds=0.2
        )
        _, lifespan = await started_app(settings, database_url)
        try:

            async def drained() -> bool:
                async with db.connect() as conn:
                    left = await conn.scalar(
                        text(
                            "SELECT count(*) FROM outbox_jobs"
                            " WHERE status <> 'done' AND target = 'calendar'"
                        )
                    )
                return left == 0

            try:
                await wait_until(drained)
            except AssertionError:
                async with db.connect() as conn:
                    jobs = (
                        await conn.execute(
                            text(
                                "SELECT status, attempts, last_error, available_at - now() AS wait"
                                " FROM outbox_jobs WHERE status <> 'done'"
                            )
                        )
                    ).all()
                raise AssertionError(f"jobs left: {jobs}") from None
        finally:
            await lifespan.__aexit__(None, None, None)
        await assert_mirror_matches(db, google)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        google.stop()


async def test_a_restart_costs_driver_reads_each_broken_connection_once(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    """Availability reads and bookings run driver statements that SQLAlchemy never sees fail;
    a connection a restart broke must still leave the pool the first time it fails, so the
    phone agent's own traffic recovers without any other request helping."""
    proc, base = start_service(own_postgres.url, {"DB_POOL_SIZE": "4"}, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=15) as client:
            doctor = (await client.post("/api/v1/doctors/", json=doctor_payload())).json()
            availability = f"/api/v1/appointments/availability/{doctor['id']}"
            # Every pooled connection is one opened before the restart.
            await asyncio.gather(*[client.get(availability) for _ in range(8)])
            await asyncio.to_thread(own_postgres.stop)
            await asyncio.to_thread(own_postgres.start)
            statuses = [(await client.get(availability)).status_code for _ in range(20)]
        served = statuses.index(200)
        assert served <= 4, statuses  # at most one failure per broken connection
        assert set(statuses[:served]) <= {503}, statuses
        assert statuses[served:] == [200] * (len(statuses) - served), statuses
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
