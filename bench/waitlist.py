"""`python -m bench.waitlist`: what the waiting list costs a cancel, and how soon a freed slot
is offered, with 10,000 entries waiting against none (BENCHMARKS.md, Waitlist).

One service process (its dispatcher on, as `make run` serves) on a throw-away database:
doctors fully booked for the coming weeks, seeded in SQL. Then:
1. `cancel_none`: appointments cancelled by concurrent clients, nobody waiting (the triggers
   queue nothing);
2. `cancel_few`: as many again of other doctors with `--few` entries waiting for them, each
   cancel freeing a slot the oldest entry gets (the matcher works in the same process
   meanwhile: one offer per cancel);
3. `cancel_waiting`: as many again of other doctors with `--entries` waiting for them: the
   same offers, ten thousand entries behind them;
4. `offer_latency`: one cancel at a time, the time from its answer until the freed slot is
   held for an entry, read from `waitlist_offers`.
Runs alone in about a minute; writes bench/out/waitlist.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.launcher import migrate
from tests.db import throwaway_database
from tests.factories import doctor_payload, patient_payload
from tests.servers import service_processes

KEY = "bench-secret-key"
OUT = Path(__file__).resolve().parent / "out" / "waitlist.json"
DOCTORS = 12  # a third for each cancel phase
WEEKS = 6
SLOTS_A_DAY = 16  # 09:00-17:00, 30 minutes

_BOOK_ALL = """
    INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time, status,
                              source, calendar_sync_status)
    SELECT gen_random_uuid(), d, $2, day::date, time '09:00' + n * interval '30 minutes',
           time '09:30' + n * interval '30 minutes', 'BOOKED', 'ADMIN', 'disabled'
      FROM unnest($1::uuid[]) AS d, generate_series($3::date, $4::date, interval '1 day') AS day,
           generate_series(0, 15) AS n
     WHERE extract(isodow FROM day) < 6
"""
_WAITING = """
    INSERT INTO waitlist_entries (id, patient_id, doctor_id, start_date, end_date, actor)
    SELECT gen_random_uuid(), $2, ($1::uuid[])[1 + n % array_length($1::uuid[], 1)], $3, $4, 'bench'
      FROM generate_series(1, $5) AS n
"""
_CANCELLABLE = """
    SELECT id, doctor_id, date, start_time FROM appointments
     WHERE doctor_id = ANY($1::uuid[]) AND status = 'BOOKED' AND date BETWEEN $2 AND $3
     ORDER BY random() LIMIT $4
"""


async def cancel_all(client: httpx.AsyncClient, ids: list[Any], concurrency: int) -> float:
    """Cancel every appointment of `ids` with `concurrency` clients at once: cancels a second."""
    queue = list(ids)

    async def worker() -> None:
        while queue:
            appointment = queue.pop()
            answer = await client.delete(f"/api/v1/appointments/{appointment}")
            assert answer.status_code == 200, answer.text

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(ids) / (time.perf_counter() - started)


async def _offered(db: asyncpg.Connection, count: int) -> None:
    """Wait until `count` offers have been made (the matcher has caught up)."""
    deadline = time.monotonic() + 120
    while await db.fetchval("SELECT count(*) FROM waitlist_offers") < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the cancels' slots were not all offered in 2 minutes")
        await asyncio.sleep(0.1)


async def offer_latency(
    client: httpx.AsyncClient, db: asyncpg.Connection, rows: list[asyncpg.Record]
) -> list[float]:
    """Seconds from each cancel's answer until its slot is held for an entry."""
    seconds: list[float] = []
    for row in rows:
        answer = await client.delete(f"/api/v1/appointments/{row['id']}")
        assert answer.status_code == 200, answer.text
        freed = time.perf_counter()
        while not await db.fetchval(
            "SELECT count(*) FROM waitlist_offers WHERE doctor_id = $1 AND date = $2"
            " AND start_time = $3",
            row["doctor_id"],
            row["date"],
            row["start_time"],
        ):
            if time.perf_counter() - freed > 60:
                raise RuntimeError("a freed slot was not offered within a minute")
            await asyncio.sleep(0.005)
        seconds.append(time.perf_counter() - freed)
    return seconds


async def measure(url: str, base: str, args: argparse.Namespace) -> dict[str, Any]:
    today = dt.date.today()
    first, last = today + dt.timedelta(days=1), today + dt.timedelta(weeks=WEEKS)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=60) as client:
        doctors = []
        for _ in range(DOCTORS):
            made = await client.post("/api/v1/doctors/", json=doctor_payload())
            doctors.append(made.json()["id"])
        patient = (await client.post("/api/v1/patients/", json=patient_payload())).json()["id"]
        db = await asyncpg.connect(url)
        try:
            await db.execute(_BOOK_ALL, doctors, patient, first, last)
            third = DOCTORS // 3
            quiet, few, busy = doctors[:third], doctors[third : 2 * third], doctors[2 * third :]
            plain = await db.fetch(_CANCELLABLE, quiet, first, last, args.cancels)
            none_rate = await cancel_all(client, [r["id"] for r in plain], args.concurrency)

            await db.execute(_WAITING, few, patient, first, last, args.few)
            some = await db.fetch(_CANCELLABLE, few, first, last, args.cancels)
            few_rate = await cancel_all(client, [r["id"] for r in some], args.concurrency)
            await _offered(db, args.cancels)

            await db.execute(_WAITING, busy, patient, first, last, args.entries)
            wanted = await db.fetch(
                _CANCELLABLE, busy, first, last, args.cancels + args.latency_samples
            )
            waiting_rate = await cancel_all(
                client, [r["id"] for r in wanted[: args.cancels]], args.concurrency
            )

            await _offered(db, 2 * args.cancels)
            latencies = await offer_latency(client, db, list(wanted[args.cancels :]))
            waiting_left = await db.fetchval(
                "SELECT count(*) FROM waitlist_entries WHERE status = 'waiting'"
            )
        finally:
            await db.close()
    ordered = sorted(latencies)
    return {
        "entries_waiting": args.entries,
        "entries_still_waiting_at_latency": waiting_left,
        "cancels_per_phase": args.cancels,
        "concurrency": args.concurrency,
        "entries_few": args.few,
        "cancel_none_per_second": round(none_rate, 1),
        "cancel_few_per_second": round(few_rate, 1),
        "cancel_waiting_per_second": round(waiting_rate, 1),
        "cancel_ratio_waiting_to_none": round(waiting_rate / none_rate, 3),
        "cancel_ratio_waiting_to_few": round(waiting_rate / few_rate, 3),
        "offer_latency_ms": {
            "samples": len(ordered),
            "median": round(statistics.median(ordered) * 1000, 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "max": round(ordered[-1] * 1000, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--few", type=int, default=500)
    parser.add_argument("--cancels", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-samples", type=int, default=30)
    args = parser.parse_args()
    with throwaway_database() as url:
        migrate(url)
        env = {"DISPATCHER_ENABLED": "true", "DISPATCHER_POLL_SECONDS": "1"}
        with service_processes(url, 1, KEY, env) as (base,):
            report = asyncio.run(measure(url, base, args))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
