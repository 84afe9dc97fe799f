"""`make bench`: seed a clinic, run the baseline and the service the README's way, load both
with wrk from outside the process, and write bench/results.json and the table for
BENCHMARKS.md beside it (bench/results.md). Only `make bench-report` (bench/report.py) copies
that table into BENCHMARKS.md: a run never changes a tracked page by itself.

`python -m bench.run --smoke` is the few-second version the test suite runs so this keeps
working; it asserts no figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from app.launcher import migrate
from bench.agent import agent_flows
from bench.seed import Seeded, seed
from bench.series import series_vs_single
from tests.db import throwaway_database
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
LUA = ROOT / "bench" / "wrk" / "requests.lua"
API_KEY = "bench-secret-key"
CONNECTIONS = 32
AGENTS = 16  # phone agents running flows at once (bench/agent.py)
WRK_THREADS = 2
BOOKING_WARMUP = 5000  # booking lines for the booking phase's warm-up, kept out of the phase
BURST_SECONDS = 2  # a phase runs as bursts this long, each beside a burst of the baseline
# Days seeded: the reads ask about the first 60; the two booking phases (without and with
# webhook endpoints) book free slots of every day, and the agents' flows after them (first 90
# days) still find about as many free as they did when there was one booking phase.
SEED_DAYS = 420
DRAIN_SECONDS = 5  # how long the backlog's delivery rate is watched after `booking_webhooks`
WEBHOOK_ENDPOINTS = 3  # receivers subscribed to `appointment.booked` in `booking_webhooks`


@dataclass
class Phase:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    statuses: dict[str, int]
    generator_cpu_share: float
    # Share of availability reads answered from remembered days (app/services/day_cache.py).
    remembered_share: float | None = None
    # Of a phase run in bursts (`combined`): each burst's p99; `p99_ms` is their median.
    burst_p99_ms: tuple[float, ...] = ()


class RssSampler:
    """Peak resident memory of a process tree (the server and its workers)."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_total = 0.0
        self.peak_worker = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                sizes = [p.memory_info().rss / 2**20 for p in procs if "postgres" not in p.name()]
            except psutil.Error:
                sizes = []
            if sizes:
                self.peak_total = max(self.peak_total, sum(sizes))
                self.peak_worker = max(self.peak_worker, max(sizes))
            self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def server(
    cmd: list[str], env: dict[str, str], ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(ready_url, timeout=2, headers={"X-API-Key": API_KEY}).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                # Stop it before reading its errors: a live server never closes the pipe.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                errors = proc.communicate(timeout=10)[1].decode()[-2000:]
                raise RuntimeError(f"{cmd} did not start: {errors}")
            time.sleep(0.3)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def availability_reads(base: str) -> dict[str, float]:
    """`availability_reads_total` by source, summed over the workers."""
    return reads_by_source(httpx.get(f"{base}/metrics", timeout=10).text)


def reads_by_source(metrics_text: str) -> dict[str, float]:
    """`availability_reads_total` by source in a /metrics answer, summed over its labels."""
    counts = {"answer": 0.0, "remembered": 0.0, "read": 0.0}
    for line in metrics_text.splitlines():
        if line.startswith("availability_reads_total{"):
            labels, value = line.rsplit(" ", 1)
            for source in counts:
                if f'source="{source}"' in labels:
                    counts[source] += float(value)
    return counts


def remembered_share(before: dict[str, float], after: dict[str, float]) -> float | None:
    # A remembered answer stands on remembered days.
    remembered = sum(after[k] - before[k] for k in ("answer", "remembered"))
    total = remembered + after["read"] - before["read"]
    return round(remembered / total, 3) if total else None


def wrk(
    name: str, base: str, lines: list[str], seconds: int, connections: int = CONNECTIONS
) -> Phase:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n")
    cmd = [
        "wrk",
        "-t",
        str(WRK_THREADS),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
        "--",
        str(path),
        str(WRK_THREADS),
        API_KEY,
    ]
    started = time.monotonic()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cpu = 0.0
    while proc.poll() is None:
        try:
            times = proc.cpu_times()
            cpu = times.user + times.system
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.monotonic() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk failed: {out}\n{proc.stderr.read().decode() if proc.stderr else ''}"
        )
    data = json.loads(line.removeprefix("WRKJSON "))
    seconds_run = data["duration_us"] / 1e6
    counted = data["created"] if name.startswith(("booking", "series")) else data["requests"]
    statuses = {k: data[k] for k in ("ok", "created", "conflict", "other")}
    statuses["socket_errors"] = sum(data[k] for k in data if k.startswith("errors_"))
    # CPU share of the 2 cores the generator used: low means it was not the bottleneck.
    return Phase(
        name,
        counted / seconds_run,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["requests"],
        statuses,
        round(cpu / wall / psutil.cpu_count(), 3),
    )


