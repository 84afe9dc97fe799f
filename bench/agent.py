"""The phone agent's whole booking as one unit: find the earliest slot, hold it, book it.

Run over MCP with the official SDK's client (one session per simulated agent), and over REST
with httpx, against the same server, so the difference is what MCP costs. Each agent picks a
random doctor and day, so agents rarely race for one slot; a flow whose hold or booking is
refused (the slot went meanwhile) is counted as failed, not as a flow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import psutil
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

Flow = Callable[[uuid.UUID, dt.date, int], Awaitable[bool]]


@dataclass
class FlowResult:
    flows_per_second: float
    p50_ms: float
    p99_ms: float
    outcomes: dict[str, int]
    generator_cpu_share: float


def _caller(n: int) -> dict[str, str]:
    return {"name": "Bench Agent Caller", "mobile_number": f"+9198{n % 100_000_000:08d}"}


async def _run(
    agents: int,
    seconds: float,
    make: Callable[[], Any],
    pick: Callable[[], tuple[uuid.UUID, dt.date]],
) -> FlowResult:
    """`make()` gives an async context manager yielding one agent's `Flow`.

    The clock starts once every agent has its client (and, over MCP, its initialized
    session): what is measured is flows, not building sixteen HTTP clients, which took the
    MCP agents most of a second of a one-second smoke run and sometimes all of it."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    counter = iter(range(10**9))
    me = psutil.Process()
    entered = 0
    all_in = asyncio.Event()
    clock: dict[str, float] = {}

    async def one_agent() -> None:
        nonlocal entered
        async with make() as flow:
            entered += 1
            if entered == agents:
                clock.update(cpu=sum(me.cpu_times()[:2]), started=time.monotonic())
                clock["deadline"] = clock["started"] + seconds
                all_in.set()
            await all_in.wait()
            while time.monotonic() < clock["deadline"]:
                doctor, day = pick()
                began = time.perf_counter()
                done = await flow(doctor, day, next(counter))
                outcomes["booked" if done else "refused"] += 1
                if done:
                    latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one_agent() for _ in range(agents)))
    wall = time.monotonic() - clock["started"]
    latencies.sort()
    cpu = sum(me.cpu_times()[:2]) - clock["cpu"]
    return FlowResult(
        flows_per_second=len(latencies) / wall,
        p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
        outcomes=dict(outcomes),
        generator_cpu_share=round(cpu / wall / (psutil.cpu_count() or 1), 3),
    )


class _McpAgent:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    async def __aenter__(self) -> Flow:
        self.http = httpx2.AsyncClient(headers={"X-API-Key": self.key}, timeout=60)
        self.transport = streamable_http_client(f"{self.base}/mcp", http_client=self.http)
        read, write = await self.transport.__aenter__()
        self.session = ClientSession(read, write)
        await self.session.__aenter__()
        await self.session.initialize()
        return self.flow

    async def __aexit__(self, *exc: object) -> None:
        await self.session.__aexit__(None, None, None)
        await self.transport.__aexit__(None, None, None)
        await self.http.aclose()

    async def flow(self, doctor: uuid.UUID, day: dt.date, n: int) -> bool:
        found = await self.session.call_tool(
            "find_earliest_slots",
            {"doctor_id": str(doctor), "start_date": day.isoformat(), "limit": 1},
        )
        items = (found.structured_content or {}).get("items") or []
        if found.is_error or not items:
            return False
        slot = items[0]
        held = await self.session.call_tool(
            "hold_slot",
            {"doctor_id": str(doctor), "date": slot["date"], "start_time": slot["start_time"]},
        )
        if held.is_error or not held.structured_content:
            return False
        booked = await self.session.call_tool(
            "book_appointment",
            {"hold_id": held.structured_content["id"], "patient": _caller(n)},
        )
        return not booked.is_error


class _RestAgent:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    async def __aenter__(self) -> Flow:
        self.http = httpx.AsyncClient(
            base_url=self.base, headers={"X-API-Key": self.key}, timeout=60
        )
        return self.flow

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def flow(self, doctor: uuid.UUID, day: dt.date, n: int) -> bool:
        found = await self.http.get(
            "/api/v1/appointments/availability",
            params={"doctor_id": str(doctor), "start_date": day.isoformat(), "limit": 1},
        )
        if found.status_code != 200 or not found.json():
            return False
        slot = found.json()[0]
        body = {"doctor_id": str(doctor), "date": slot["date"], "start_time": slot["start_time"]}
        held = await self.http.post("/api/v1/holds/", json=body)
        if held.status_code != 201:
            return False
        booking = {
            "hold_id": held.json()["id"],
            "source": "AI_CALLING_AGENT",
            "patient": _caller(n),
        }
        booked = await self.http.post("/api/v1/appointments/", json=booking)
        return booked.status_code == 201


def agent_flows(
    base: str,
    key: str,
    doctors: Sequence[uuid.UUID],
    today: dt.date,
    seconds: float,
    agents: int,
    via: str,
) -> FlowResult:
    rng = random.Random(11 if via == "mcp" else 13)

    def pick() -> tuple[uuid.UUID, dt.date]:
        return rng.choice(doctors), today + dt.timedelta(days=rng.randrange(1, 90))

    make = (lambda: _McpAgent(base, key)) if via == "mcp" else (lambda: _RestAgent(base, key))
    return asyncio.run(_run(agents, seconds, make, pick))
