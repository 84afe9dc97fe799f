"""`make bench-reminders` (`python -m bench.reminder_replan`): a reminder policy change at the
scale of `make bench-scale`'s large group (500 doctors, two years of history: about a million
appointments, most in the past), while callers read availability.

Seeds the large group (as `bench.scale` does; the seed writes appointments directly, so none
has reminders yet), serves it, and measures one doctor's availability over a day (wrk, 32
connections) three times: alone, during a first policy change (every future upcoming
appointment gets its reminders planned from nothing: the worst case, as after the upgrade
that brings reminders) and during a second one (new quiet hours: every `scheduled` reminder
moved, the usual case). For each change: how long from the PUT until the replan has finished
(`reminder_policy.planned_version`; it includes up to `REMINDER_SWEEP_SECONDS` until a
dispatcher's chore takes it up), and the reads' throughput and p99 meanwhile. Writes
`bench/results-reminder-replan.json`.

Run it alone, as every benchmark (`python -m bench.reminder_replan --doctors 20 --seconds 5`
is a quick look that it works).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import tempfile
import threading
import time
from typing import Any

import asyncpg
import httpx

from app.launcher import migrate
from bench.run import API_KEY, ROOT, Phase, machine, request_lines, server, uvicorn_command, wrk
from bench.scale import large_specialization
from bench.seed import seed
from tests.db import throwaway_database
from tests.servers import free_port

CHANGES = (
    # The seed leaves every appointment without reminders: this plans two for each from
    # nothing (the worst case, as the upgrade that brings reminders does).
    {"offsets_minutes": [1440, 120]},
    # Every `scheduled` reminder moved (the usual change).
    {"quiet_hours": {"start": "21:00", "end": "07:30"}},
)


def _planned(dsn: str) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow("SELECT version, planned_version FROM reminder_policy")
            assert row is not None
            return int(row["version"]), int(row["planned_version"])
        finally:
            await conn.close()

    return asyncio.run(read())


async def _owe_a_plan(dsn: str) -> None:
    """Make the defaults differ from what is stored, so the first change's PUT (the defaults)
    changes the policy and its replan plans every seeded appointment's reminders."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE reminder_policy SET offsets_minutes = '{}'")
    finally:
        await conn.close()


def _reminders(dsn: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT status, count(*) FROM reminders GROUP BY status")
            return {r["status"]: int(r["count"]) for r in rows}
        finally:
            await conn.close()

    return asyncio.run(read())


def _during_change(
    base: str, dsn: str, lines: list[str], change: dict[str, Any], seconds: int
) -> dict[str, Any]:
    """Reads for `seconds` while the change is made and replanned; the replan's duration."""
    phase: list[Phase] = []
    reading = threading.Thread(
        target=lambda: phase.append(wrk("reads_during_replan", base, lines, seconds))
    )
    reading.start()
    time.sleep(1)  # the reads are under way when the change comes
    started = time.monotonic()
    answer = httpx.put(
        f"{base}/api/v1/reminder-policy", json=change, headers={"X-API-Key": API_KEY}, timeout=30
    )
    answer.raise_for_status()
    put_ms = (time.monotonic() - started) * 1000
    while True:
        version, planned = _planned(dsn)
        if planned == version:
            break
        time.sleep(0.2)
    replan_seconds = time.monotonic() - started
    reading.join()
    return {
        "change": change,
        "put_ms": round(put_ms, 1),
        "replan_seconds": round(replan_seconds, 1),
        "reads_outlasted_replan": replan_seconds < seconds - 1,
        "reads": dataclasses.asdict(phase[0]),
        "reminders_after": _reminders(dsn),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    today = dt.date.today()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.reminder_replan",
        "machine": machine(),
        "seconds": args.seconds,
    }
    with throwaway_database() as url:
        migrate(url)
        dsn = url.replace("postgresql+asyncpg", "postgresql")
        seeded = asyncio.run(
            seed(
                dsn,
                today,
                doctors=args.doctors,
                specialization_of=large_specialization,
                history_days=730,
                history_share=0.15,
            )
        )
        report["seeded"] = {
            "doctors": len(seeded.doctor_ids),
            "appointments": seeded.appointments,
        }
        asyncio.run(_owe_a_plan(dsn))
        lines = request_lines(seeded, today, random.Random(7))["availability_1d"]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SERVICE_API_KEY": f"bench:{API_KEY}",
            "LOG_LEVEL": "WARNING",
            "WORKERS": str(args.workers),
            "DATA_DIR": tempfile.mkdtemp(prefix="bench-replan-"),
        }
        command = uvicorn_command("app.main:create_app", port, args.workers, factory=True)
        with server(command, env, f"{base}/ready"):
            wrk("warmup", base, lines, 5)
            report["reads_alone"] = dataclasses.asdict(
                wrk("reads_alone", base, lines, args.seconds)
            )
            report["changes"] = [
                _during_change(base, dsn, lines, change, args.seconds) for change in CHANGES
            ]
    path = ROOT / "bench" / "results-reminder-replan.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--doctors", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=60, help="reads during each replan")
    args = parser.parse_args()
    report = run(args)
    alone = report["reads_alone"]
    print(f"reads alone: {alone['rps']:.0f}/s, p99 {alone['p99_ms']:.1f} ms")
    for change in report["changes"]:
        reads = change["reads"]
        print(
            f"{change['change']}: replan {change['replan_seconds']} s (PUT {change['put_ms']} ms);"
            f" reads meanwhile {reads['rps']:.0f}/s, p99 {reads['p99_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()