async def contended(
    base: str, doctor_id: str, slots: list[tuple[str, str]], clients: int
) -> list[tuple[float, int]]:
    """`clients` agents race for one slot, each on its own connection; per round: seconds
    until every one has an answer, and how many got a 201."""
    rounds = []
    for day, start in slots:
        conns = [
            httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}, timeout=60)
            for _ in range(clients)
        ]
        body = {
            "doctor_id": doctor_id,
            "date": day,
            "start_time": start,
            "source": "AI_CALLING_AGENT",
            "patient": {"name": "Race", "mobile_number": ""},
        }
        try:
            for c in conns:  # open every connection before the race starts
                await c.get("/health")
            started = time.perf_counter()
            answers = await asyncio.gather(
                *[
                    c.post(
                        "/api/v1/appointments/",
                        json={
                            **body,
                            "patient": {"name": "Race", "mobile_number": f"+9198{i:08d}"},
                        },
                    )
                    for i, c in enumerate(conns)
                ]
            )
            elapsed = time.perf_counter() - started
        finally:
            await asyncio.gather(*[c.aclose() for c in conns])
        rounds.append((elapsed, sum(a.status_code == 201 for a in answers)))
        assert all(a.status_code in (201, 409) for a in answers), {a.status_code for a in answers}
    return rounds


def combined(name: str, bursts: list[Phase]) -> Phase:
    """One phase from its bursts: the mean rate, the median p50 and p99 (so one burst's stall
    does not stand for the phase), and each burst's p99."""
    statuses: Counter[str] = Counter()
    for burst in bursts:
        statuses.update(burst.statuses)
    return Phase(
        name,
        statistics.mean(b.rps for b in bursts),
        statistics.median(b.p50_ms for b in bursts),
        statistics.median(b.p99_ms for b in bursts),
        sum(b.requests for b in bursts),
        dict(statuses),
        round(statistics.mean(b.generator_cpu_share for b in bursts), 3),
        burst_p99_ms=tuple(b.p99_ms for b in bursts),
    )


def rotations(lines: list[str], count: int) -> list[list[str]]:
    """`lines` started at `count` evenly spaced places, one list per burst of a read phase."""
    step = len(lines) // count
    return [lines[i * step :] + lines[: i * step] for i in range(count)]


def slices(lines: list[str], count: int) -> list[list[str]]:
    """`lines` cut into `count` parts, so no two bursts of the booking phase book one slot."""
    size = len(lines) // count
    return [lines[i * size : (i + 1) * size] for i in range(count)]


def reserve_race_slots(
    seeded: Seeded, today: dt.date, rounds: int
) -> tuple[str, list[tuple[str, str]]]:
    """Free slots of one doctor kept out of the booking phase, for the contended rounds: one a
    day, of a doctor without buffer or daily limit, so neither the booking phase nor an
    earlier round can take a round's slot away."""
    future = [
        (str(d), day.isoformat(), s)
        for d, day, s in seeded.free_slots
        if day > today and d in seeded.unconstrained
    ]
    counts = Counter(d for d, _, _ in future)
    doctor = counts.most_common(1)[0][0]
    one_a_day = {day: (day, s) for d, day, s in reversed(future) if d == doctor}
    return doctor, sorted(one_a_day.values())[:rounds]


