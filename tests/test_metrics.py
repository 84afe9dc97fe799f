"""/metrics: Prometheus text that adds up to the requests sent, also across workers."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.conftest import API_KEY, client_for
from tests.factories import book, create_doctor, next_weekday
from tests.servers import free_port, wait_ready


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


# Committed mode: /metrics counts outbox jobs on the app's pool, so it can't see uncommitted ones.
async def test_metrics_count_requests_bookings_and_conflicts(committed_app: object) -> None:
    app = committed_app
    async with client_for(app) as client, client_for(app, None) as anonymous:  # type: ignore[arg-type]
        before = (await anonymous.get("/metrics")).text
        doctor = await create_doctor(client)
        day = next_weekday(0)
        for start in ("09:00", "09:30", "10:00"):
            assert (await book(client, doctor["id"], day, start)).status_code == 201
        assert (await book(client, doctor["id"], day, "09:00")).status_code == 409
        for _ in range(5):
            await client.get(f"/api/v1/doctors/{doctor['id']}")
        after_response = await anonymous.get("/metrics")
    assert after_response.status_code == 200
    assert after_response.headers["content-type"].startswith("text/plain")
    after = after_response.text

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    route = "/api/v1/doctors/{doctor_id}"
    assert delta("http_requests_total", route=route, status_class="2xx", method="GET") == 5
    assert delta("http_request_duration_seconds_count", route=route, method="GET") == 5
    assert delta("http_requests_total", route="/api/v1/appointments/", status_class="4xx") == 1
    assert delta("appointment_changes_total", action="booked") == 3
    assert delta("conflicts_total", code="slot_unavailable") == 1
    assert "db_pool_connections" in after
    assert sample(after, "outbox_jobs", target="calendar", state="pending") == 0


def test_metrics_add_up_across_workers(
    committed: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SERVICE_API_KEY": f"agent:{API_KEY}",
        "WORKERS": "2",
        "PORT": str(port),
        "DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "DISPATCHER_ENABLED": "false",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)

        async def burst() -> int:
            """Send bursts on fresh connections until both workers have served some."""
            limits = httpx.Limits(max_keepalive_connections=0)
            sent = 0
            async with httpx.AsyncClient(
                base_url=base, headers={"X-API-Key": API_KEY}, limits=limits
            ) as client:
                for _ in range(20):
                    responses = await asyncio.gather(
                        *[client.get("/api/v1/doctors/", params={"limit": 1}) for _ in range(30)]
                    )
                    assert {r.status_code for r in responses} == {200}
                    sent += len(responses)
                    if len(list((tmp_path / "prometheus").glob("counter_*.db"))) >= 2:
                        return sent
            raise AssertionError("one worker served every request")

        sent = asyncio.run(burst())
        text = httpx.get(f"{base}/metrics").text
        route_total = sample(
            text, "http_requests_total", route="/api/v1/doctors/", status_class="2xx"
        )
        assert route_total == sent  # both workers' counts, added up
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


async def test_rate_limit_per_key(connection: AsyncConnection, database_url: str) -> None:
    from tests.conftest import OTHER_KEY, make_settings, started_app

    app, lifespan = await started_app(
        make_settings(rate_limit_per_minute=5), database_url, connection
    )
    try:
        async with client_for(app) as agent, client_for(app, OTHER_KEY) as admin:
            statuses = [(await agent.get("/api/v1/doctors/")).status_code for _ in range(7)]
            assert statuses == [200] * 5 + [429] * 2
            limited = await agent.get("/api/v1/doctors/")
            assert limited.json()["code"] == "rate_limited"
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
            assert (await admin.get("/api/v1/doctors/")).status_code == 200
            assert (await agent.get("/health")).status_code == 200
    finally:
        await lifespan.__aexit__(None, None, None)