@dataclass
class WebhookRun:
    """What the receivers saw of `booking_webhooks`."""

    endpoints: int
    pings_received: int  # of one `webhook.ping` per endpoint sent before the phase
    received_during_phase: int  # POSTs between the phase's first burst and its last one's end
    expected: int  # one message per endpoint per booking of the phase
    receiver_cpu_share: float
    drained_per_second: float  # the backlog's delivery rate once the phase's load has stopped


def received(port: int) -> int:
    """POSTs the receivers (bench/receivers.py) have answered, on all their ports."""
    count: int = httpx.get(f"http://127.0.0.1:{port}/count", timeout=10).json()["received"]
    return count


@contextmanager
def subscribed(base: str, ports: list[int]) -> Iterator[list[str]]:
    """One endpoint per receiver port, each subscribed to `appointment.booked`, through the
    public API; deleted on the way out (which drops what they have not yet been sent)."""
    ids: list[str] = []
    headers = {"X-API-Key": API_KEY}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        try:
            for i, port in enumerate(ports):
                made = client.post(
                    "/api/v1/webhooks/",
                    json={
                        "url": f"http://127.0.0.1:{port}/hook",
                        "events": ["appointment.booked"],
                        "description": f"bench receiver {i}",
                    },
                )
                if made.status_code != 201:
                    raise RuntimeError(f"webhook endpoint refused: {made.status_code} {made.text}")
                ids.append(made.json()["id"])
            yield ids
        finally:
            for endpoint_id in ids:
                client.delete(f"/api/v1/webhooks/{endpoint_id}")


def booking_webhooks(
    base: str,
    warm: list[str],
    parts: list[list[str]],
    measure: Callable[[str, str, list[list[str]]], Phase],
    env: dict[str, str],
) -> WebhookRun:
    """The booking phase again with `WEBHOOK_ENDPOINTS` endpoints subscribed, each a receiver
    on loopback in one process of its own (bench/receivers.py)."""
    ports = [free_port() for _ in range(WEBHOOK_ENDPOINTS)]
    cmd = [sys.executable, "-m", "bench.receivers", *map(str, ports)]
    with (
        server(cmd, env, f"http://127.0.0.1:{ports[0]}/count") as proc,
        subscribed(base, ports) as ids,
    ):
        # A ping per endpoint first: that the dispatcher reaches the receivers at all.
        for endpoint_id in ids:
            httpx.post(
                f"{base}/api/v1/webhooks/{endpoint_id}/ping",
                headers={"X-API-Key": API_KEY},
                timeout=30,
            ).raise_for_status()
        deadline = time.monotonic() + 15
        while received(ports[0]) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        pings = received(ports[0])
        # Bookings of their own first, as the plain phase had: the statements that write the
        # messages are prepared on each connection before the phase counts.
        wrk("warmup", base, warm, 2)
        receiver = psutil.Process(proc.pid)
        cpu_before = sum(receiver.cpu_times()[:2])
        before, started = received(ports[0]), time.monotonic()
        phase = measure("booking_webhooks", base, parts)
        after, wall = received(ports[0]), time.monotonic() - started
        cpu = sum(receiver.cpu_times()[:2]) - cpu_before
        # The backlog the phase left, delivered with nothing else running: its rate.
        time.sleep(1)
        drain_from, drain_started = received(ports[0]), time.monotonic()
        time.sleep(DRAIN_SECONDS)
        drained = (received(ports[0]) - drain_from) / (time.monotonic() - drain_started)
    return WebhookRun(
        endpoints=len(ports),
        pings_received=pings,
        received_during_phase=after - before,
        expected=phase.statuses.get("created", 0) * len(ports),
        receiver_cpu_share=round(cpu / wall / (psutil.cpu_count() or 1), 3),
        drained_per_second=round(drained, 1),
    )


def request_lines(
    seeded: Seeded,
    today: dt.date,
    rng: random.Random,
    reserved: Collection[tuple[str, ...]] = (),
) -> dict[str, list[str]]:
    ids = [str(d) for d in seeded.doctor_ids]

    def day(n: int) -> str:
        return (today + dt.timedelta(days=n)).isoformat()

    one_day = [
        f"GET\t/api/v1/appointments/availability/{rng.choice(ids)}?date={day(rng.randrange(1, 60))}"
        for _ in range(5000)
    ]
    thirty = []
    for _ in range(5000):
        start = rng.randrange(0, 30)
        thirty.append(
            f"GET\t/api/v1/appointments/availability/{rng.choice(ids)}"
            f"?start_date={day(start)}&end_date={day(start + 29)}"
        )
    specs = sorted(set(seeded.specializations))
    search = [
        f"GET\t/api/v1/appointments/availability?specialization={rng.choice(specs)}"
        f"&start_date={day(rng.randrange(1, 45))}&limit=10"
        for _ in range(5000)
    ]
    booking = []
    for doctor_id, slot_day, start in seeded.free_slots:
        if slot_day <= today or (str(doctor_id), slot_day.isoformat(), start) in reserved:
            continue
        body = json.dumps(
            {
                "doctor_id": str(doctor_id),
                "date": slot_day.isoformat(),
                "start_time": start,
                "source": "AI_CALLING_AGENT",
                "patient": {
                    "name": "Bench Caller",
                    "mobile_number": f"+9190000{rng.randrange(3000):05d}",
                },
            }
        )
        booking.append(f"POST\t/api/v1/appointments/\t{body}")
    baseline = [f"GET\t/doctor/{rng.choice(ids)}" for _ in range(5000)]
    return {
        "baseline": baseline,
        "availability_1d": one_day,
        "availability_30d": thirty,
        "search": search,
        "booking": booking,
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": psutil.cpu_count(),
        "cpu_model": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        ),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def uvicorn_command(app: str, port: int, workers: int, *, factory: bool = False) -> list[str]:
    """uvicorn serving `app` the way the service serves itself: no access log, quiet."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        *(["--factory"] if factory else []),
        app,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    seconds = args.seconds
    rng = random.Random(7)
    with throwaway_database() as url:
        migrate(url)
        today = dt.date.today()
        doctors = 5 if args.smoke else 50
        seeded = asyncio.run(
            seed(
                url.replace("postgresql+asyncpg", "postgresql"),
                today,
                doctors=doctors,
                days=SEED_DAYS,
            )
        )
        race_doctor, race_slots = reserve_race_slots(seeded, today, args.rounds)
        lines = request_lines(seeded, today, rng, reserved={(race_doctor, *s) for s in race_slots})
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SERVICE_API_KEY": f"bench:{API_KEY}",
            "LOG_LEVEL": "WARNING",
            "WORKERS": str(args.workers),
            # The `booking_webhooks` phase's receivers are plain http on loopback.
            "WEBHOOK_ALLOW_HTTP": "true",
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        }
        results: dict[str, Phase] = {}
        # Every phase runs as short bursts, each beside a burst of the baseline (the two in
        # turn, first one then the other leading), and its ratio is to those baseline bursts:
        # this machine's speed drifts by tens of percent within minutes, even within one
        # ten-second phase, and a baseline taken before and after a phase misjudges it.
        pairs = max(1, seconds // BURST_SECONDS)
        burst_seconds = max(1, seconds // pairs)
        bursts: dict[str, list[float]] = {}
        beside: dict[str, list[float]] = {}
        port = free_port()
        baseline_base = f"http://127.0.0.1:{port}"
        baseline_cmd = uvicorn_command("bench.baseline:app", port, args.workers)
        with server(baseline_cmd, env, f"{baseline_base}/doctor/{seeded.doctor_ids[0]}"):

            def measure(name: str, base: str, each: list[list[str]]) -> Phase:
                runs: list[Phase] = []
                beside[name] = []
                for i, phase_lines in enumerate(each):
                    for leads in (True, False) if i % 2 == 0 else (False, True):
                        if leads:
                            runs.append(wrk(name, base, phase_lines, burst_seconds))
                        else:
                            beside[name].append(
                                wrk("baseline", baseline_base, lines["baseline"], burst_seconds).rps
                            )
                bursts[name] = [r.rps for r in runs]
                results[name] = combined(name, runs)
                return results[name]

            wrk("warmup", baseline_base, lines["baseline"], 2)

            # The same reads with nothing remembered, so every one goes to the database: what
            # the day cache is worth, and what a read costs when its days have just changed.
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            uncached = {**env, "PORT": str(port), "AVAILABILITY_CACHE_DAYS": "0"}
            with server([sys.executable, "-m", "app", "serve"], uncached, f"{base}/ready"):
                wrk("warmup", base, lines["availability_1d"], 2)
                for name in ("availability_1d", "availability_30d"):
                    measure(f"{name}_uncached", base, rotations(lines[name], pairs))

            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env["PORT"] = str(port)
            with server([sys.executable, "-m", "app", "serve"], env, f"{base}/ready") as proc:
                sampler = RssSampler(proc.pid)
                wrk("warmup", base, lines["availability_1d"], 2)
                for name in ("availability_1d", "availability_30d", "search"):
                    before = availability_reads(base)
                    phase = measure(name, base, rotations(lines[name], pairs))
                    phase.remembered_share = remembered_share(before, availability_reads(base))
                # Bookings of their own first, as the reads had: each connection's first runs
                # of the booking statements prepare them, once per statement size
                # (`database.VALUES_SIZES`), and a running service has long paid for that.
                # Each booking phase has a warm-up of its own and then its bursts, every one on
                # a slice of free slots no other burst or warm-up books.
                cut = min(BOOKING_WARMUP, len(lines["booking"]) // 8)
                warm, hooked_warm = lines["booking"][:cut], lines["booking"][cut : 2 * cut]
                parts = slices(lines["booking"][2 * cut :], 2 * pairs)
                wrk("warmup", base, warm, 2)
                measure("booking", base, parts[:pairs])
                # The same with three webhook endpoints subscribed to every booking.
                hooks = booking_webhooks(base, hooked_warm, parts[pairs:], measure, env)
                # The contended rounds' doctor is left out, so no flow takes a round's slot.
                callees = [d for d in seeded.doctor_ids if str(d) != race_doctor]
                # At least 3 s: a smoke run's 1 s can end before a loaded machine has opened
                # the 16 MCP sessions, and then no flow completes.
                flow_seconds = max(seconds, 3)
                flows = {
                    via: agent_flows(base, API_KEY, callees, today, flow_seconds, AGENTS, via)
                    for via in ("rest", "mcp")
                }
                rounds = asyncio.run(contended(base, race_doctor, race_slots, args.clients))
                # A 12-visit series against 12 single bookings, on doctors of their own.
                courses = series_vs_single(
                    base,
                    API_KEY,
                    today,
                    measure,
                    pairs,
                    lambda at, warm_lines: wrk("warmup", at, warm_lines, 2),
                    doctors=4 if args.smoke else 20,
                )
                sampler.stop()

    base_rps = statistics.mean(rps for runs in beside.values() for rps in runs)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "make bench" if not args.smoke else "python -m bench.run --smoke",
        "machine": machine(),
        "workers": args.workers,
        "connections": CONNECTIONS,
        "seconds_per_phase": seconds,
        "bursts_per_phase": pairs,
        "seeded": {
            "doctors": len(seeded.doctor_ids),
            "appointments": seeded.appointments,
            "patients": seeded.patients,
            "leaves": seeded.leaves,
            "free_slots": len(seeded.free_slots),
        },
        "baseline_rps": round(base_rps, 1),
        "phases": {
            name: {
                "rps": round(p.rps, 1),
                "baseline_around_rps": round(statistics.mean(beside[name]), 1),
                "ratio_to_baseline": round(p.rps / statistics.mean(beside[name]), 3),
                "bursts_rps": [round(rps, 1) for rps in bursts[name]],
                "baseline_bursts_rps": [round(rps, 1) for rps in beside[name]],
                "bursts_p99_ms": [round(ms, 2) for ms in p.burst_p99_ms],
                "p50_ms": round(p.p50_ms, 2),
                "p99_ms": round(p.p99_ms, 2),
                "worst_burst_p99_ms": round(max(p.burst_p99_ms, default=p.p99_ms), 2),
                "requests": p.requests,
                "statuses": p.statuses,
                "generator_cpu_share": p.generator_cpu_share,
                "remembered_share": p.remembered_share,
            }
            for name, p in results.items()
        },
        "contended_rounds": [{"seconds": round(s, 3), "winners": w} for s, w in rounds],
        "agent_flows": {
            via: {
                "flows_per_second": round(f.flows_per_second, 1),
                "ratio_to_baseline": round(f.flows_per_second / base_rps, 4),
                "p50_ms": round(f.p50_ms, 1),
                "p99_ms": round(f.p99_ms, 1),
                "outcomes": f.outcomes,
                "generator_cpu_share": f.generator_cpu_share,
            }
            for via, f in flows.items()
        },
    }
    report.update(
        {
            "availability_1d_rps": results["availability_1d"].rps,
            "availability_30d_rps": results["availability_30d"].rps,
            "search_rps": results["search"].rps,
            "booking_rps": results["booking"].rps,
            "booking_webhooks_rps": results["booking_webhooks"].rps,
            # Both measured in this run: the rates themselves, and (less moved by the
            # machine's drift between the two phases) their ratios to the baseline beside each.
            "booking_webhooks_vs_booking": (
                results["booking_webhooks"].rps / results["booking"].rps
                if results["booking"].rps
                else None
            ),
            "booking_webhooks_vs_booking_by_ratio": (
                results["booking_webhooks"].rps
                / statistics.mean(beside["booking_webhooks"])
                / (results["booking"].rps / statistics.mean(beside["booking"]))
                if results["booking"].rps
                else None
            ),
            "webhooks": {
                "endpoints": hooks.endpoints,
                "events": ["appointment.booked"],
                "pings_received": hooks.pings_received,
                "received_during_phase": hooks.received_during_phase,
                "expected": hooks.expected,
                "receiver_cpu_share": hooks.receiver_cpu_share,
                "drained_per_second": hooks.drained_per_second,
            },
            "series_rps": courses.series_per_second,
            # Series per second times 12 over single bookings per second, both measured in
            # this run on empty doctors of their own; and the same by their baselines' ratios.
            "series_vs_booking": courses.series_vs_booking,
            "series_vs_booking_by_ratio": (
                results["series_12"].rps
                * 12
                / statistics.mean(beside["series_12"])
                / (results["booking_fresh"].rps / statistics.mean(beside["booking_fresh"]))
                if results["booking_fresh"].rps
                else None
            ),
            "agent_flow_rps": flows["mcp"].flows_per_second,
            "agent_flow_rest_rps": flows["rest"].flows_per_second,
            # What MCP adds to a whole flow over calling REST directly, in time per flow.
            "mcp_overhead": (
                flows["rest"].flows_per_second / flows["mcp"].flows_per_second - 1
                if flows["mcp"].flows_per_second
                else None
            ),
            "availability_1d_p99_ms": results["availability_1d"].p99_ms,
            "contended_resolve_s": statistics.median(s for s, _ in rounds),
            "contended_winners": min(w for _, w in rounds)
            if all(w == 1 for _, w in rounds)
            else max(w for _, w in rounds),
            "rss_mb": round(sampler.peak_worker, 1),
            "rss_total_mb": round(sampler.peak_total, 1),
        }
    )
    for key in (
        "availability_1d_rps",
        "availability_30d_rps",
        "search_rps",
        "booking_rps",
        "booking_webhooks_rps",
        "booking_webhooks_vs_booking",
        "booking_webhooks_vs_booking_by_ratio",
        "series_rps",
        "series_vs_booking",
        "series_vs_booking_by_ratio",
        "agent_flow_rps",
        "agent_flow_rest_rps",
        "availability_1d_p99_ms",
        "contended_resolve_s",
    ):
        if report[key] is not None:
            report[key] = round(report[key], 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny and quick; for the tests")
    parser.add_argument("--seconds", type=int, default=None)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 2)))
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 1 if args.smoke else 10
    if args.smoke:
        args.clients, args.rounds = min(args.clients, 20), 1
    report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    output = args.output or (None if args.smoke else ROOT / "bench" / "results.json")
    if output is not None:
        output.write_text(text + "\n")
        output.with_suffix(".md").write_text(results_block(report) + "\n")


TARGETS = {
    "availability_1d": "≥ 0.60 of baseline rps; p99 < 50 ms",
    "availability_30d": "≥ 0.40",
    "availability_1d_uncached": "(no target; nothing remembered)",
    "availability_30d_uncached": "(no target; nothing remembered)",
    "search": "(no target)",
    "booking": "≥ 0.22 (201s per second)",
    "booking_webhooks": "(no target; 3 endpoints subscribed)",
    "series_12": "(no target; 201s per second, each 12 visits)",
    "booking_fresh": "(no target; single bookings on empty doctors, beside series_12)",
}


def series_line(report: dict[str, Any]) -> str:
    vs, by_ratio = report.get("series_vs_booking"), report.get("series_vs_booking_by_ratio")
    if vs is None or by_ratio is None:
        return "- Series: no single booking was made beside them."
    phases = report["phases"]
    return (
        f"- A 12-visit weekly series in one call against 12 single bookings (doctors of their "
        f"own, empty weeks): {phases['series_12']['rps']:.0f} series/s against "
        f"{phases['booking_fresh']['rps']:.0f} bookings/s, **{vs:.3f}** as series/s x 12 over "
        f"bookings/s ({by_ratio:.3f} by the two phases' ratios to their baselines)."
    )


def webhook_line(report: dict[str, Any]) -> str:
    phase, hooks = report["phases"]["booking_webhooks"], report["webhooks"]
    vs, by_ratio = (
        report["booking_webhooks_vs_booking"],
        report["booking_webhooks_vs_booking_by_ratio"],
    )
    return (
        f"- Booking with {hooks['endpoints']} webhook endpoints subscribed to "
        "`appointment.booked` (receivers on loopback, one process, 204 at once): "
        f"{phase['rps']:.0f} 201s/s, {phase['ratio_to_baseline']:.3f} of the baseline beside it; "
        + (
            f"**{vs:.3f} of booking with none** ({by_ratio:.3f} by the two phases' ratios to "
            "their baselines)"
            if vs is not None and by_ratio is not None
            else "booking with none booked nothing"
        )
        + f". The receivers got {hooks['received_during_phase']} messages during the phase, "
        f"of {hooks['expected']} its bookings call for (deliveries lag; nothing waited for "
        f"them), {hooks['pings_received']} of {hooks['endpoints']} pings before it; receiver "
        f"CPU {hooks['receiver_cpu_share']:.0%}. Once the load stopped, the backlog was "
        f"delivered at {hooks.get('drained_per_second', 0):.0f} messages/s."
    )


def results_block(report: dict[str, Any]) -> str:
    """The generated part of BENCHMARKS.md, between its markers (bench/report.py copies it
    in); the hand-written analysis around it stays."""
    m = report["machine"]
    rows = [
        "| phase | req/s | baseline beside it, req/s | ratio to baseline | p50 ms | p99 ms "
        "| worst burst's p99 ms | target | generator CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, phase in report["phases"].items():
        rows.append(
            f"| {name} | {phase['rps']:.0f} | {phase['baseline_around_rps']:.0f} | "
            f"{phase['ratio_to_baseline']:.3f} | {phase['p50_ms']:.1f} | {phase['p99_ms']:.1f} | "
            f"{phase['worst_burst_p99_ms']:.1f} | {TARGETS[name]} | "
            f"{phase['generator_cpu_share']:.0%} |"
        )
    shares = ", ".join(
        f"{name} {phase['remembered_share']:.0%}"
        for name, phase in report["phases"].items()
        if phase.get("remembered_share") is not None
    )
    races = ", ".join(
        f"{r['seconds']:.2f} s ({r['winners']} winner)" for r in report["contended_rounds"]
    )
    return "\n".join(
        [
            "<!-- results:start (bench/results.md, copied by `make bench-report`) -->",
            f"Run {report['date']} with `{report['command']}` on {m['cpus']} x "
            f"{m['cpu_model']}, {m['memory_gb']} GB, Python {m['python']}, {m['os']}. "
            f"Service: `python -m app serve`, {report['workers']} workers, access log off; "
            f"baseline: `uvicorn bench.baseline:app`, "
            f"same workers. wrk: {WRK_THREADS} threads, {report['connections']} connections, "
            f"{report['seconds_per_phase']} s per phase, in {report['bursts_per_phase']} bursts. "
            f"Seeded: {report['seeded']['doctors']} "
            f"doctors, {report['seeded']['appointments']} appointments, "
            f"{report['seeded']['leaves']} leaves, {report['seeded']['free_slots']} free slots.",
            "",
            *rows,
            "",
            "- Each phase ran in bursts, each beside a burst of the baseline (the two in turn, "
            "each leading every other time), and its ratio is to the mean of those baseline "
            "bursts; its p50 and p99 are its bursts' medians. Bursts, phase / baseline req/s: "
            + "; ".join(
                f"{name} "
                + ", ".join(
                    f"{rps:.0f}/{by:.0f}"
                    for rps, by in zip(
                        phase["bursts_rps"], phase["baseline_bursts_rps"], strict=True
                    )
                )
                for name, phase in report["phases"].items()
            )
            + f". The baseline's mean, {report['baseline_rps']:.0f} req/s, is what the agent "
            "flows' ratios are to.",
            "- Availability reads answered from remembered doctor-days (each checked against "
            f"the day's current version): {shares}.",
            f"- Contended booking, {len(report['contended_rounds'])} rounds of 100 clients for one "
            f"slot (each on its own connection): {races}; median "
            f"{report['contended_resolve_s']:.2f} s until all had an answer.",
            *(
                f"- Agent flows over {via.upper()} (find the earliest slot, hold it, book it; "
                f"{AGENTS} agents at once, one flow = one unit): {f['flows_per_second']:.0f} "
                f"flows/s, {f['ratio_to_baseline']:.4f} of baseline req/s, p50 "
                f"{f['p50_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms, outcomes {f['outcomes']}, "
                f"client CPU {f['generator_cpu_share']:.0%}."
                for via, f in report["agent_flows"].items()
            ),
            (
                f"- MCP over REST for the whole flow: {report['mcp_overhead']:+.0%} time per flow "
                "(the SDK's client on the same two cores is part of it; see the analysis)."
                if report["mcp_overhead"] is not None
                else "- MCP over REST for the whole flow: no MCP flow completed."
            ),
            webhook_line(report),
            series_line(report),
            f"- Peak resident memory: {report['rss_mb']:.0f} MB per process (largest), "
            f"{report['rss_total_mb']:.0f} MB for the server and its workers together.",
            "<!-- results:end -->",
        ]
    )


if __name__ == "__main__":
    main()
